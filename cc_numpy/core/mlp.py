"""The simplified model: a bias-free one-layer ReLU MLP on the feature basis.

    h = W_in x          W_in:  d_mlp × n
    a = ReLU(h)
    ŷ = W_out a         W_out: n × d_mlp

In code a batch x is (B, n), rows as samples, so ŷ = ReLU(x W_inᵀ) W_outᵀ.
``x`` may be a dense ndarray or a scipy sparse matrix: every product with x is
written ``x @ A`` or ``x.T @ A``, which both kinds support, so training can use
the sparse batch and the tests the dense one with the same code.
"""

import numpy as np
import scipy.sparse as sp

from .validate import check_array, check_dtype, check_int, check_rng

PARAM_KEYS = ("W_in", "W_out")


def init_params(n, d_mlp, rng, dtype=np.float64):
    """Initial weights: each matrix uniform in ±√(6 / rows) (PAPER_NOTES).

    Returns ``{"W_in": (d_mlp, n), "W_out": (n, d_mlp)}``.
    """
    n, d_mlp = check_int(n, "n"), check_int(d_mlp, "d_mlp")
    check_rng(rng)
    dtype = check_dtype(dtype)
    bound_in, bound_out = np.sqrt(6.0 / d_mlp), np.sqrt(6.0 / n)
    return {"W_in": rng.uniform(-bound_in, bound_in, (d_mlp, n)).astype(dtype),
            "W_out": rng.uniform(-bound_out, bound_out, (n, d_mlp)).astype(dtype)}


def check_params(params):
    """Raise a clear error unless ``params`` holds W_in (d_mlp, n) and W_out (n, d_mlp)."""
    if not isinstance(params, dict) or any(k not in params for k in PARAM_KEYS):
        raise ValueError(f"MLP params must be a dict with keys {PARAM_KEYS}")
    W_in = check_array(params["W_in"], "W_in", ndim=2)
    d_mlp, n = W_in.shape
    check_array(params["W_out"], "W_out", shape=(n, d_mlp))
    return n, d_mlp


def check_inputs(x, n):
    """Raise unless x is a (B, n) ndarray or scipy sparse matrix of finite numbers."""
    if sp.issparse(x):
        if x.ndim != 2 or x.shape[1] != n or not np.all(np.isfinite(x.data)):
            raise ValueError(f"x must be a finite (B, {n}) matrix, got shape {x.shape}")
        return x
    return check_array(x, "x", shape=(None, n))


def forward(params, x, check=True):
    """ŷ = W_out ReLU(W_in x) for a batch.

    Parameters
    ----------
    params : {"W_in": (d_mlp, n), "W_out": (n, d_mlp)}
    x : (B, n) ndarray or scipy sparse matrix.
    check : validate params and x (the training loop checks once, then skips it).

    Returns
    -------
    y_hat : (B, n)
    cache : (x, h, a) with h, a of shape (B, d_mlp), for :func:`backward`.
    """
    if check:
        n, _ = check_params(params)
        check_inputs(x, n)
    h = np.asarray(x @ params["W_in"].T)                        # (B, n) @ (n, d_mlp) -> (B, d_mlp)   h = W_in x
    a = np.maximum(h, 0)                                        # (B, d_mlp)                          a = ReLU(h)
    y_hat = a @ params["W_out"].T                               # (B, d_mlp) @ (d_mlp, n) -> (B, n)   ŷ = W_out a
    return y_hat, (x, h, a)


def backward(params, cache, d_y_hat):
    """Gradients of the loss with respect to W_in and W_out.

    Parameters
    ----------
    params : {"W_in": (d_mlp, n), "W_out": (n, d_mlp)}
    cache : from :func:`forward`.
    d_y_hat : (B, n), ∂L/∂ŷ.

    Returns
    -------
    {"W_in": (d_mlp, n), "W_out": (n, d_mlp)}
    """
    x, h, a = cache
    d_W_out = d_y_hat.T @ a                                     # (n, B) @ (B, d_mlp) -> (n, d_mlp)   ∂ŷ/∂W_out = aᵀ
    d_a = d_y_hat @ params["W_out"]                             # (B, n) @ (n, d_mlp) -> (B, d_mlp)   ∂ŷ/∂a = W_out
    d_h = d_a * (h > 0)                                         # (B, d_mlp)                          ReLU'(h) = 1[h > 0]
    d_W_in = np.asarray(x.T @ d_h).T                            # ((n, B) @ (B, d_mlp))ᵀ -> (d_mlp, n) ∂h/∂W_in = xᵀ
    return {"W_in": d_W_in, "W_out": d_W_out}
