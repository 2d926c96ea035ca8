"""The exact p → 0 loss: checked against sampling, and its noise-free optimum (our own; no figure of the paper).

As p → 0 at most one feature is active, and L/p has the closed form of
``analyses.small_p`` (lim L/p = (1/6n)(‖W_out ReLU(W_in) − I − σM‖² +
‖W_out ReLU(−W_in) + σM‖²)). On the eigen-analysis model of each seed (σ = 0.03,
asymmetric M, trained at p = 0.01; the training is shared with ``eigen``) we
compare the closed form with a one-active Monte Carlo estimate, and minimise it
directly with L-BFGS (``optimise_small_p``): on clean labels (the optimum is the
naive 1/12, the Eckart–Young floor) and for the trained model's own σ and M
(between that floor and what training reached; there the loss has many local
minima, so the first start follows one up from weak mixing:
``optimise_small_p_continued``, chapter 15).
"""

import numpy as np

from ..analyses import small_p
from ..core.data import random_streams
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, at_least, check, reading, within
from . import at_p
from .eigen import TRAIN_P, eigen_job

ORDER = 75
HELP = "exact p → 0 L/p of the eigen model against Monte Carlo, and the L-BFGS small-p optimum (clean and mixed)"


def jobs(scale, seeds):
    return [eigen_job(scale, seed) for seed in seeds]


def analyse(result, scale, seed):
    """Exact, sampled and optimised small-p L/p for one trained result (its own M and σ)."""
    W_in, W_out, M = (np.asarray(result[key], dtype=np.float64) for key in ("W_in", "W_out", "M"))
    sigma = float(result["sigma"])
    d_mlp, n = W_in.shape
    exact = small_p.small_p_loss(W_in, W_out, M, sigma)
    estimate, error = small_p.monte_carlo_small_p_loss(W_in, W_out, M, sigma, max(scale["min_samples"], 2),
                                                       random_streams(seed)["eval"])
    rng = random_streams(seed)["analysis"]                  # one stream for both optimisations, in this order
    optimum = {}
    for label, (M_opt, sigma_opt) in {"clean": (None, 0.0), "mixed": (M, sigma)}.items():
        optimise = small_p.optimise_small_p if M_opt is None else small_p.optimise_small_p_continued
        found = optimise(n, d_mlp, M_opt, sigma_opt, rng, n_restarts=scale["optimise_restarts"],
                         maxiter=scale["optimise_maxiter"])
        optimum[label] = {"loss_over_p": found["loss"], "lower_bound": found["lower_bound"],
                          "joint_lower_bound": small_p.small_p_joint_lower_bound(n, d_mlp, M_opt, sigma_opt)}
    return {"sigma": sigma, "n": n, "d_mlp": d_mlp, "exact": exact, "monte_carlo": estimate,
            "monte_carlo_stderr": error, "sampled": at_p(result, TRAIN_P)[0], "optimum": optimum}


def numbers(results, scale, seeds):
    per_seed = [analyse(results[eigen_job(scale, s)], scale, s) for s in seeds]
    out = {"seeds": seeds, "p": TRAIN_P, "naive": NAIVE}
    for key in ("sigma", "n", "d_mlp", "exact", "monte_carlo", "monte_carlo_stderr", "sampled"):
        out[key] = [entry[key] for entry in per_seed]                          # lists over seeds
    out["optimum"] = {label: {key: [entry["optimum"][label][key] for entry in per_seed]
                              for key in ("loss_over_p", "lower_bound", "joint_lower_bound")}
                      for label in ("clean", "mixed")}
    return out


def plot(numbers, path):
    bars = [("trained: exact p → 0", numbers["exact"], "C0"),
            ("trained: Monte Carlo\n(one active)", numbers["monte_carlo"], "C0"),
            (f"trained: sampled\np = {numbers['p']}", numbers["sampled"], "C0"),
            ("L-BFGS optimum\nclean labels", numbers["optimum"]["clean"]["loss_over_p"], "C2"),
            (f"L-BFGS optimum\nσ = {np.mean(numbers['sigma']):g}, model's M",
             numbers["optimum"]["mixed"]["loss_over_p"], "C2")]
    with plotting.figure(path, size=(7.5, 4.5)) as axis:
        for i, (_, values, colour) in enumerate(bars):
            axis.bar(i, np.mean(values), color=colour, alpha=0.8)
            axis.plot(np.full(len(values), i), values, "k.", label="each seed" if i == 0 else None)
        axis.errorbar(1, np.mean(numbers["monte_carlo"]), yerr=np.max(numbers["monte_carlo_stderr"]), color="k",
                      capsize=4)
        for i, label in ((3, "clean"), (4, "mixed")):
            axis.plot(np.full(len(numbers["seeds"]), i), numbers["optimum"][label]["lower_bound"], "r_",
                      markersize=18, label="Eckart–Young lower bound (each sign)" if label == "clean" else None)
        if "joint_lower_bound" in numbers["optimum"]["mixed"]:    # equals the separate bound on clean labels
            axis.plot(np.full(len(numbers["seeds"]), 4), numbers["optimum"]["mixed"]["joint_lower_bound"], "m_",
                      markersize=18, label="joint Eckart–Young bound (shared W_out)")
        plotting.naive_line(axis, numbers["naive"])
        axis.set_xticks(range(len(bars)))
        axis.set_xticklabels([name for name, _, _ in bars], fontsize=7)
        axis.set_ylabel("L/p")
        axis.set_title(f"Exact small-p loss (bars: mean of {len(numbers['seeds'])} seeds)")
        axis.legend(fontsize=8)


def _monte_carlo_z(n):
    """(Monte Carlo − exact) / Monte Carlo standard error, per seed."""
    return reading(np.subtract(n["monte_carlo"], n["exact"]) / np.asarray(n["monte_carlo_stderr"]))


def _optimum(label, minus=None):
    def read(n):
        values = np.asarray(n["optimum"][label]["loss_over_p"])
        if minus == "bound":
            values = values - np.asarray(n["optimum"][label]["lower_bound"])
        if minus == "trained":
            values = np.asarray(n["exact"]) - values
        return reading(values)
    return read


CLAIMS = []
CHECKS = [
    check("the exact p → 0 L/p of the trained eigen model agrees with a one-active Monte Carlo estimate "
          "((Monte Carlo − exact) / its standard error)", "|z| ≤ 4", _monte_carlo_z, within(0.0, 4.0),
          note="the Monte Carlo samples one active feature per input from the seed's evaluation stream"),
    check("L-BFGS on the exact small-p loss, clean labels, finds the optimum 1/12 (the Eckart–Young floor, "
          "which the naive model attains)", "1/12 within 1e-6", _optimum("clean"), within(NAIVE, 1e-6),
          needs_paper_scale=True, note="fails if the optimiser stops above the floor"),
    check("L-BFGS optimum for the trained model's σ and M lies below the trained model's exact p → 0 L/p "
          "(trained − optimum)", "≥ 0", _optimum("mixed", "trained"), at_least(0.0), needs_paper_scale=True,
          note="fails if direct optimisation of the p → 0 loss does worse than training at p = 0.01"),
]
