"""The mixing matrix hidden in the CC model's labels, in closed form.

Derivation (column vectors). The residual CC model computes

    r  = W_E x                                 (d,)   W_E: d × n, fixed
    r' = r + W_out ReLU(W_in r)                (d,)
    ŷ  = W_U r' = W_Eᵀ W_E x + W_Eᵀ W_out ReLU(W_in W_E x)      (W_U = W_Eᵀ)

and is trained on y = x + ReLU(x). Name the feature-basis weights
W̃_in = W_in W_E (d_mlp × n) and W̃_out = W_Eᵀ W_out (n × d_mlp). Then the error is

    ŷ − y = W̃_out ReLU(W̃_in x) − [ ReLU(x) + (I − W_Eᵀ W_E) x ],

exactly the error of the simplified MLP ŷ = W̃_out ReLU(W̃_in x) on the mixed labels
y = ReLU(x) + σ M x with

    σ M = I − W_Eᵀ W_E           (σ = 1; our sign, the one the algebra gives).

The diagonal of W_Eᵀ W_E is 1 (unit-norm columns), so M has a zero diagonal and
off-diagonal entries −⟨W_E[:, i], W_E[:, j]⟩ of spread ≈ 1/√d. The authors wrote
the embedding-like matrix as W_Eᵀ W_E − I, the opposite sign: with it the MLP
fits labels the residual model never sees. Since the losses agree for any
weights, the gradients agree too, mapped through W_E by the chain rule:

    ∂L/∂W_in  = (∂L/∂W̃_in) W_Eᵀ          ∂L/∂W_out = W_E (∂L/∂W̃_out).
"""

import numpy as np

from .validate import check_array, check_choice


def residual_mixing_matrix(W_E, sign="algebra"):
    """The mixing matrix of a residual CC model with embedding W_E.

    Parameters
    ----------
    W_E : (d, n) embedding.
    sign : 'algebra' gives M = I − W_Eᵀ W_E (what the residual model's labels
        contain); 'authors' gives M = W_Eᵀ W_E − I (the authors' convention).

    Returns
    -------
    M : (n, n) ndarray, to be used with σ = 1.
    """
    check_array(W_E, "W_E", ndim=2)
    check_choice(sign, "sign", ("algebra", "authors"))
    gram = W_E.T @ W_E                                          # (n, d) @ (d, n) -> (n, n)
    M = np.eye(W_E.shape[1], dtype=gram.dtype) - gram           # σM = I − W_Eᵀ W_E
    return M if sign == "algebra" else -M


def feature_basis_weights(params):
    """The residual model's weights seen from the feature basis.

    Returns ``{"W_in": W_in W_E (d_mlp × n), "W_out": W_Eᵀ W_out (n × d_mlp)}``.
    """
    W_E, W_in, W_out = params["W_E"], params["W_in"], params["W_out"]
    return {"W_in": W_in @ W_E,                                 # (d_mlp, d) @ (d, n) -> (d_mlp, n)   W̃_in = W_in W_E
            "W_out": W_E.T @ W_out}                             # (n, d) @ (d, d_mlp) -> (n, d_mlp)   W̃_out = W_Eᵀ W_out
