"""The residual CC model and the clean-task MLP over seeds (no figure of the paper: our own check).

Both are trained at the paper's settings (p = 0.01) and scored over the p grid.
Every figure trains the scale's seeds; this experiment trains at least three,
whatever the scale, so that even a quick run shows how much L/p moves from seed
to seed. The trainings are those of ``mixing_types`` (same jobs, trained once).
The residual model's L/p ≈ 0.067 at p = 0.01 is this project's measurement, not
the paper's, so every row here is a check.
"""

import numpy as np

from ..pipeline import plotting
from ..pipeline.claims import NAIVE, at_most, check, reading, within
from . import at_p
from .mixing_types import TRAIN_P, model_job

ORDER = 10
HELP = "the residual CC model and the clean MLP at p = 0.01 over at least three seeds (seed-to-seed spread)"
MODELS = {"residual CC model": "residual CC model", "clean MLP": "clean (M = 0)"}   # ours -> mixing_types' name
MIN_SEEDS = 3


def seeds_of(seeds):
    """The scale's seeds, or seeds[0], +1, +2 when there are fewer than three."""
    seeds = list(seeds)
    return seeds if len(seeds) >= MIN_SEEDS else [seeds[0] + k for k in range(MIN_SEEDS)]


def jobs(scale, seeds):
    return [model_job(scale, seed, shared) for shared in MODELS.values() for seed in seeds_of(seeds)]


def numbers(results, scale, seeds):
    seeds = seeds_of(seeds)
    out = {"seeds": seeds, "naive": NAIVE, "train_p": TRAIN_P}
    for name, shared in MODELS.items():
        runs = [results[model_job(scale, s, shared)] for s in seeds]
        at = np.array([at_p(r, TRAIN_P) for r in runs])                        # (seeds, 2)
        out[name] = {"p": runs[0]["eval_p"].tolist(),
                     "curve": [r["eval_loss_over_p"].tolist() for r in runs],   # (seeds, points)
                     "loss_over_p": at[:, 0].tolist(), "stderr": at[:, 1].tolist()}
    return out


def plot(numbers, path):
    seeds = numbers["seeds"]
    with plotting.figure(path, 1, 2, size=(11, 4.2)) as (left, right):
        for index, name in enumerate(MODELS):
            entry = numbers[name]
            plotting.mean_band(left, entry["p"], entry["curve"], name)
            right.errorbar(np.array(seeds) + 0.1 * index, entry["loss_over_p"], yerr=entry["stderr"], fmt="o",
                           label=f"{name} (bars: Monte Carlo error)")
        plotting.naive_line(left, numbers["naive"])
        left.axvline(numbers["train_p"], color="0.7", linewidth=0.8)
        plotting.loss_axes(left, f"Trained at p = {numbers['train_p']} ({len(seeds)} seeds; band: min–max)")
        left.legend(fontsize=8)
        plotting.naive_line(right, numbers["naive"])
        right.set_xticks(seeds)
        right.set_xlabel("seed")
        right.set_ylabel(f"L/p at p = {numbers['train_p']}")
        right.set_title("Each seed at the training p")
        right.grid(True, alpha=0.3)
        right.legend(fontsize=8)


def _value(name):
    return lambda n: reading(n[name]["loss_over_p"], mc=n[name]["stderr"])


def _spread(name):
    """The sample standard deviation of L/p at p = 0.01 across the seeds: one number, not one per seed."""
    return lambda n: reading([np.std(n[name]["loss_over_p"], ddof=1)],
                             label=f"across {len(n[name]['loss_over_p'])} seeds; MC ± {max(n[name]['stderr']):.4f}")


CLAIMS = []
CHECKS = [
    check("residual CC model, L/p at p = 0.01: standard deviation across ≥ 3 seeds (one number) ≤ 0.001",
          "≤ 0.001", _spread("residual CC model"), at_most(0.001), needs_paper_scale=True),
    check("clean MLP, L/p at p = 0.01: standard deviation across ≥ 3 seeds (one number) ≤ 0.001",
          "≤ 0.001", _spread("clean MLP"), at_most(0.001), needs_paper_scale=True),
    check("residual CC model, L/p at p = 0.01 ≈ 0.067 (this project's earlier one-seed measurement, "
          "not a paper value)", "0.067 ± 0.003", _value("residual CC model"), within(0.067),
          needs_paper_scale=True),
]
