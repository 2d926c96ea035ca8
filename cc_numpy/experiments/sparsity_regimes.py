"""Sparsity regimes and input–output behaviour (the paper's Figs. 2–4).

Simplified MLPs trained on asymmetric M with σ = 0.02 at each training p of the
scale's ``regime_ps`` (0.001 … 1 at the paper's scale), each for
steps / (1 − (1 − p)ⁿ) steps so that all-zero samples do not shorten the
training, and each evaluated over the p grid and at its own p. For the sparsest
and the densest model, the input–output behaviour: ŷ_i against x_i with every
other input 0, a straight line through 0 on each side whose slopes are the
diagonals of W_out ReLU(±W_in).
"""

import numpy as np

from ..core.config import DEFAULT_CONFIG
from ..core.data import nonempty_fraction
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, PAPER_ID, at_least, at_most, between, claim, reading, within
from ..pipeline.scale import grid_with
from . import at_p, job
from .mixing_types import crossing

ORDER = 50
HELP = "asymmetric M (σ = 0.02) trained at p from 0.001 to 1, scored over p; input–output of the sparsest and densest"
SIGMA = 0.02
ENDS = ("sparsest", "densest")


def regime_steps(p, steps, n=DEFAULT_CONFIG["n"]):
    """Steps that compensate for all-zero samples: steps / (1 − (1 − p)ⁿ)."""
    return int(round(steps / nonempty_fraction(p, n)))


def regime_job(scale, seed, p):
    """The model trained at ``p``, evaluated over the grid and at ``p`` itself."""
    return job(scale, seed, grid_with(scale, p), p=p, task="mixed", mixing="asymmetric", sigma=SIGMA,
               steps=regime_steps(p, scale["steps"]))


def jobs(scale, seeds):
    return [regime_job(scale, seed, p) for seed in seeds for p in scale["regime_ps"]]


def input_output_slopes(W_in, W_out):
    """Slopes of ŷ_i against x_i (every other input 0) for x_i > 0 and for x_i < 0.

    For x_i > 0, ŷ_i = x_i · (W_out ReLU(W_in e_i))_i, the diagonal of W_out ReLU(W_in);
    for x_i < 0, ŷ_i = |x_i| · (W_out ReLU(−W_in e_i))_i. Returns two (n,) arrays.
    """
    positive = np.diag(W_out @ np.maximum(W_in, 0))             # (n,)
    negative = np.diag(W_out @ np.maximum(-W_in, 0))            # (n,)
    return positive, negative


def input_output_curves(W_in, W_out, points=41):
    """(x (points,), y (n, points), slope_positive (n,)): ŷ_i as x_i runs over [-1, 1], every other input 0."""
    positive, negative = input_output_slopes(W_in, W_out)
    x = np.linspace(-1.0, 1.0, points)                          # (points,)
    return x, curves_from_slopes(x, positive, negative), positive


def curves_from_slopes(x, positive, negative):
    """ŷ_i(x) (n, points): slope ``positive[i]`` for x > 0, ``negative[i]`` times |x| for x < 0."""
    return np.where(x > 0, positive[:, None] * x, negative[:, None] * np.abs(x))


def numbers(results, scale, seeds):
    ps = sorted(scale["regime_ps"])
    models = []
    for p in ps:
        runs = [results[regime_job(scale, s, p)] for s in seeds]
        own = np.array([at_p(r, p) for r in runs])                              # (seeds, 2)
        models.append({"train_p": p, "steps": regime_steps(p, scale["steps"]), "p": runs[0]["eval_p"].tolist(),
                       "loss_over_p": [r["eval_loss_over_p"].tolist() for r in runs],   # (seeds, points)
                       "stderr": [r["eval_stderr"].tolist() for r in runs],
                       "own_loss_over_p": own[:, 0].tolist(), "own_stderr": own[:, 1].tolist()})
    io = {}
    for label, p in zip(ENDS, (ps[0], ps[-1])):
        slopes = [input_output_slopes(np.asarray(results[regime_job(scale, s, p)]["W_in"], dtype=float),
                                      np.asarray(results[regime_job(scale, s, p)]["W_out"], dtype=float))
                  for s in seeds]
        io[label] = {"train_p": p, "slope_positive": [pos.tolist() for pos, _ in slopes],    # (seeds, n)
                     "slope_negative": [neg.tolist() for _, neg in slopes]}
    return {"sigma": SIGMA, "naive": NAIVE, "seeds": seeds, "models": models, "input_output": io,
            "io_x": np.linspace(-1.0, 1.0, scale["io_points"]).tolist()}


def plot(numbers, path):
    with plotting.figure(path, 1, 3, size=(15, 4.5), gridspec_kw={"width_ratios": [2, 1, 1]}) as axes:
        for model, colour in zip(numbers["models"], plotting.colours(len(numbers["models"]))):
            plotting.mean_band(axes[0], model["p"], model["loss_over_p"], f"trained at p = {model['train_p']:g}",
                               color=colour)
            axes[0].plot([model["train_p"]], [np.mean(model["own_loss_over_p"])], "o", color=colour,
                         markeredgecolor="k")
        plotting.naive_line(axes[0], numbers["naive"])
        plotting.loss_axes(axes[0], f"Sparsity regimes (asymmetric M, σ = {numbers['sigma']}; "
                                    f"{len(numbers['seeds'])} seeds, band: min–max)")
        axes[0].legend(fontsize=7)
        x = np.array(numbers["io_x"])
        for axis, label in zip(axes[1:], ENDS):
            io = numbers["input_output"][label]
            positive, negative = np.array(io["slope_positive"][0]), np.array(io["slope_negative"][0])
            for row in curves_from_slopes(x, positive, negative):
                axis.plot(x, row, color="C0", alpha=0.25, linewidth=0.8)
            axis.plot(x, np.maximum(x, 0), "k--", linewidth=1, label="ReLU(x)")
            axis.set_xlabel("x_i (all other inputs 0)")
            axis.set_ylabel("ŷ_i")
            axis.set_title(f"input–output, trained at p = {io['train_p']:g} (seed {numbers['seeds'][0]})",
                           fontsize=10)
            axis.legend(fontsize=8)
            axis.grid(True, alpha=0.3)


def _own(p):
    """Each seed's L/p of the model trained at ``p``, at ``p`` (None when the scale did not train at p)."""
    def read(n):
        for model in n["models"]:
            if abs(model["train_p"] - p) <= 1e-12:
                return reading(model["own_loss_over_p"], mc=model["own_stderr"])
        return reading([None] * len(n["seeds"]))
    return read


def _crossings(n, limit=0.01):
    """Per seed, the p where each model trained at p ≤ ``limit`` first rises above 1/12 (None: never)."""
    sparse = [m for m in n["models"] if m["train_p"] <= limit + 1e-12]
    return [[crossing(m["p"], m["loss_over_p"][s]) for m in sparse] for s in range(len(n["seeds"]))]


def _earliest(n):
    return reading([None if not row or None in row else min(row) for row in _crossings(n)])


def _latest(n):
    return reading([None if not row or None in row else max(row) for row in _crossings(n)])


def _fraction(label, low=-np.inf, high=np.inf):
    """Per seed, the fraction of features whose positive-input slope lies in [low, high]."""
    def read(n):
        return reading([np.mean((np.array(row) >= low) & (np.array(row) <= high))
                        for row in n["input_output"][label]["slope_positive"]])
    return read


SOURCE = f"{PAPER_ID}, Figs. 2–3 (sparsity regimes; values read off the figure)"
IO_SOURCE = f"{PAPER_ID}, Fig. 4 (input–output behaviour)"
CLAIMS = [
    claim(f"sparsity regimes (asymmetric M, σ = {SIGMA}): trained and evaluated at p = {p:g}, L/p ≈ {value}",
          value, SOURCE, _own(p), within(float(value)))
    for p, value in ((0.001, "0.072"), (0.01, "0.076"), (0.1, "0.080"), (0.5, "0.072"), (1.0, "0.054"))
] + [
    claim("sparse-trained models get worse than naive when evaluated at p above ≈ 0.03–0.2: the earliest p where "
          "a model trained at p ≤ 0.01 rises above 1/12", "≈ 0.03–0.2", SOURCE, _earliest, at_least(0.03),
          note="no crossing in a seed counts as ✗"),
    claim("the same: the latest p where a model trained at p ≤ 0.01 rises above 1/12", "≈ 0.03–0.2", SOURCE,
          _latest, at_most(0.2), note="no crossing in a seed counts as ✗"),
    claim("the sparsest-trained model gives every feature a slope ≈ 0.4–0.75 for positive inputs (fraction of "
          "features with slope in [0.4, 0.75])", "every feature", IO_SOURCE, _fraction("sparsest", 0.4, 0.75),
          at_least(1.0), note="as the paper states it: every feature"),
    claim("the densest-trained model splits the features into about half with slope ≈ 1 (fraction with "
          "slope > 0.7) …", "about half", IO_SOURCE, _fraction("densest", low=0.7), between(0.35, 0.65)),
    claim("… and half near 0.1 (fraction with slope < 0.3)", "about half", IO_SOURCE,
          _fraction("densest", high=0.3), between(0.35, 0.65)),
]
CHECKS = []
