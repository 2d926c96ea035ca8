"""One function per figure: the numbers of ``experiments.py`` in, a PNG out.

The only module of the package that imports matplotlib (with the non-interactive
Agg backend). Every figure is closed after saving. L/p axes are log–log like
the paper's, with the naive 1/12 line dashed.
"""

import functools
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

NAIVE_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 1.0}


def _closes_on_error(plot):
    """Close the figures a plot function opened if it fails, so none leak."""
    @functools.wraps(plot)
    def wrapper(numbers, path):
        before = set(plt.get_fignums())
        try:
            return plot(numbers, path)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise
    return wrapper


def _save(figure, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.tight_layout()
    tmp = path + ".tmp.png"
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    os.replace(tmp, path)
    return path


def _naive(axis, value, horizontal=True, label="naive (1/12)"):
    if horizontal:
        axis.axhline(value, label=label, **NAIVE_STYLE)


def _loss_axes(axis, title):
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("evaluation p (feature probability)")
    axis.set_ylabel("L/p (loss per feature)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)


@_closes_on_error
def plot_mixing_types(numbers, path):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, curve in numbers["curves"].items():
        label = name + (f" (σ = {curve['sigma']:.3f})" if "learned" in name else "")
        axis.errorbar(curve["p"], curve["loss_over_p"], yerr=curve["stderr"], marker=".", label=label)
    _naive(axis, numbers["naive"])
    axis.axvline(numbers["train_p"], color="0.7", linewidth=0.8)
    _loss_axes(axis, "Models trained at p = 0.01 on different mixing matrices")
    axis.legend(fontsize=7)
    return _save(figure, path)


@_closes_on_error
def plot_sigma_sweep(numbers, path):
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for kind in ("symmetric", "asymmetric"):
        axis.errorbar(numbers["sigma"], numbers[kind]["loss_over_p"], yerr=numbers[kind]["stderr"],
                      marker=".", label=f"{kind} M")
    _naive(axis, numbers["naive"])
    axis.set_xlabel("σ (mixing scale)")
    axis.set_ylabel("L/p at p = 0.01")
    axis.set_title("Loss against the size of the mixing term")
    axis.grid(True, alpha=0.3)
    axis.legend()
    return _save(figure, path)


@_closes_on_error
def plot_finetune(numbers, path):
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    axis.plot(numbers["step"], numbers["trace_loss_over_p"], label="training L/p (window mean)")
    axis.axvline(numbers["switch_step"], color="k", linewidth=0.8, label="M removed (fresh AdamW)")
    _naive(axis, numbers["naive"])
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("L/p")
    axis.set_title(f"Fine-tuning with M = 0 after training on σ = {numbers['sigma']} asymmetric M")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


@_closes_on_error
def plot_sparsity_regimes(numbers, path):
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2, 1, 1]})
    colours = plt.cm.viridis(np.linspace(0, 1, len(numbers["models"])))
    for model, colour in zip(numbers["models"], colours):
        axes[0].plot(model["p"], model["loss_over_p"], color=colour, label=f"trained at p = {model['train_p']:g}")
        axes[0].plot([model["train_p"]], [model["own_loss_over_p"]], "o", color=colour, markeredgecolor="k")
    _naive(axes[0], numbers["naive"])
    _loss_axes(axes[0], f"Sparsity regimes (asymmetric M, σ = {numbers['sigma']})")
    axes[0].legend(fontsize=7)
    for axis, label in zip(axes[1:], ("sparsest", "densest")):
        io = numbers["input_output"][label]
        for row in io["y"]:
            axis.plot(io["x"], row, color="C0", alpha=0.25, linewidth=0.8)
        axis.plot(io["x"], np.maximum(io["x"], 0), "k--", linewidth=1, label="ReLU(x)")
        axis.set_xlabel("x_i (all other inputs 0)")
        axis.set_ylabel("ŷ_i")
        axis.set_title(f"input–output, {label}-trained model")
        axis.legend(fontsize=8)
        axis.grid(True, alpha=0.3)
    return _save(figure, path)


@_closes_on_error
def plot_baselines(numbers, path):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].plot(numbers["p"], [numbers["naive"]] * len(numbers["p"]), label="naive (analytic)")
    axes[0].plot(numbers["p"], numbers["offset_loss_over_p"], label="naive + optimal offset (analytic)")
    checks = numbers["checks"]
    axes[0].errorbar([c["p"] for c in checks], [c["offset_measured"] for c in checks],
                     yerr=[c["offset_stderr"] for c in checks], fmt="o", label="naive + offset (Monte Carlo)")
    axes[0].errorbar([c["p"] for c in checks], [c["naive_measured"] for c in checks],
                     yerr=[c["naive_stderr"] for c in checks], fmt="s", label="naive (Monte Carlo)")
    _loss_axes(axes[0], "Baselines on clean labels")
    axes[0].legend(fontsize=8)
    axes[1].plot(numbers["p"], numbers["optimal_offset"])
    axes[1].set_xscale("log")
    axes[1].set_xlabel("p")
    axes[1].set_ylabel("optimal offset b*")
    axes[1].set_title("Optimal offset against p")
    axes[1].grid(True, alpha=0.3)
    return _save(figure, path)


@_closes_on_error
def plot_eigen(numbers, path):
    figure, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    k = np.arange(1, len(numbers["alignment"]) + 1)
    axes[0, 0].plot(k, numbers["alignment"], ".-")
    axes[0, 0].axvline(50, color="0.6", linewidth=0.8)
    axes[0, 0].set_xlabel("eigenvector k of (M + Mᵀ)/2 (descending eigenvalue)")
    axes[0, 0].set_ylabel("cos(E_k, W_out W_in E_k)")
    axes[0, 0].set_title("Neurons act on the top eigen-subspace")
    axes[0, 0].grid(True, alpha=0.3)
    image = axes[0, 1].imshow(np.abs(np.array(numbers["projection_input"])), aspect="auto", cmap="magma")
    axes[0, 1].set_xlabel("eigenvector k")
    axes[0, 1].set_ylabel("neuron")
    axes[0, 1].set_title("|W_in E|: input weights in the eigenbasis")
    figure.colorbar(image, ax=axes[0, 1])
    fit = numbers["fit"]
    axes[1, 0].plot(fit["offdiag_x"], fit["offdiag_y"], ".", markersize=1.5, alpha=0.4, label="off-diagonal")
    axes[1, 0].plot(fit["diag_x"], fit["diag_y"], ".", markersize=4, label="diagonal")
    for part, colour in (("offdiag", "C0"), ("diag", "C1")):
        xs = np.array(fit[f"{part}_x"])
        if xs.size and np.isfinite(fit[part]["slope"]):
            line = np.linspace(xs.min(), xs.max(), 10)
            axes[1, 0].plot(line, fit[part]["slope"] * line + fit[part]["intercept"], color=colour,
                            label=f"{part}: {fit[part]['slope']:.2f}·σM + {fit[part]['intercept']:.2f}")
    axes[1, 0].set_xlabel("σ M_ij")
    axes[1, 0].set_ylabel("(W_out W_in)_ij")
    axes[1, 0].set_title("W_out W_in against σM")
    axes[1, 0].legend(fontsize=8)
    axes[1, 0].grid(True, alpha=0.3)
    axes[1, 1].bar(np.arange(len(numbers["input_fraction"])), numbers["input_fraction"], label="input")
    axes[1, 1].plot(numbers["output_fraction"], "k.", label="output")
    axes[1, 1].axhline(0.5, **NAIVE_STYLE, label="random subspace (k/n)")
    axes[1, 1].set_xlabel("neuron")
    axes[1, 1].set_ylabel("squared-norm fraction in top-50 eigen-subspace")
    axes[1, 1].set_ylim(0, 1.05)
    axes[1, 1].legend(fontsize=8)
    return _save(figure, path)


@_closes_on_error
def plot_small_p(numbers, path):
    figure, axis = plt.subplots(figsize=(7, 4.2))
    trained = numbers["trained"]
    labels = ["trained: exact p→0", "trained: Monte Carlo\n(one active)", "trained: sampled\np = 0.01"]
    values = [trained["exact"], trained["monte_carlo"], trained["sampled_at_p_0.01"]]
    errors = [0, trained["monte_carlo_stderr"], 0]
    for name, entry in numbers["optimum"].items():
        labels.append(f"L-BFGS optimum\n{name}")
        values.append(entry["loss_over_p"])
        errors.append(0)
    axis.bar(range(len(values)), values, yerr=errors, color=["C0", "C0", "C0"] + ["C2"] * (len(values) - 3))
    axis.axhline(numbers["naive_exact"], label="naive (exact 1/12)", **NAIVE_STYLE)
    axis.set_xticks(range(len(values)))
    axis.set_xticklabels(labels, fontsize=7)
    axis.set_ylabel("L/p")
    axis.set_title("Exact small-p loss")
    axis.legend(fontsize=8)
    return _save(figure, path)


@_closes_on_error
def plot_snmf(numbers, path):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, kind in zip(axes, ("asymmetric", "symmetric")):
        entry = numbers[kind]
        axis.plot(numbers["sigma"], entry["snmf_ours"], "o-", label="SNMF, target I + σM (ours)")
        axis.plot(numbers["sigma"], entry["snmf_authors"], "s--", label="SNMF, target I + σMᵀ (authors')")
        axis.plot(numbers["sigma"], entry["trained_small_p"], "^-", label="trained model (exact p→0)")
        axis.plot(numbers["sigma"], entry["trained_sampled"], "v:", label="trained model (sampled, p = 0.01)")
        _naive(axis, numbers["naive"])
        axis.set_xlabel("σ")
        axis.set_title(f"{kind} M")
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("L/p")
    axes[0].legend(fontsize=7)
    return _save(figure, path)


@_closes_on_error
def plot_low_rank(numbers, path):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, label in (("lowrank", "Gaussian U Vᵀ"), ("lowrank_orthonormal", "orthonormal (flat spectrum)")):
        axes[0].errorbar(numbers["rank"], numbers[kind]["loss_over_p"], yerr=numbers[kind]["stderr"],
                         marker="o", label=label)
        axes[1].plot(numbers["rank"], numbers[kind]["sigma"], "o-", label=label)
    _naive(axes[0], numbers["naive"])
    axes[0].set_xlabel("rank of M")
    axes[0].set_ylabel("L/p at p = 0.01")
    axes[0].set_title("Low-rank mixing matrices (learned σ)")
    axes[0].legend(fontsize=8)
    axes[0].grid(True, alpha=0.3)
    axes[1].set_xlabel("rank of M")
    axes[1].set_ylabel("learned σ")
    axes[1].grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)
    return _save(figure, path)


@_closes_on_error
def plot_seeds(numbers, path):
    figure, axis = plt.subplots(figsize=(6, 4))
    for index, name in enumerate(("residual CC model", "clean MLP")):
        entry = numbers[name]
        axis.errorbar(np.array(numbers["seeds"]) + 0.1 * index, entry["loss_over_p"], yerr=entry["stderr"],
                      fmt="o", label=name)
    _naive(axis, numbers["naive"])
    axis.set_xticks(numbers["seeds"])
    axis.set_xlabel("seed")
    axis.set_ylabel("L/p at p = 0.01")
    axis.set_title("The paper's settings, three seeds")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


PLOTS = {
    "seeds": plot_seeds,
    "mixing_types": plot_mixing_types, "sigma_sweep": plot_sigma_sweep, "finetune": plot_finetune,
    "sparsity_regimes": plot_sparsity_regimes, "baselines": plot_baselines, "eigen": plot_eigen,
    "small_p": plot_small_p, "snmf": plot_snmf, "low_rank": plot_low_rank,
}
