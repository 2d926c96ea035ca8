"""One function pair per figure of the paper: the jobs it needs, and the numbers it plots.

Every experiment ``NAME`` has

* ``NAME_jobs(scale, seed)``: the trainings it needs, as job dicts (``jobs.py``);
* ``NAME_numbers(results, scale, seed)``: plain JSON-able numbers from those results.

:func:`run_experiment` glues the two with a runner (``jobs.run_jobs``, optionally
cached and parallel). ``reproduce.py`` gathers the jobs of every experiment
first, so that one pool of workers trains them all, and shares trainings that
two experiments need (same job, same key).

``scale`` is a dict (:data:`PAPER_SCALE`, :data:`QUICK_SCALE`, :data:`TEST_SCALE`,
or your own via :func:`make_scale`): steps, number of σ and p points, evaluation
precision, and so on. The defaults are the paper's.
"""

import numpy as np

from .pipeline.jobs import make_job, run_jobs
from .core.validate import check_choice, check_int

NAIVE = 1.0 / 12.0

PAPER_SCALE = {
    "steps": 10_000, "batch_size": 2048, "eval_points": 30, "sigma_points": 41, "sigma_max": 0.08,
    "snmf_sigma_max": 0.04, "target_stderr": 2e-4, "min_samples": 50_000, "max_samples": 8_000_000,
    "eigen_steps": 20_000, "regime_ps": [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
    "low_ranks": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], "snmf_iter": 3000,
    "optimise_restarts": 4, "optimise_maxiter": 5000, "io_points": 41, "learned_sigma_steps": 10_000,
}
QUICK_SCALE = dict(PAPER_SCALE, steps=1500, eval_points=10, sigma_points=9, target_stderr=1e-3,
                   min_samples=20_000, max_samples=1_000_000, eigen_steps=3000,
                   regime_ps=[0.001, 0.01, 0.1, 1.0], low_ranks=[10, 50, 100], snmf_iter=1000,
                   optimise_restarts=1, optimise_maxiter=500, io_points=21, learned_sigma_steps=5000)
TEST_SCALE = dict(PAPER_SCALE, steps=40, batch_size=256, eval_points=3, sigma_points=3, target_stderr=None,
                  min_samples=2000, max_samples=2000, eigen_steps=40, regime_ps=[0.01, 1.0],
                  low_ranks=[10], snmf_iter=20, optimise_restarts=1, optimise_maxiter=20, io_points=5,
                  learned_sigma_steps=40)
SCALES = {"paper": PAPER_SCALE, "quick": QUICK_SCALE, "test": TEST_SCALE}


def make_scale(base="paper", **overrides):
    """A scale dict: ``base`` ('paper', 'quick' or 'test') with ``overrides``; unknown keys are refused."""
    check_choice(base, "scale", tuple(SCALES))
    unknown = sorted(set(overrides) - set(PAPER_SCALE))
    if unknown:
        raise ValueError(f"unknown scale keys {unknown}; allowed: {sorted(PAPER_SCALE)}")
    scale = dict(SCALES[base], **overrides)
    for key in ("steps", "eval_points", "sigma_points", "eigen_steps", "snmf_iter", "batch_size",
                "learned_sigma_steps"):
        check_int(scale[key], key)
    return scale


def eval_grid(scale):
    """Evaluation p's: a log grid from 0.001 to 1."""
    return np.logspace(-3, 0, scale["eval_points"]).tolist()


def sigma_grid(scale):
    """σ from 0 to sigma_max in sigma_points steps (the SNMF figure reuses the values ≤ snmf_sigma_max)."""
    return np.linspace(0.0, scale["sigma_max"], scale["sigma_points"]).tolist()


def _job(scale, seed, eval_ps, eval_task=None, init_from=None, **config):
    config = dict({"steps": scale["steps"], "batch_size": scale["batch_size"], "seed": seed}, **config)
    return make_job(config, init_from=init_from, eval_ps=eval_ps, eval_task=eval_task,
                    target_stderr=scale["target_stderr"], min_samples=scale["min_samples"],
                    max_samples=scale["max_samples"])


def _curve(result):
    return {"p": result["eval_p"].tolist(), "loss_over_p": result["eval_loss_over_p"].tolist(),
            "stderr": result["eval_stderr"].tolist()}


# --- loss over input sparsity for different M ------------------------------------------------

MIXING_TYPES = {
    "clean (M = 0)": {"task": "clean"},
    "embedding, our sign (σ = 1)": {"task": "mixed", "mixing": "embedding", "sigma": 1.0},
    "embedding, authors' sign (σ = 1)": {"task": "mixed", "mixing": "embedding_authors", "sigma": 1.0},
    "asymmetric, learned σ": {"task": "mixed", "mixing": "asymmetric", "learn_sigma": True},
    "symmetric, learned σ": {"task": "mixed", "mixing": "symmetric", "learn_sigma": True},
    "residual CC model": {"model": "residual", "task": "residual"},
}


def grid_with(scale, p):
    """The evaluation grid with ``p`` added (so a model is also scored exactly at its training p)."""
    return sorted(set(eval_grid(scale)) | {p})


def mixing_types_jobs(scale, seed=0):
    """Models trained at p = 0.01 on each kind of label, evaluated over the p grid (and at 0.01)."""
    return [_job(scale, seed, grid_with(scale, 0.01), p=0.01, steps=_steps_for(scale, settings), **settings)
            for settings in MIXING_TYPES.values()]


def _steps_for(scale, settings):
    """Training steps: learned-σ runs get ``learned_sigma_steps`` (σ needs ~2k steps to leave 0)."""
    return scale["learned_sigma_steps"] if settings.get("learn_sigma") else scale["steps"]


def mixing_types_numbers(results, scale, seed=0):
    curves = {}
    for name, result in zip(MIXING_TYPES, results):
        curves[name] = dict(_curve(result), sigma=float(result["sigma"]))
    return {"curves": curves, "naive": NAIVE, "train_p": 0.01}


# --- loss against σ -------------------------------------------------------------------------

def sigma_sweep_jobs(scale, seed=0):
    """For each kind (symmetric, asymmetric) and σ on the grid, a model at p = 0.01 with fixed σ."""
    return [_job(scale, seed, [0.01], p=0.01, task="mixed", mixing=kind, sigma=sigma)
            for kind in ("symmetric", "asymmetric") for sigma in sigma_grid(scale)]


def sigma_sweep_numbers(results, scale, seed=0):
    sigmas = sigma_grid(scale)
    numbers = {"sigma": sigmas, "naive": NAIVE, "p": 0.01}
    for index, kind in enumerate(("symmetric", "asymmetric")):
        chunk = results[index * len(sigmas):(index + 1) * len(sigmas)]
        values = np.array([float(r["eval_loss_over_p"][0]) for r in chunk])
        errors = np.array([float(r["eval_stderr"][0]) for r in chunk])
        best = int(np.argmin(values))
        above = [s for s, v in zip(sigmas, values) if s > sigmas[best] and v > NAIVE]
        numbers[kind] = {"loss_over_p": values.tolist(), "stderr": errors.tolist(),
                         "min_loss_over_p": float(values[best]), "min_stderr": float(errors[best]),
                         "argmin_sigma": sigmas[best],
                         "first_sigma_above_naive": above[0] if above else None}
    return numbers


# --- fine-tuning with M removed -------------------------------------------------------------

def finetune_jobs(scale, seed=0, sigma=0.025):
    """Train on asymmetric M (σ = 0.025), then continue with M = 0 (fresh AdamW and schedule)."""
    first = _job(scale, seed, [0.01], p=0.01, task="mixed", mixing="asymmetric", sigma=sigma)
    second = _job(scale, seed, [0.01], init_from=first, p=0.01, task="clean")
    return [first, second]


def _windowed(values, window):
    usable = len(values) // window * window
    return values[:usable].reshape(-1, window).mean(axis=1)


def finetune_numbers(results, scale, seed=0, sigma=0.025):
    from .core.evaluate import loss_over_p

    first, second = results
    on_clean = loss_over_p({"W_in": first["W_in"].astype(float), "W_out": first["W_out"].astype(float)}, 0.01,
                           np.random.default_rng([seed, 5]), task="clean", n_samples=scale["min_samples"],
                           target_stderr=scale["target_stderr"], max_samples=scale["max_samples"])
    window = max(1, scale["steps"] // 100)
    trace = np.concatenate([_windowed(first["history"], window), _windowed(second["history"], window)]) / 0.01
    return {"sigma": sigma, "naive": NAIVE, "window": window,
            "step": (np.arange(trace.size) * window + window).tolist(), "trace_loss_over_p": trace.tolist(),
            "switch_step": scale["steps"],
            "mixed_phase_loss_over_p": float(first["eval_loss_over_p"][0]),
            "mixed_phase_stderr": float(first["eval_stderr"][0]),
            "mixed_weights_on_clean_loss_over_p": on_clean["loss_over_p"],
            "finetuned_loss_over_p": float(second["eval_loss_over_p"][0]),
            "finetuned_stderr": float(second["eval_stderr"][0])}


# --- sparsity regimes -----------------------------------------------------------------------

def regime_steps(p, steps, n=100):
    """Steps that compensate for all-zero samples: steps / (1 − (1 − p)^n)."""
    return int(round(steps / (1.0 - (1.0 - p) ** n)))


def sparsity_regimes_jobs(scale, seed=0, sigma=0.02):
    """Asymmetric σ = 0.02 models trained at each p, evaluated over the grid and at their own p."""
    grid = eval_grid(scale)
    return [_job(scale, seed, sorted(set(grid + [p])), p=p, task="mixed", mixing="asymmetric", sigma=sigma,
                 steps=regime_steps(p, scale["steps"]))
            for p in scale["regime_ps"]]


def input_output_curves(W_in, W_out, points=41):
    """For each feature i, ŷ_i as x_i runs over [-1, 1] with every other input 0.

    Returns (x (points,), y (n, points), slope_positive (n,)): the slope for x_i > 0 is
    (W_out ReLU(W_in e_i))_i, the diagonal of W_out ReLU(W_in).
    """
    x = np.linspace(-1.0, 1.0, points)                          # (points,)
    positive = np.diag(W_out @ np.maximum(W_in, 0))             # (n,)  ŷ_i = x · (W_out ReLU(W_in e_i))_i, x > 0
    negative = np.diag(W_out @ np.maximum(-W_in, 0))            # (n,)  ŷ_i = |x| · (W_out ReLU(−W_in e_i))_i, x < 0
    y = np.where(x > 0, positive[:, None] * x, negative[:, None] * np.abs(x))  # (n, points)
    return x, y, positive


def sparsity_regimes_numbers(results, scale, seed=0, sigma=0.02):
    models = []
    for p, result in zip(scale["regime_ps"], results):
        curve = _curve(result)
        own = curve["p"].index(min(curve["p"], key=lambda q: abs(q - p)))
        models.append(dict(curve, train_p=p, steps=regime_steps(p, scale["steps"]),
                           own_loss_over_p=curve["loss_over_p"][own], own_stderr=curve["stderr"][own]))
    io = {}
    for label, result in (("sparsest", results[0]), ("densest", results[-1])):
        x, y, slopes = input_output_curves(result["W_in"].astype(float), result["W_out"].astype(float),
                                           scale["io_points"])
        io[label] = {"x": x.tolist(), "y": y.tolist(), "slope_positive": slopes.tolist()}
    return {"sigma": sigma, "naive": NAIVE, "models": models, "input_output": io}


# --- baselines ------------------------------------------------------------------------------

def baselines_jobs(scale, seed=0):
    return []


def baselines_numbers(results, scale, seed=0):
    """Naive and naive + offset on clean labels: analytic over the grid, Monte Carlo at a few p."""
    from .analyses import baselines
    from .core.evaluate import loss_over_p

    grid = eval_grid(scale)
    offsets = [baselines.optimal_offset(p) for p in grid]
    rng = np.random.default_rng([seed, 7])
    checks = []
    for p in (0.01, 0.1, 1.0):
        b, analytic = baselines.optimal_offset(p)
        measured = loss_over_p(baselines.offset_params(b), p, rng, task="clean",
                               n_samples=scale["min_samples"], target_stderr=scale["target_stderr"],
                               max_samples=scale["max_samples"])
        naive_measured = loss_over_p(baselines.naive_params(), p, rng, task="clean",
                                     n_samples=scale["min_samples"], target_stderr=scale["target_stderr"],
                                     max_samples=scale["max_samples"])
        checks.append({"p": p, "offset": b, "offset_analytic": analytic,
                       "offset_measured": measured["loss_over_p"], "offset_stderr": measured["stderr"],
                       "naive_analytic": NAIVE, "naive_measured": naive_measured["loss_over_p"],
                       "naive_stderr": naive_measured["stderr"]})
    return {"p": grid, "naive": NAIVE, "optimal_offset": [b for b, _ in offsets],
            "offset_loss_over_p": [value for _, value in offsets], "checks": checks}


# --- eigen-analysis -------------------------------------------------------------------------

def eigen_jobs(scale, seed=0, sigma=0.03):
    """One model trained 20k steps on asymmetric σ = 0.03 at p = 0.01."""
    return [_job(scale, seed, [0.01], p=0.01, task="mixed", mixing="asymmetric", sigma=sigma,
                 steps=scale["eigen_steps"])]


def eigen_numbers(results, scale, seed=0, sigma=0.03):
    from .analyses import eigen

    result = results[0]
    W_in, W_out, M = (result[k].astype(float) for k in ("W_in", "W_out", "M"))
    values, E = eigen.symmetric_eigenbasis(M)
    fractions = eigen.subspace_fractions(W_in, W_out, E, k=50)
    projections = eigen.projection_matrices(W_in, W_out, E)
    fit = eigen.product_vs_mixing_fit(W_in, W_out, M, sigma)
    singular = eigen.mixing_svd(M, sigma)[0]
    return {"sigma": sigma, "loss_over_p": float(result["eval_loss_over_p"][0]),
            "eigenvalues": values.tolist(), "singular_values": np.asarray(singular).tolist(),
            "alignment": eigen.eigen_alignment(W_in, W_out, E).tolist(),
            "input_fraction": np.asarray(fractions["input_fraction"]).tolist(),
            "output_fraction": np.asarray(fractions["output_fraction"]).tolist(),
            "projection_input": np.asarray(projections["input"]).tolist(),
            "projection_output": np.asarray(projections["output"]).tolist(),
            "fit": {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in fit.items()},
            "summary": eigen.eigen_summary(W_in, W_out, M, sigma, k=50)}


# --- exact small-p loss ---------------------------------------------------------------------

def small_p_jobs(scale, seed=0):
    return eigen_jobs(scale, seed)


def small_p_numbers(results, scale, seed=0):
    """Exact p → 0 L/p against Monte Carlo, and the noise-free small-p optimum (clean and mixed)."""
    from .analyses import baselines, small_p

    result = results[0]
    W_in, W_out, M, sigma = result["W_in"].astype(float), result["W_out"].astype(float), result["M"], \
        float(result["sigma"])
    rng = np.random.default_rng([seed, 11])
    exact = small_p.small_p_loss(W_in, W_out, M, sigma)
    estimate, error = small_p.monte_carlo_small_p_loss(W_in, W_out, M, sigma, max(scale["min_samples"], 2), rng)
    naive = baselines.naive_params()
    optimum = {}
    for label, (M_opt, sigma_opt) in {"clean": (None, 0.0), "asymmetric σ = 0.03": (M, 0.03)}.items():
        found = small_p.optimise_small_p(100, 50, M=M_opt, sigma=sigma_opt, rng=np.random.default_rng([seed, 13]),
                                         n_restarts=scale["optimise_restarts"], maxiter=scale["optimise_maxiter"])
        optimum[label] = {"loss_over_p": float(found["loss"]),
                          "lower_bound": float(small_p.small_p_lower_bound(100, 50, M=M_opt, sigma=sigma_opt))}
    return {"trained": {"sigma": sigma, "exact": float(exact), "monte_carlo": float(estimate),
                        "monte_carlo_stderr": float(error),
                        "sampled_at_p_0.01": float(result["eval_loss_over_p"][0])},
            "naive_exact": float(small_p.small_p_loss(naive["W_in"], naive["W_out"])),
            "optimum": optimum}


# --- semi-NMF baseline ----------------------------------------------------------------------

def snmf_sigmas(scale):
    return [s for s in sigma_grid(scale) if s <= scale["snmf_sigma_max"] + 1e-12]


def snmf_jobs(scale, seed=0):
    """The σ-sweep's trained models with σ ≤ 0.04 (shared with the sweep), to compare against."""
    sigmas = set(snmf_sigmas(scale))
    return [job for job in sigma_sweep_jobs(scale, seed) if job["config"]["sigma"] in sigmas]


def snmf_numbers(results, scale, seed=0):
    """SNMF baselines (both targets) and trained models, exact small-p L/p, against σ."""
    from .analyses import baselines, small_p
    from .core.data import mixing_matrix, random_streams

    sigmas = snmf_sigmas(scale)
    numbers = {"sigma": sigmas, "naive": NAIVE}
    for index, kind in enumerate(("symmetric", "asymmetric")):
        trained = results[index * len(sigmas):(index + 1) * len(sigmas)]
        M = mixing_matrix(kind, 100, random_streams(seed)["matrix"])
        entry = {"trained_small_p": [], "trained_sampled": [],
                 "snmf_ours": [], "snmf_authors": []}
        for sigma, result in zip(sigmas, trained):
            entry["trained_small_p"].append(float(small_p.small_p_loss(
                result["W_in"].astype(float), result["W_out"].astype(float), M, sigma)))
            entry["trained_sampled"].append(float(result["eval_loss_over_p"][0]))
            for target in ("ours", "authors"):
                built = baselines.snmf_baseline(M, sigma, np.random.default_rng([seed, 17]), target=target,
                                                max_iter=scale["snmf_iter"])
                entry[f"snmf_{target}"].append(float(built["small_p_loss_over_p"]))
        numbers[kind] = entry
    return numbers


# --- low-rank M -----------------------------------------------------------------------------

def low_rank_jobs(scale, seed=0):
    """Learned σ with M = U Vᵀ of each rank, Gaussian and orthonormal (flat spectrum), at p = 0.01."""
    return [_job(scale, seed, [0.01], p=0.01, task="mixed", mixing=kind, rank=rank, learn_sigma=True,
                 steps=scale["learned_sigma_steps"])
            for kind in ("lowrank", "lowrank_orthonormal") for rank in scale["low_ranks"]]


def low_rank_numbers(results, scale, seed=0):
    ranks = list(scale["low_ranks"])
    numbers = {"rank": ranks, "naive": NAIVE}
    for index, kind in enumerate(("lowrank", "lowrank_orthonormal")):
        chunk = results[index * len(ranks):(index + 1) * len(ranks)]
        numbers[kind] = {"loss_over_p": [float(r["eval_loss_over_p"][0]) for r in chunk],
                         "stderr": [float(r["eval_stderr"][0]) for r in chunk],
                         "sigma": [float(r["sigma"]) for r in chunk]}
    return numbers


# --- the foundation's check: three seeds --------------------------------------------------------

def seeds_jobs(scale, seed=0):
    """The residual CC model and the clean-task MLP at the paper's settings, three seeds each."""
    return [_job(scale, s, grid_with(scale, 0.01), p=0.01, **settings)     # seed 0: mixing_types' own jobs
            for settings in ({"model": "residual", "task": "residual"}, {"task": "clean"})
            for s in (seed, seed + 1, seed + 2)]


def seeds_numbers(results, scale, seed=0):
    numbers = {"seeds": [seed, seed + 1, seed + 2], "naive": NAIVE}
    for index, name in enumerate(("residual CC model", "clean MLP")):
        chunk = results[3 * index:3 * index + 3]
        at = [int(np.flatnonzero(np.isclose(r["eval_p"], 0.01))[0]) for r in chunk]
        numbers[name] = {"loss_over_p": [float(r["eval_loss_over_p"][i]) for r, i in zip(chunk, at)],
                         "stderr": [float(r["eval_stderr"][i]) for r, i in zip(chunk, at)],
                         "seconds": [float(r["seconds"]) for r in chunk]}
    return numbers


EXPERIMENTS = {
    "seeds": (seeds_jobs, seeds_numbers),
    "mixing_types": (mixing_types_jobs, mixing_types_numbers),
    "sigma_sweep": (sigma_sweep_jobs, sigma_sweep_numbers),
    "finetune": (finetune_jobs, finetune_numbers),
    "sparsity_regimes": (sparsity_regimes_jobs, sparsity_regimes_numbers),
    "baselines": (baselines_jobs, baselines_numbers),
    "eigen": (eigen_jobs, eigen_numbers),
    "small_p": (small_p_jobs, small_p_numbers),
    "snmf": (snmf_jobs, snmf_numbers),
    "low_rank": (low_rank_jobs, low_rank_numbers),
}


def run_experiment(name, scale=None, seed=0, runner=None):
    """Numbers of one experiment. ``runner(jobs) -> results`` defaults to serial, uncached ``run_jobs``."""
    check_choice(name, "experiment", tuple(EXPERIMENTS))
    scale = PAPER_SCALE if scale is None else scale
    seed = check_int(seed, "seed", minimum=0)
    make_jobs, numbers = EXPERIMENTS[name]
    jobs = make_jobs(scale, seed)
    results = (runner or run_jobs)(jobs) if jobs else []
    return numbers(results, scale, seed)
