"""The original Compressed Computation model of Braun et al.: a residual MLP.

    r  = W_E x                       W_E:   d × n, fixed random, unit-norm columns
    r' = r + W_out ReLU(W_in r)      W_in:  d_mlp × d,  W_out: d × d_mlp (trained)
    ŷ  = W_U r'                      W_U = W_Eᵀ (fixed)

trained on y = x + ReLU(x). Two implementations of the same function:

* :func:`forward_literal` / :func:`backward_literal` walk the d-dimensional residual
  stream exactly as written above. Read these first.
* :func:`forward` / :func:`backward` use that W_E is fixed. With the feature-basis
  weights W̃_in = W_in W_E (d_mlp × n), W̃_out = W_Eᵀ W_out (n × d_mlp) and the
  Gram matrix G = W_Eᵀ W_E (n × n),

      ŷ = G x + W̃_out ReLU(W̃_in x),

  a small n-dimensional MLP plus four (d × n × d_mlp) products per step (two to form
  W̃, two to map the gradients back: ∂L/∂W_in = (∂L/∂W̃_in) W_Eᵀ,
  ∂L/∂W_out = W_E (∂L/∂W̃_out)), independent of the batch size, against
  O(B·d·d_mlp) for the literal path. ``tests/test_models.py`` proves both give the
  same ŷ and the same gradients.
"""

import numpy as np

from . import mlp
from .data import random_embedding
from .mixing import feature_basis_weights
from .validate import check_array

PARAM_KEYS = ("W_in", "W_out")          # trained; params also holds the fixed "W_E"


def init_params(n, d, d_mlp, embed_rng, init_rng, dtype=np.float64, embedding="gaussian"):
    """W_E (d, n) from ``embed_rng``; W_in (d_mlp, d), W_out (d, d_mlp) uniform in ±√(6 / rows) from ``init_rng``.

    ``embedding``: 'gaussian' (Braun et al.'s) or 'orthonormal' (W_EᵀW_E = I, no mixing; ``data.random_embedding``).
    """
    bound_in, bound_out = np.sqrt(6.0 / d_mlp), np.sqrt(6.0 / d)
    return {"W_E": random_embedding(n, d, embed_rng, dtype, kind=embedding),
            "W_in": init_rng.uniform(-bound_in, bound_in, (d_mlp, d)).astype(dtype),
            "W_out": init_rng.uniform(-bound_out, bound_out, (d, d_mlp)).astype(dtype)}


def gram_matrix(W_E):
    """G = W_Eᵀ W_E (n × n): what the residual stream alone adds to ŷ (ŷ ⊇ G x)."""
    return W_E.T @ W_E                              # (n, d) @ (d, n) -> (n, n)


def forward_literal(params, x):
    """The residual stream, computed as written, for a batch x (B, n); returns ŷ (B, n) and the cache."""
    W_E, W_in, W_out = params["W_E"], params["W_in"], params["W_out"]
    r = x @ W_E.T                                   # (B, n) @ (n, d) -> (B, d)           r = W_E x
    h = r @ W_in.T                                  # (B, d) @ (d, d_mlp) -> (B, d_mlp)   h = W_in r
    a = np.maximum(h, 0)                            # (B, d_mlp)                          a = ReLU(h)
    r_out = r + a @ W_out.T                         # (B, d_mlp) @ (d_mlp, d) -> (B, d)   r' = r + W_out a
    y_hat = r_out @ W_E                             # (B, d) @ (d, n) -> (B, n)           ŷ = W_U r' = W_Eᵀ r'
    return y_hat, (r, h, a)


def backward_literal(params, cache, d_y_hat):
    """∂L/∂W_in (d_mlp, d) and ∂L/∂W_out (d, d_mlp) of the literal stream from ∂L/∂ŷ (B, n)."""
    r, h, a = cache
    W_E, W_out = params["W_E"], params["W_out"]
    d_r_out = d_y_hat @ W_E.T                       # (B, n) @ (n, d) -> (B, d)           ∂ŷ/∂r' = W_U = W_Eᵀ
    d_W_out = d_r_out.T @ a                         # (d, B) @ (B, d_mlp) -> (d, d_mlp)   ∂r'/∂W_out = aᵀ
    d_a = d_r_out @ W_out                           # (B, d) @ (d, d_mlp) -> (B, d_mlp)   ∂r'/∂a = W_out
    d_h = d_a * (h > 0)                             # (B, d_mlp)                          ReLU'(h)
    d_W_in = d_h.T @ r                              # (d_mlp, B) @ (B, d) -> (d_mlp, d)   ∂h/∂W_in = rᵀ
    return {"W_in": d_W_in, "W_out": d_W_out}


def forward(params, x, gram=None):
    """The same ŷ (B, n) as :func:`forward_literal`, computed in the feature basis.

    ``gram`` is G = W_Eᵀ W_E (n, n), computed here unless given (it is fixed during training).
    """
    if gram is None:
        gram = gram_matrix(params["W_E"])           # (n, n)
    tilde = feature_basis_weights(params)           # W̃_in (d_mlp, n), W̃_out (n, d_mlp)
    y_mlp, mlp_cache = mlp.forward(tilde, x)        # (B, n)                              W̃_out ReLU(W̃_in x)
    y_hat = x @ gram + y_mlp                        # (B, n) @ (n, n) -> (B, n)           ŷ = G x + ...  (G = Gᵀ)
    return y_hat, (tilde, mlp_cache)


def backward(params, cache, d_y_hat):
    """Gradients of :func:`forward`: the feature-basis MLP's gradients mapped back through W_E."""
    tilde, mlp_cache = cache
    W_E = params["W_E"]
    d_tilde = mlp.backward(tilde, mlp_cache, d_y_hat)   # ∂L/∂W̃_in (d_mlp, n), ∂L/∂W̃_out (n, d_mlp)
    return {"W_in": d_tilde["W_in"] @ W_E.T,        # (d_mlp, n) @ (n, d) -> (d_mlp, d)   W̃_in = W_in W_E
            "W_out": W_E @ d_tilde["W_out"]}        # (d, n) @ (n, d_mlp) -> (d, d_mlp)   W̃_out = W_Eᵀ W_out


def check_params(params):
    """Boundary check: W_E (d, n), W_in (d_mlp, d), W_out (d, d_mlp), finite; returns (n, d, d_mlp)."""
    if not isinstance(params, dict) or any(k not in params for k in ("W_E",) + PARAM_KEYS):
        raise ValueError("residual-model params must be a dict with keys ('W_E', 'W_in', 'W_out')")
    d, n = check_array(params["W_E"], "W_E", ndim=2).shape
    d_mlp = check_array(params["W_in"], "W_in", shape=(None, d)).shape[0]
    check_array(params["W_out"], "W_out", shape=(d, d_mlp))
    return n, d, d_mlp
