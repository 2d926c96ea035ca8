"""Loss against the size of the mixing term (the paper's Fig. 5, σ sweeps).

Simplified MLPs trained at p = 0.01 on y = ReLU(x) + σ M x with a fixed σ, for σ
on a grid from 0 to 0.08, symmetric and asymmetric M. Each seed draws its own M,
data, initial weights and evaluation inputs; within one seed every σ shares the
same unscaled M (so the curve moves with σ alone).
"""

import numpy as np

from ..pipeline import plotting
from ..pipeline.claims import NAIVE, PAPER_ID, below, check, claim, reading, within
from ..pipeline.scale import sigma_grid
from . import at_p, job

ORDER = 30
HELP = "L/p at p = 0.01 against σ for symmetric and asymmetric M (the paper's σ sweeps)"
KINDS = ("symmetric", "asymmetric")
TRAIN_P = 0.01


def sweep_job(scale, seed, kind, sigma):
    """The model of one point of the sweep (shared with the SNMF experiment)."""
    return job(scale, seed, [TRAIN_P], p=TRAIN_P, task="mixed", mixing=kind, sigma=sigma)


def jobs(scale, seeds):
    return [sweep_job(scale, seed, kind, sigma) for seed in seeds for kind in KINDS for sigma in sigma_grid(scale)]


def first_above_naive(sigmas, values):
    """The first σ past the minimum where L/p rises from ≤ 1/12 to above it, linearly interpolated.

    None if the curve never crosses there (e.g. it never dipped below 1/12).
    """
    best = int(np.argmin(values))
    for i in range(best + 1, len(sigmas)):
        if values[i - 1] <= NAIVE < values[i]:
            t = (NAIVE - values[i - 1]) / (values[i] - values[i - 1])
            return float(sigmas[i - 1] + t * (sigmas[i] - sigmas[i - 1]))
    return None


def numbers(results, scale, seeds):
    sigmas = sigma_grid(scale)
    out = {"sigma": sigmas, "naive": NAIVE, "p": TRAIN_P, "seeds": seeds}
    for kind in KINDS:
        table = np.array([[at_p(results[sweep_job(scale, s, kind, sigma)], TRAIN_P) for sigma in sigmas]
                          for s in seeds])                                   # (seeds, sigmas, 2)
        values, errors = table[..., 0], table[..., 1]
        out[kind] = {"loss_over_p": values.tolist(), "stderr": errors.tolist(),
                     "min_loss_over_p": values.min(axis=1).tolist(),
                     "argmin_sigma": [sigmas[i] for i in values.argmin(axis=1)],
                     "first_sigma_above_naive": [first_above_naive(sigmas, v) for v in values]}
    return out


def plot(numbers, path):
    with plotting.figure(path) as axis:
        for kind in KINDS:
            plotting.mean_band(axis, numbers["sigma"], numbers[kind]["loss_over_p"], f"{kind} M")
        plotting.naive_line(axis, numbers["naive"])
        axis.set_xlabel("σ (mixing strength)")
        axis.set_ylabel(f"L/p at p = {numbers['p']}")
        axis.set_title(f"Loss against the size of the mixing term ({len(numbers['seeds'])} seeds; band: min–max)")
        axis.grid(True, alpha=0.3)
        axis.legend()


def _at_zero(kind):
    return lambda n: reading([row[0] for row in n[kind]["loss_over_p"]], mc=[row[0] for row in n[kind]["stderr"]])


def _minimum(kind):
    return lambda n: reading(n[kind]["min_loss_over_p"], mc=np.max(n[kind]["stderr"]))


def _key(kind, key):
    return lambda n: reading(n[kind][key])


SOURCE = f"{PAPER_ID}, Fig. 5 (σ sweep; values read off the figure)"
CLAIMS = [
    claim("σ sweep: both curves start at the naive 0.083 (σ = 0 trains the same clean model for both kinds, "
          "so it is one row)", "0.083", SOURCE, _at_zero("symmetric"), within(0.083)),
    claim("σ sweep, symmetric M: minimum L/p ≈ 0.065", "0.065", SOURCE, _minimum("symmetric"), within(0.065)),
    claim("σ sweep, symmetric M: the minimum lies near σ ≈ 0.03", "0.03", SOURCE, _key("symmetric", "argmin_sigma"),
          within(0.03, 0.005), note="tolerance ±0.005 in σ: a flat minimum on a grid of step 0.002"),
    claim("σ sweep, symmetric M: back above naive at σ ≈ 0.062", "0.062", SOURCE,
          _key("symmetric", "first_sigma_above_naive"), within(0.062, 0.004),
          note="tolerance ±0.004 in σ (two grid steps)"),
    claim("σ sweep, asymmetric M: minimum L/p ≈ 0.075", "0.075", SOURCE, _minimum("asymmetric"), within(0.075)),
    claim("σ sweep, asymmetric M: the minimum lies near σ ≈ 0.028", "0.028", SOURCE,
          _key("asymmetric", "argmin_sigma"), within(0.028, 0.005),
          note="tolerance ±0.005 in σ: a flat minimum on a grid of step 0.002"),
    claim("σ sweep, asymmetric M: above naive beyond σ ≈ 0.048", "0.048", SOURCE,
          _key("asymmetric", "first_sigma_above_naive"), within(0.048, 0.004),
          note="tolerance ±0.004 in σ (two grid steps)"),
]
CHECKS = [
    check("σ sweep: the symmetric minimum lies below the asymmetric one (both M have N(0, 1) entries)",
          "difference < 0", lambda n: reading(np.subtract(n["symmetric"]["min_loss_over_p"],
                                                           n["asymmetric"]["min_loss_over_p"])),
          below(0.0), needs_paper_scale=True),
]
