"""Centred finite differences and the relative error, to check hand-written gradients.

    ∂f/∂θ_k ≈ (f(θ + h e_k) − f(θ − h e_k)) / (2h)         error O(h²)

    relative error = ‖g_fd − g‖ / (‖g_fd‖ + ‖g‖)

Use float64 and a point away from ReLU kinks (no pre-activation within ~h of 0),
where the loss is smooth and a correct gradient gives a relative error near
1e-9 or below; a wrong one gives something of order 1.
"""

import numpy as np

from .validate import check_float, check_int, check_rng


def relative_error(numerical, analytic):
    """‖g_fd − g‖ / (‖g_fd‖ + ‖g‖); 0 when both are zero."""
    numerical, analytic = np.asarray(numerical, float), np.asarray(analytic, float)
    if numerical.shape != analytic.shape:
        raise ValueError(f"shapes differ: {numerical.shape} and {analytic.shape}")
    denominator = np.linalg.norm(numerical) + np.linalg.norm(analytic)
    return 0.0 if denominator == 0 else float(np.linalg.norm(numerical - analytic) / denominator)


def numerical_gradient(f, array, indices=None, h=1e-6):
    """Centred differences of the scalar ``f()`` with respect to entries of ``array``.

    Parameters
    ----------
    f : callable taking no arguments, reading ``array`` (perturbed in place and restored).
    array : float64 ndarray.
    indices : flat indices to probe (default: all).
    h : step.

    Returns
    -------
    (len(indices),) array of ∂f/∂array.flat[k].
    """
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError("numerical_gradient needs a float64 ndarray (finite differences in float32 are noise)")
    check_float(h, "h", 0.0, np.inf, low_open=True)
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError("array must be contiguous so it can be perturbed in place")
    indices = np.arange(flat.size) if indices is None else np.asarray(indices)
    grads = np.empty(indices.size)
    for j, k in enumerate(indices):
        saved = flat[k]
        flat[k] = saved + h
        f_plus = f()
        flat[k] = saved - h
        f_minus = f()
        flat[k] = saved
        grads[j] = (f_plus - f_minus) / (2 * h)                 # (f(θ + h e_k) − f(θ − h e_k)) / 2h
    return grads


def check_gradients(f, params, analytic, rng, max_entries=200, h=1e-6):
    """Relative error of ``analytic[key]`` against finite differences for every key.

    Every entry of a tensor with at most ``max_entries`` entries is probed, a
    random subset of that size otherwise. Returns ``{key: relative error}``.
    """
    check_rng(rng)
    max_entries = check_int(max_entries, "max_entries")
    errors = {}
    for key, grad in analytic.items():
        array = params[key]
        size = array.size
        indices = np.arange(size) if size <= max_entries else rng.choice(size, max_entries, replace=False)
        numerical = numerical_gradient(f, array, indices, h)
        errors[key] = relative_error(numerical, np.asarray(grad).reshape(-1)[indices])
    return errors
