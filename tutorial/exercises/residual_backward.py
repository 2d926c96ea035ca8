"""Exercise (chapters 03 and 04): the backward pass of the residual CC model, the literal way.

Fill in ``residual_backward_literal`` below, then check it from the repository root:

    python tutorial/exercises/check.py residual_backward

The check compares your gradients with centred finite differences of the
package's literal forward pass (``residual.forward_literal``) and loss
(``loss.mse_loss``) in float64; it passes when every relative error is below 1e-7.
"""

import numpy as np


def residual_backward_literal(W_E, W_in, W_out, r, h, a, d_y_hat):
    """Gradients of a scalar loss L with respect to W_in and W_out of the residual model.

    The forward pass walks the d-dimensional residual stream, one sample per row:

        r     = x @ W_E.T           (B, n) @ (n, d) -> (B, d)            r  = W_E x
        h     = r @ W_in.T          (B, d) @ (d, d_mlp) -> (B, d_mlp)    h  = W_in r
        a     = max(h, 0)           (B, d_mlp)                           a  = ReLU(h)
        r_out = r + a @ W_out.T     (B, d)                               r' = r + W_out a
        y_hat = r_out @ W_E         (B, d) @ (d, n) -> (B, n)            ŷ  = W_U r',  W_U = W_Eᵀ

    W_E is fixed (not trained). The chain rule, per sample, summed over the batch:

        ∂L/∂r'    = W_Uᵀ (∂L/∂ŷ) = W_E (∂L/∂ŷ)       (d)
        ∂L/∂W_out = (∂L/∂r') aᵀ                     (d × d_mlp)
        ∂L/∂a     = W_outᵀ (∂L/∂r')                 (d_mlp)
        ∂L/∂h     = ∂L/∂a ⊙ 1[h > 0]                (d_mlp)
        ∂L/∂W_in  = (∂L/∂h) rᵀ                      (d_mlp × d)

    (The skip connection r → r' also carries gradient back to r, but r depends
    only on x and the fixed W_E, so no trained weight needs it.)

    Parameters
    ----------
    W_E : (d, n) float64, the fixed embedding (unit-norm columns).
    W_in : (d_mlp, d) float64, input weights, reading the residual stream.
    W_out : (d, d_mlp) float64, output weights, writing to the residual stream.
    r : (B, d) float64, the residual stream x @ W_E.T.
    h : (B, d_mlp) float64, pre-activations r @ W_in.T.
    a : (B, d_mlp) float64, activations max(h, 0).
    d_y_hat : (B, n) float64, ∂L/∂ŷ.

    Returns
    -------
    d_W_in : (d_mlp, d), ∂L/∂W_in.
    d_W_out : (d, d_mlp), ∂L/∂W_out.
    """
    # Five lines, one per equation above.
    raise NotImplementedError("write me: residual_backward_literal in tutorial/exercises/residual_backward.py")
