"""Low-rank mixing matrices with learned σ (no figure of the paper: the authors published no numbers).

Simplified MLPs trained at p = 0.01 on y = ReLU(x) + |σ| M x with σ learned and
M = U Vᵀ of each rank in the scale's ``low_ranks``: Gaussian U, V, or U, V
orthonormalised first (a flat spectrum), both rescaled to ‖M‖_F = n. Every row
here is our own measurement. A learned σ can collapse to about 0 (|σ| has a
kink at 0 where AdamW can stall before the weights exploit M); such runs are
flagged.
"""

import numpy as np

from ..core.config import DEFAULT_CONFIG
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, at_most, check, reading
from . import at_p, job

ORDER = 90
HELP = "learned σ with M = U Vᵀ of each rank (Gaussian and orthonormal) at p = 0.01: L/p and σ against the rank"
TRAIN_P = 0.01
KINDS = {"lowrank": "Gaussian U Vᵀ", "lowrank_orthonormal": "orthonormal U Vᵀ (flat spectrum)"}
FULL_RANK = DEFAULT_CONFIG["n"]  # n: M = U Vᵀ of rank n is a full matrix
COLLAPSED = 0.002               # |learned σ| below this: σ collapsed to about 0


def rank_job(scale, seed, kind, rank):
    """The learned-σ model on M = U Vᵀ of one kind and rank."""
    return job(scale, seed, [TRAIN_P], p=TRAIN_P, task="mixed", mixing=kind, rank=rank, learn_sigma=True,
               steps=scale["learned_sigma_steps"])


def jobs(scale, seeds):
    return [rank_job(scale, seed, kind, rank) for seed in seeds for kind in KINDS for rank in scale["low_ranks"]]


def numbers(results, scale, seeds):
    ranks = list(scale["low_ranks"])
    out = {"rank": ranks, "naive": NAIVE, "p": TRAIN_P, "seeds": seeds}
    for kind in KINDS:
        runs = [[results[rank_job(scale, s, kind, rank)] for rank in ranks] for s in seeds]
        table = np.array([[at_p(r, TRAIN_P) for r in row] for row in runs])       # (seeds, ranks, 2)
        out[kind] = {"loss_over_p": table[..., 0].tolist(), "stderr": table[..., 1].tolist(),
                     "sigma": [[float(r["sigma"]) for r in row] for row in runs]}  # (seeds, ranks)
    return out


def plot(numbers, path):
    with plotting.figure(path, 1, 2, size=(11, 4.2)) as (left, right):
        for kind, label in KINDS.items():
            plotting.mean_band(left, numbers["rank"], numbers[kind]["loss_over_p"], label, marker="o")
            plotting.mean_band(right, numbers["rank"], np.abs(numbers[kind]["sigma"]), label, marker="o")
        plotting.naive_line(left, numbers["naive"])
        left.set_xlabel("rank of M")
        left.set_ylabel(f"L/p at p = {numbers['p']}")
        left.set_title(f"Low-rank M, learned σ ({len(numbers['seeds'])} seeds; band: min–max)")
        left.legend(fontsize=8)
        left.grid(True, alpha=0.3)
        right.axhline(COLLAPSED, color="0.6", linewidth=0.8, linestyle=":", label=f"collapsed below {COLLAPSED}")
        right.set_xlabel("rank of M")
        right.set_ylabel("learned |σ| (the labels use |σ|)")
        right.set_title("Learned σ against the rank")
        right.grid(True, alpha=0.3)
        right.legend(fontsize=8)


def table(numbers):
    """Markdown lines: L/p (mean ± spread over seeds) and learned σ for each rank and kind."""
    def cell(values):
        values = np.asarray(values, dtype=float)
        spread = f" ± {np.std(values, ddof=1):.4f}" if values.size > 1 else ""
        return f"{values.mean():.4f}{spread}"

    seeds = len(numbers["seeds"])
    lines = [f"Mean ± standard deviation over {seeds} seed{'s' if seeds > 1 else ''}; L/p at p = {numbers['p']}.", "",
             "| rank | " + " | ".join(f"{label}: L/p | learned σ" for label in KINDS.values()) + " |",
             "|---|" + "---|---|" * len(KINDS)]
    for i, rank in enumerate(numbers["rank"]):
        cells = [f"{cell([row[i] for row in numbers[kind]['loss_over_p']])} | "
                 f"{cell([row[i] for row in numbers[kind]['sigma']])}" for kind in KINDS]
        lines.append(f"| {rank} | " + " | ".join(cells) + " |")
    collapsed = _collapsed_runs(numbers)
    if collapsed:
        lines += ["", f"Learned σ collapsed to about 0 (|σ| < {COLLAPSED}) in: {', '.join(collapsed)}."]
    return lines


def _collapsed_runs(numbers):
    return [f"{KINDS[kind]}, rank {rank}, seed {seed}" for kind in KINDS
            for seed, row in zip(numbers["seeds"], numbers[kind]["sigma"])
            for rank, sigma in zip(numbers["rank"], row) if abs(sigma) < COLLAPSED]


def _full_rank(kind):
    """Each seed's L/p at full rank (None when the scale has no rank-n run)."""
    def read(n):
        if FULL_RANK not in n["rank"]:
            return reading([None] * len(n["seeds"]))
        i = n["rank"].index(FULL_RANK)
        return reading([row[i] for row in n[kind]["loss_over_p"]], mc=[row[i] for row in n[kind]["stderr"]])
    return read


def _collapsed_count(n):
    """Per seed, how many of its low-rank runs (both kinds, every rank) ended with |σ| < 0.002."""
    return reading([sum(abs(sigma) < COLLAPSED for kind in KINDS for sigma in n[kind]["sigma"][s])
                    for s in range(len(n["seeds"]))])


CHECKS = [
    check("low rank, Gaussian U Vᵀ at full rank (100): a real gain, L/p at p = 0.01 at least 0.003 below naive "
          "(a σ that collapsed to 0 would leave ≈ 1/12)", "≤ 1/12 − 0.003", _full_rank("lowrank"),
          at_most(NAIVE - 0.003), needs_paper_scale=True),
    check(f"low rank: no learned σ collapsed to about 0 (runs with |σ| < {COLLAPSED}, both kinds, every rank; "
          "mean count per seed)", "0", _collapsed_count, at_most(0.0), needs_paper_scale=True),
]
CLAIMS = []
