"""Phase diagram of the gain: where in (σ, training p) does the mixing term beat the naive model?

What it asks. The paper measures the gain over the naive model at one training p
(0.01) while σ varies, and at one σ (0.02) while p varies. This experiment fills
the plane: simplified MLPs trained on y = ReLU(x) + σMx for every σ on a grid
from 0 to ``sigma_max`` (``phase_sigma_points`` values) and every training p on a
log grid from 0.001 to 1 (``phase_p_points`` values), symmetric and asymmetric M,
each scored at its own training p. The gain is 1/12 − L/p: positive where the
model beats the naive 1/12, negative where it does worse.

Training. Each model trains for ``regime_steps(p, scale["phase_steps"])`` =
phase_steps / (1 − (1 − p)ⁿ) steps, as in the sparsity-regime figure, so that
every p sees the same number of non-empty samples (105k steps at p = 0.001 at
the paper's scale, 10k at p ≥ 0.05). All σ and both kinds of one (seed, p) share
one batch stream and train in one batched pass. Only the first
``scale["phase_seeds"]`` of the run's seeds train a grid (1 at every preset
scale: at the paper's scale one seed's 15 × 10 × 2 grid is already 300 models,
most of the cost at dense p); the errors shown are then the Monte Carlo
standard errors of the evaluation, not a spread over seeds.

How to run it small.

    python -m cc_numpy phase-diagram --scale quick --out runs/phase_diagram

(5 σ × 4 p × 2 kinds = 40 models at 450 base steps: about a minute of CPU, spread over two
cores), or ``--scale test`` for a 2 × 2 grid in seconds. At the paper's scale one seed is
300 trainings, 7.8 million model-steps, about 52 minutes of one core (28 on two, measured),
mostly at p ≥ 0.05 where every sample is non-empty; ``phase_sigma_points``,
``phase_p_points``, ``phase_steps`` and ``phase_seeds`` trade that against resolution.

What it shows. ``figures/phase_diagram.png``: two heat maps (asymmetric and
symmetric M) of the gain over σ (x) and training p (y, log), red where the model
beats naive, blue where it loses, the colour clipped at ± the largest gain, with
the zero-gain contour in black (a small grid also has each cell's gain × 1000
written on it). The checks state where the gain lives: none at
σ = 0 for sparse p (clean labels cannot beat 1/12 in the sparse limit), a
positive gain at σ = 0 for dense p that owes nothing to mixing (the naive +
offset mechanism, 1/12 − 0.0531 at p = 1), the best σ at p = 0.01, no gain for
strong mixing at p = 1, and the training p at which the gain at σ = 0.03 ends.
"""

import numpy as np

from ..analyses.baselines import optimal_offset
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, at_most, between, check, reading, within
from . import at_p, job
from .sparsity_regimes import regime_steps

ORDER = 120
BEYOND_THE_PAPER = True          # an experiment the paper leaves open: `reproduce --paper-only` skips it
HELP = "gain 1/12 − L/p over σ × training p (log grid), symmetric and asymmetric M, with the zero-gain contour"
KINDS = ("asymmetric", "symmetric")
CONTOUR_SIGMA = 0.03            # where the zero-gain contour's p is read


def phase_sigmas(scale):
    """σ from 0 to sigma_max in phase_sigma_points steps."""
    return np.linspace(0.0, scale["sigma_max"], scale["phase_sigma_points"]).tolist()


def phase_ps(scale):
    """Training p's: a log grid from 0.001 to 1 in phase_p_points steps, rounded to 6 significant digits
    (so 0.001, 0.01, 0.1 and 1 are exact when they are on the grid)."""
    return [float(f"{p:.6g}") for p in np.logspace(-3.0, 0.0, scale["phase_p_points"])]


def phase_seeds(scale, seeds):
    """The seeds that train a grid: the first ``phase_seeds`` of the run's seeds."""
    return list(seeds)[:scale["phase_seeds"]]


def phase_job(scale, seed, kind, sigma, p):
    """The model at one point of the grid: trained at p (steps compensated for all-zero samples), scored at p."""
    return job(scale, seed, [p], p=p, task="mixed", mixing=kind, sigma=sigma,
               steps=regime_steps(p, scale["phase_steps"]))


def jobs(scale, seeds):
    return [phase_job(scale, seed, kind, sigma, p) for seed in phase_seeds(scale, seeds) for p in phase_ps(scale)
            for kind in KINDS for sigma in phase_sigmas(scale)]


def contour_p(sigmas, ps, gain, sigma=CONTOUR_SIGMA):
    """The smallest training p where the gain at ``sigma`` turns from > 0 to ≤ 0 (None if it never does).

    ``gain`` is (p, σ). The gain at ``sigma`` is interpolated linearly in σ on each row, the crossing
    linearly in log p between the two grid p's around it. A gain already ≤ 0 at the smallest p is no
    crossing either (there is no gain to end).
    """
    along = np.array([np.interp(sigma, sigmas, row) for row in np.asarray(gain, dtype=float)])     # (p,)
    if along[0] <= 0:
        return None
    for i in range(1, len(ps)):
        if along[i] <= 0:                                   # along[i − 1] > 0 (else we had returned)
            t = along[i - 1] / (along[i - 1] - along[i])
            return float(np.exp(np.log(ps[i - 1]) + t * (np.log(ps[i]) - np.log(ps[i - 1]))))
    return None


def numbers(results, scale, seeds):
    sigmas, ps, used = phase_sigmas(scale), phase_ps(scale), phase_seeds(scale, seeds)
    out = {"sigma": sigmas, "p": ps, "steps": [regime_steps(p, scale["phase_steps"]) for p in ps], "seeds": used,
           "naive": NAIVE, "contour_sigma": CONTOUR_SIGMA,
           "offset_gain": [NAIVE - optimal_offset(p)[1] for p in ps]}       # clean labels, naive + best offset
    for kind in KINDS:
        table = np.array([[[at_p(results[phase_job(scale, s, kind, sigma, p)], p) for sigma in sigmas] for p in ps]
                          for s in used])                                    # (seeds, p, σ, 2)
        loss, error = table[..., 0], table[..., 1]
        out[kind] = {"loss_over_p": loss.tolist(), "stderr": error.tolist(), "gain": (NAIVE - loss).tolist(),
                     "contour_p": [contour_p(sigmas, ps, NAIVE - one) for one in loss]}
    return out


def _edges(values, log=False):
    """Cell edges around grid values (midpoints; geometric midpoints on a log axis)."""
    x = np.log(values) if log else np.asarray(values, dtype=float)
    if len(x) == 1:
        half = 0.5 if log else max(abs(x[0]) * 0.5, 0.005)
        edges = np.array([x[0] - half, x[0] + half])
    else:
        inner = (x[1:] + x[:-1]) / 2
        edges = np.concatenate([[x[0] - (inner[0] - x[0])], inner, [x[-1] + (x[-1] - inner[-1])]])
    return np.exp(edges) if log else edges


def plot(numbers, path):
    sigmas, ps = np.array(numbers["sigma"]), np.array(numbers["p"])
    means = {kind: np.mean(numbers[kind]["gain"], axis=0) for kind in KINDS}           # (p, σ)
    largest = max(float(np.max(m)) for m in means.values())
    limit = max(largest, 0.005)                     # colour clipped at ± the largest gain: the positive side is read
    with plotting.figure(path, 1, 2, size=(12, 4.8), sharey=True) as axes:
        for axis, kind in zip(axes, KINDS):
            gain = means[kind]
            mesh = axis.pcolormesh(_edges(sigmas), _edges(ps, log=True), gain, cmap="RdBu_r", vmin=-limit,
                                   vmax=limit, shading="flat")
            if gain.shape[0] > 1 and gain.shape[1] > 1 and gain.min() < 0 < gain.max():
                axis.contour(sigmas, ps, gain, levels=[0.0], colors="k", linewidths=1.5)
            if gain.size <= 60:                     # a small grid: write each cell's gain (× 1000) on it
                for i, p in enumerate(ps):
                    for j, sigma in enumerate(sigmas):
                        axis.text(sigma, p, f"{1000 * gain[i, j]:+.1f}", ha="center", va="center", fontsize=7)
            axis.axvline(numbers["contour_sigma"], color="0.3", linestyle=":", linewidth=1)
            axis.set_yscale("log")
            axis.set_xlabel("σ (mixing strength)")
            cells = "; cells: gain × 1000" if gain.size <= 60 else ""
            axis.set_title(f"{kind} M: gain 1/12 − L/p at the training p{cells}\n"
                           f"({len(numbers['seeds'])} seed(s); black: zero gain; "
                           f"dotted: σ = {numbers['contour_sigma']})",
                           fontsize=10)
            axis.figure.colorbar(mesh, ax=axis, extend="both", label="gain (red: beats naive)")
        axes[0].set_ylabel("training p (feature probability)")


def table(numbers):
    """Markdown lines: the gain grid of each kind (seed mean, ×1000), the largest MC error and the contour."""
    sigmas, ps = numbers["sigma"], numbers["p"]
    lines = ["## Phase diagram of the gain (1/12 − L/p at the training p, × 1000)", "",
             f"Mean over {len(numbers['seeds'])} seed(s) {numbers['seeds']}; steps per p: "
             + ", ".join(f"{p:g}: {s}" for p, s in zip(ps, numbers["steps"])) + ". Naive + offset on clean labels "
             "would gain " + ", ".join(f"{1000 * g:.2f}" for g in numbers["offset_gain"]) + " (× 1000) at these p."]
    for kind in KINDS:
        gain, error = np.mean(numbers[kind]["gain"], axis=0), np.max(numbers[kind]["stderr"])
        p_index, s_index = np.unravel_index(np.argmax(gain), gain.shape)
        contour = [c for c in numbers[kind]["contour_p"]]
        lines += ["", f"**{kind} M** (largest MC standard error {1000 * error:.2f} × 10⁻³; largest gain "
                  f"{1000 * gain[p_index, s_index]:.2f} × 10⁻³ at σ = {sigmas[s_index]:.4f}, p = {ps[p_index]:g}; "
                  f"zero-gain contour at σ = {numbers['contour_sigma']}: p = "
                  + ", ".join("none" if c is None else f"{c:.3g}" for c in contour) + " per seed)", "",
                  "| p \\ σ | " + " | ".join(f"{s:.4f}" for s in sigmas) + " |",
                  "|---|" + "---|" * len(sigmas)]
        for i, p in enumerate(ps):
            lines.append(f"| {p:g} | " + " | ".join(f"{1000 * g:+.1f}" for g in gain[i]) + " |")
    return lines


# --- readings ------------------------------------------------------------------------------------

def _near(ps, p):
    """Index of the grid p nearest ``p`` in log distance."""
    return int(np.argmin(np.abs(np.log(ps) - np.log(p))))


def _clean_sparse(n):
    """Per seed, the largest (gain − 2 MC errors) at σ = 0 over training p ≤ 0.01 (both kinds: the same labels)."""
    sparse = [i for i, p in enumerate(n["p"]) if p <= 0.01 + 1e-12]
    if not sparse or n["sigma"][0] != 0.0:
        return reading([None] * len(n["seeds"]))
    values = [max(float(g[i][0]) - 2 * float(e[i][0]) for i in sparse)
              for kind in KINDS for g, e in zip(n[kind]["gain"], n[kind]["stderr"])]
    per_seed = np.max(np.reshape(values, (len(KINDS), -1)), axis=0)
    return reading(per_seed, mc=np.max([n[k]["stderr"] for k in KINDS]))


def _clean_dense(n):
    """Per seed, the gain at σ = 0 and p = 1 (asymmetric kind; σ = 0 is the same clean model for both)."""
    if abs(n["p"][-1] - 1.0) > 1e-12 or n["sigma"][0] != 0.0:
        return reading([None] * len(n["seeds"]))
    k = "asymmetric"
    return reading([g[-1][0] for g in n[k]["gain"]], mc=[e[-1][0] for e in n[k]["stderr"]])


def _best_sigma(kind, p=0.01):
    def read(n):
        i = _near(n["p"], p)
        return reading([n["sigma"][int(np.argmax(g[i]))] for g in n[kind]["gain"]])
    return read


def _dense_strong(kind, low=0.06):
    """Per seed, the largest gain at p = 1 over σ ≥ ``low``."""
    def read(n):
        columns = [j for j, s in enumerate(n["sigma"]) if s >= low - 1e-12]
        if abs(n["p"][-1] - 1.0) > 1e-12 or not columns:
            return reading([None] * len(n["seeds"]))
        return reading([max(g[-1][j] for j in columns) for g in n[kind]["gain"]],
                       mc=[max(e[-1][j] for j in columns) for e in n[kind]["stderr"]])
    return read


def _contour(kind):
    return lambda n: reading(n[kind]["contour_p"])


OFFSET_GAIN_AT_1 = NAIVE - optimal_offset(1.0)[1]          # 1/12 − 0.0531 = 0.0302
CLAIMS = []
CHECKS = [
    check("phase diagram, σ = 0 (clean labels), every training p ≤ 0.01: no gain over naive (largest gain − 2 MC "
          "errors over those p)", "≤ 0 (in the sparse limit no MLP beats 1/12 on clean labels: Eckart–Young; "
          "naive + offset gains < 10⁻⁴ there)", _clean_sparse, at_most(0.0)),
    check("phase diagram, σ = 0, p = 1: the dense clean model gains what naive + offset gains "
          f"(1/12 − {optimal_offset(1.0)[1]:.4f} = {OFFSET_GAIN_AT_1:.4f}), a gain that owes nothing to mixing",
          f"{OFFSET_GAIN_AT_1:.4f} ± 0.003", _clean_dense, within(OFFSET_GAIN_AT_1, 0.003), needs_paper_scale=True,
          note="✗ above the range means the dense model found more than the offset; below, that it did not train "
               "to it"),
] + [
    check(f"phase diagram, {kind} M: at the training p nearest 0.01 the largest gain lies at σ ∈ [0.02, 0.04]",
          "0.02–0.04 (the σ sweep's minimum near σ ≈ 0.03)", _best_sigma(kind), between(0.02, 0.04),
          needs_paper_scale=True)
    for kind in KINDS
] + [
    check(f"phase diagram, {kind} M, p = 1: no gain for strong mixing (largest gain over σ ≥ 0.06)",
          "≤ 0 (naive scores 1/12 + σ²n/3 ≥ 0.2 on these labels; strong dense mixing should cost more than "
          "the 50 neurons can win back)", _dense_strong(kind), at_most(0.0), needs_paper_scale=True,
          note="for symmetric M the margin shrank with training in our quick runs (−0.0070 at 450 steps, −0.0004 "
               "at 600): the dense models absorb most of σMx, so longer training may cross 0")
    for kind in KINDS
] + [
    check(f"phase diagram, {kind} M: the training p where the gain at σ = {CONTOUR_SIGMA} ends (zero-gain contour; "
          "smallest p where it turns ≤ 0, interpolated in log p)", "between 0.01 and 1: positive at the σ sweep's "
          "p = 0.01, gone before p = 1", _contour(kind), between(0.01, 1.0), needs_paper_scale=True,
          note="a measurement with a broad rule: ✗ if the gain at σ = 0.03 never turns ≤ 0 (or is ≤ 0 already "
               "at the smallest p)")
    for kind in KINDS
]
