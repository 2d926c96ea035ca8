"""Scoring a model: L/p by Monte Carlo, with its standard error.

    L   = E_x[ (1/n) Σ_o (ŷ_o − y_o)² ]          the loss per feature
    L/p = L / p                                   plotted against p on log–log axes

Each sample's loss ℓ_b = (1/n) Σ_o (ŷ_bo − y_bo)² is one draw; the estimate is
the mean of ℓ over N samples divided by p, and its standard error is
std(ℓ) / √N / p. All-zero samples have ℓ = 0 exactly (bias-free models), so they
are counted but never computed. With ``target_stderr`` the sampler keeps
drawing chunks until the standard error of L/p is at most that target (or
``max_samples`` is reached), so sparse p, where ℓ is heavy-tailed, gets more
samples and dense p fewer.
"""

import numpy as np

from . import data, mlp, residual
from .fast import evaluate as fast_evaluate
from .runtime import single_blas_thread
from .validate import check_choice, check_enough_active, check_float, check_int, check_probability, check_rng

MIN_EXPECTED_ACTIVE = 10  # loss_over_p refuses a p whose sample budget would hold fewer active features


def model_forward(params, x, gram=None):
    """ŷ for either model: the residual model if params holds W_E, else the MLP. x is (B, n)."""
    if "W_E" in params:
        return residual.forward(params, x, gram=gram)[0]
    return mlp.forward(params, x)[0]


def check_model_params(params):
    """Validate params of either model; return the number of features n."""
    return residual.check_params(params)[0] if "W_E" in params else mlp.check_params(params)[0]


def sample_losses(params, batch, task, M=None, sigma=0.0, gram=None):
    """Per-sample losses ℓ_b of the non-empty rows of a batch (``data.sample_batch``): (B_nz,) float64.

    The plain reference: :func:`loss_over_p` computes the same ℓ_b from batch statistics
    (``fast.evaluate``) without forming ŷ and y; ``tests/test_fast.py`` checks they agree.
    """
    x = batch["x"]
    y_hat = model_forward(params, x, gram)                      # (B_nz, n)
    y = data.make_labels(x, task, M, sigma)                     # (B_nz, n)
    error = y_hat - y
    return np.mean(np.square(error, dtype=np.float64), axis=1)  # ℓ_b = (1/n) Σ_o (ŷ_bo − y_bo)²


@single_blas_thread()
def loss_over_p(params, p, rng, task="clean", M=None, sigma=0.0, n_samples=100_000,
                target_stderr=None, max_samples=20_000_000, chunk_size=65_536):
    """L/p at one p, with its standard error.

    Parameters
    ----------
    params : a model's params (MLP or residual).
    p : float in (0, 1], the evaluation probability.
    rng : numpy.random.Generator for the evaluation inputs.
    task, M, sigma : the labels (``data.make_labels``).
    n_samples : samples to draw (the minimum when ``target_stderr`` is given).
    target_stderr : optional; keep sampling until stderr(L/p) ≤ target_stderr.
    max_samples : the cap when sampling to a target.

    Returns
    -------
    dict with ``p``, ``loss_over_p``, ``stderr`` (NaN when fewer than two samples held an
    active feature), ``n_samples``, ``n_active`` (samples with an active feature) and
    ``target_met`` (None without a target, else whether stderr ≤ target_stderr: False when
    ``max_samples`` was reached first).

    A p so small that the sample budget (``n_samples``, or ``max_samples`` with a target)
    would hold fewer than ``MIN_EXPECTED_ACTIVE`` active features on average is refused: the estimate would be
    0 ± 0 or a single draw.
    """
    n = check_model_params(params)
    p = check_probability(p)
    check_rng(rng)
    check_choice(task, "task", data.TASKS)
    n_samples = check_int(n_samples, "n_samples", minimum=2)      # no standard error from fewer than two
    chunk_size = check_int(chunk_size, "chunk_size")
    budget = n_samples
    if target_stderr is not None:
        target_stderr = check_float(target_stderr, "target_stderr", 0.0, np.inf, low_open=True)
        max_samples = check_int(max_samples, "max_samples")
        budget = max(n_samples, max_samples)
    check_enough_active(p, budget * n, what=f"{budget} samples of {n} features", minimum=MIN_EXPECTED_ACTIVE)
    dtype = params["W_in"].dtype

    model = fast_evaluate.prepare(params, task, M, sigma)
    total, total_sq, count, active = 0.0, 0.0, 0, 0
    while True:
        goal = n_samples if target_stderr is None else max(n_samples, max_samples)
        size = min(chunk_size, max(goal - count, 1))
        batch = data.sample_batch(size, n, p, rng, dtype)
        losses = fast_evaluate.sample_losses(model, batch)     # (B_nz,) ℓ_b, as sample_losses gives them
        total += float(losses.sum())
        total_sq += float(np.dot(losses, losses))
        count += size
        active += losses.size                                   # samples holding an active feature
        mean = total / count
        variance = max(total_sq / count - mean * mean, 0.0) * count / (count - 1)
        stderr = np.sqrt(variance / count) / p if active >= 2 else float("nan")  # NaN: too few to tell
        if count >= n_samples and (target_stderr is None or stderr <= target_stderr or count >= max_samples):
            break
    target_met = None if target_stderr is None else bool(stderr <= target_stderr)
    return {"p": p, "loss_over_p": mean / p, "stderr": float(stderr), "n_samples": count,
            "n_active": active, "target_met": target_met}


def loss_over_p_curve(params, ps, rng, **kwargs):
    """:func:`loss_over_p` at each p of ``ps``; returns a dict of (len(ps),) arrays."""
    ps = np.atleast_1d(np.asarray(ps, dtype=float))
    if ps.ndim != 1 or ps.size == 0:
        raise ValueError("ps must be a non-empty list of probabilities in (0, 1]")
    rows = [loss_over_p(params, float(p), rng, **kwargs) for p in ps]
    return {key: np.array([row[key] for row in rows]) for key in ("p", "loss_over_p", "stderr", "n_samples")}

