"""How big an experiment is: steps, grids, evaluation precision and the number of seeds.

A *scale* is a plain dict. ``PAPER`` holds the paper's settings (with three
seeds, so every figure has error bars across trainings), ``QUICK`` tells each
figure's story in about a minute, ``TEST`` runs the whole pipeline in seconds
for the test suite. :func:`make_scale` starts from one of them and applies
overrides, refusing unknown keys.
"""

import numpy as np

from ..core.validate import check_choice, check_float, check_int

PAPER = {
    "seeds": 3, "steps": 10_000, "batch_size": 2048, "eval_points": 30, "sigma_points": 41, "sigma_max": 0.08,
    "snmf_sigma_max": 0.04, "target_stderr": 2e-4, "min_samples": 50_000, "max_samples": 8_000_000,
    "eigen_steps": 20_000, "regime_ps": [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
    "low_ranks": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], "snmf_iter": 3000,
    "optimise_restarts": 4, "optimise_maxiter": 5000, "io_points": 41, "learned_sigma_steps": 10_000,
    "widths": [100, 150, 200, 300, 500, 700, 1000, 2000, 5000, 10000], "orthonormal_widths": [100, 1000],
    "best_train_p": 0.001, "best_steps": 10_000, "best_sigma_stride": 2, "best_restarts": 2,
    "phase_sigma_points": 15, "phase_p_points": 10, "phase_steps": 10_000, "phase_seeds": 1,
}
QUICK = dict(PAPER, seeds=1, steps=1500, eval_points=10, sigma_points=9, target_stderr=1e-3,
             min_samples=20_000, max_samples=1_000_000, eigen_steps=3000,
             regime_ps=[0.001, 0.01, 1.0], low_ranks=[10, 50, 100], snmf_iter=1000,
             optimise_restarts=1, optimise_maxiter=500, io_points=21, learned_sigma_steps=5000,
             widths=[100, 300, 1000, 3000], orthonormal_widths=[100, 1000],
             best_steps=450, best_sigma_stride=1, best_restarts=1, phase_sigma_points=5, phase_p_points=4,
             phase_steps=450)
TEST = dict(PAPER, seeds=1, steps=40, batch_size=256, eval_points=3, sigma_points=3, target_stderr=None,
            min_samples=2000, max_samples=2000, eigen_steps=40, regime_ps=[0.01, 1.0],
            low_ranks=[10], snmf_iter=20, optimise_restarts=1, optimise_maxiter=20, io_points=5,
            learned_sigma_steps=40, widths=[100, 200], orthonormal_widths=[100],
            best_steps=40, best_sigma_stride=1, best_restarts=1, phase_sigma_points=2, phase_p_points=2,
            phase_steps=40)
SCALES = {"paper": PAPER, "quick": QUICK, "test": TEST}
_WHOLE = ("seeds", "steps", "batch_size", "eval_points", "sigma_points", "min_samples", "max_samples",
          "eigen_steps", "snmf_iter", "optimise_restarts", "optimise_maxiter", "io_points", "learned_sigma_steps",
          "best_steps", "best_sigma_stride", "best_restarts", "phase_sigma_points", "phase_p_points",
          "phase_steps", "phase_seeds")


def make_scale(base="paper", **overrides):
    """A scale dict: ``base`` ('paper', 'quick' or 'test') with ``overrides``; unknown keys are refused."""
    check_choice(base, "scale", tuple(SCALES))
    unknown = sorted(set(overrides) - set(PAPER))
    if unknown:
        raise ValueError(f"unknown scale keys {unknown}; allowed: {sorted(PAPER)}")
    scale = dict(SCALES[base], **overrides)
    for key in _WHOLE:
        scale[key] = check_int(scale[key], key)
    if scale["target_stderr"] is not None:
        scale["target_stderr"] = check_float(scale["target_stderr"], "target_stderr", 0.0, np.inf, low_open=True)
    return scale


_AT_LEAST = ("steps", "batch_size", "eval_points", "sigma_points", "min_samples", "max_samples", "eigen_steps",
             "snmf_iter", "learned_sigma_steps", "optimise_restarts", "optimise_maxiter")


def is_full(scale):
    """Whether a scale trains and evaluates at least as much as the paper's (the seed count aside).

    Claims that need the paper's training length are judged only then; ``--seeds 5`` or a
    tighter ``--target-stderr`` keep a paper-scale run judged.
    """
    if any(scale[key] < PAPER[key] for key in _AT_LEAST):
        return False
    return scale["target_stderr"] is not None and scale["target_stderr"] <= PAPER["target_stderr"]


def seeds(scale, first=0):
    """The training seeds of a scale: first, first + 1, …"""
    return list(range(first, first + scale["seeds"]))


def eval_grid(scale):
    """Evaluation p's: a log grid from 0.001 to 1."""
    return np.logspace(-3, 0, scale["eval_points"]).tolist()


def grid_with(scale, p):
    """The evaluation grid with ``p`` added, so a model is also scored exactly at its training p."""
    return sorted(set(eval_grid(scale)) | {p})


def sigma_grid(scale):
    """σ from 0 to sigma_max in sigma_points steps."""
    return np.linspace(0.0, scale["sigma_max"], scale["sigma_points"]).tolist()
