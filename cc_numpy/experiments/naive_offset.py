"""The naive + offset baseline on clean labels (the paper's Fig. 10).

The naive model (neurons 1…50 compute ReLU of features 1…50) plus one constant
weight b from every neuron to each of the 50 unrepresented outputs. Its L/p on
clean labels is a parabola in b, so the optimal b* and its L/p are in closed
form (``analyses.baselines``, tutorial chapter 09); nothing is trained. The
closed form is checked against a Monte Carlo evaluation of the b* model at
p = 0.01, 0.1 and 1, one independent evaluation per seed.
"""

import numpy as np

from ..analyses.baselines import offset_params, optimal_offset
from ..core.data import random_streams
from ..core.evaluate import loss_over_p
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, PAPER_ID, at_most, check, claim, reading, within

ORDER = 60
HELP = "the naive model plus the optimal offset b* on clean labels: b* and L/p over p, exact and by Monte Carlo"
P_GRID = (10.0 ** (np.arange(-60, 1) / 20)).tolist()     # 0.001 … 1, 20 points a decade; 0.01, 0.1, 1 exactly
MC_PS = (0.01, 0.1, 1.0)


def jobs(scale, seeds):
    return []


def numbers(results, scale, seeds):
    exact = [optimal_offset(p) for p in P_GRID]
    mc = {"p": list(MC_PS), "offset": [], "analytic": [], "loss_over_p": [], "stderr": []}
    for p in MC_PS:
        b, analytic = optimal_offset(p)
        mc["offset"].append(b)
        mc["analytic"].append(analytic)
    for seed in seeds:
        rng = random_streams(seed)["eval"]
        runs = [loss_over_p(offset_params(b), p, rng, task="clean", n_samples=scale["min_samples"],
                            target_stderr=scale["target_stderr"], max_samples=scale["max_samples"])
                for p, b in zip(MC_PS, mc["offset"])]
        mc["loss_over_p"].append([float(r["loss_over_p"]) for r in runs])      # (seeds, len(MC_PS))
        mc["stderr"].append([float(r["stderr"]) for r in runs])
    return {"p": P_GRID, "naive": NAIVE, "seeds": seeds, "optimal_offset": [b for b, _ in exact],
            "offset_loss_over_p": [value for _, value in exact], "monte_carlo": mc}


def plot(numbers, path):
    with plotting.figure(path, 1, 2, size=(11, 4.2)) as (left, right):
        left.plot(numbers["p"], numbers["offset_loss_over_p"], label="naive + optimal offset (exact)")
        mc = numbers["monte_carlo"]
        values, errors = np.array(mc["loss_over_p"]), np.array(mc["stderr"])    # (seeds, ps)
        left.errorbar(mc["p"], values.mean(axis=0), yerr=np.sqrt((errors ** 2).sum(axis=0)) / len(values), fmt="o",
                      label=f"naive + offset (Monte Carlo, mean of {len(values)} seeds)")
        plotting.naive_line(left, numbers["naive"], label="naive (exact 1/12)")
        plotting.loss_axes(left, "Naive + offset on clean labels")
        left.legend(fontsize=8)
        right.plot(numbers["p"], numbers["optimal_offset"])
        right.set_xscale("log")
        right.set_xlabel("p")
        right.set_ylabel("optimal offset b*")
        right.set_title("Optimal offset against p")
        right.grid(True, alpha=0.3)


def _exact(key, p):
    """The closed-form value at ``p`` (one number: nothing here depends on a seed)."""
    return lambda n: reading([n[key][n["p"].index(p)]], label="exact")


def _worst_small_p(n):
    """The largest |L/p − 1/12| of the exact naive + b* curve over p ≤ 0.01."""
    return reading([max(abs(v - NAIVE) for p, v in zip(n["p"], n["offset_loss_over_p"]) if p <= 0.01)], label="exact")


def _z(p):
    """Per seed, (Monte Carlo − exact) / Monte Carlo standard error at ``p``."""
    def read(n):
        mc = n["monte_carlo"]
        i = mc["p"].index(p)
        return reading([(row[i] - mc["analytic"][i]) / err[i] for row, err in zip(mc["loss_over_p"], mc["stderr"])])
    return read


SOURCE = f"{PAPER_ID}, Fig. 10 (naive + offset; values read off the figure)"
CLAIMS = [
    claim("naive + offset: the optimal offset b ≈ 0.013 at p = 0.1 (exact b*)", "0.013", SOURCE,
          _exact("optimal_offset", 0.1), within(0.013, 0.002), needs_paper_scale=False),
    claim("naive + offset: the optimal offset b ≈ 0.019 at p = 1 (exact b*)", "0.019", SOURCE,
          _exact("optimal_offset", 1.0), within(0.019, 0.002), needs_paper_scale=False),
    claim("naive + offset: L/p ≈ 0.053 at p = 1 (exact L/p at b*)", "0.053", SOURCE,
          _exact("offset_loss_over_p", 1.0), within(0.053), needs_paper_scale=False),
    claim("naive + offset: ≈ naive for p ≤ 0.01 (largest |L/p − 1/12| of the exact curve there)", "≈ naive (0.083) for p ≤ 0.01", SOURCE,
          _worst_small_p, at_most(0.003), needs_paper_scale=False),
]
CHECKS = [
    check(f"naive + b* at p = {p:g}: Monte Carlo against the closed form, in Monte Carlo standard errors "
          "(mean over seeds)", "within ±4", _z(p), within(0.0, 4.0))
    for p in MC_PS
]
