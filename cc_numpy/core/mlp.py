"""The simplified model: a bias-free one-layer ReLU MLP on the feature basis.

    h = W_in x          W_in:  d_mlp × n
    a = ReLU(h)
    ŷ = W_out a         W_out: n × d_mlp

In code a batch x is (B, n), rows as samples, so ŷ = ReLU(x W_inᵀ) W_outᵀ.
Every product with x is written ``x @ A`` or ``x.T @ A``, so x may also be a
scipy sparse matrix (the tests use both).

The functions trust their inputs; :func:`check_params` is the check the public
entry points (``train``, ``evaluate``) run once.
"""

import numpy as np

from .validate import check_array

PARAM_KEYS = ("W_in", "W_out")


def init_params(n, d_mlp, rng, dtype=np.float64):
    """W_in (d_mlp, n) and W_out (n, d_mlp), each uniform in ±√(6 / rows)."""
    bound_in, bound_out = np.sqrt(6.0 / d_mlp), np.sqrt(6.0 / n)
    return {"W_in": rng.uniform(-bound_in, bound_in, (d_mlp, n)).astype(dtype),
            "W_out": rng.uniform(-bound_out, bound_out, (n, d_mlp)).astype(dtype)}


def forward(params, x):
    """ŷ = W_out ReLU(W_in x) for a batch x (B, n); returns ŷ (B, n) and the cache for :func:`backward`."""
    W_in, W_out = params["W_in"], params["W_out"]
    h = x @ W_in.T                                  # (B, n) @ (n, d_mlp) -> (B, d_mlp)   h = W_in x
    a = np.maximum(h, 0)                            # (B, d_mlp)                          a = ReLU(h)
    y_hat = a @ W_out.T                             # (B, d_mlp) @ (d_mlp, n) -> (B, n)   ŷ = W_out a
    return y_hat, (x, h, a)


def backward(params, cache, d_y_hat):
    """∂L/∂W_in (d_mlp, n) and ∂L/∂W_out (n, d_mlp) from ∂L/∂ŷ (B, n)."""
    x, h, a = cache
    d_W_out = d_y_hat.T @ a                         # (n, B) @ (B, d_mlp) -> (n, d_mlp)   ∂L/∂W_out = ∂ŷᵀ a
    d_a = d_y_hat @ params["W_out"]                 # (B, n) @ (n, d_mlp) -> (B, d_mlp)   ∂L/∂a = ∂ŷ W_out
    d_h = d_a * (h > 0)                             # (B, d_mlp)                          ReLU'(h) = 1[h > 0]
    d_W_in = (x.T @ d_h).T                          # ((n, B) @ (B, d_mlp))ᵀ -> (d_mlp, n) ∂L/∂W_in = ∂hᵀ x
    return {"W_in": d_W_in, "W_out": d_W_out}


def check_params(params):
    """Boundary check: W_in (d_mlp, n) and W_out (n, d_mlp), finite; returns (n, d_mlp)."""
    if not isinstance(params, dict) or any(k not in params for k in PARAM_KEYS):
        raise ValueError(f"MLP params must be a dict with keys {PARAM_KEYS}")
    d_mlp, n = check_array(params["W_in"], "W_in", ndim=2).shape
    check_array(params["W_out"], "W_out", shape=(n, d_mlp))
    return n, d_mlp
