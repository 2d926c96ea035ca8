"""Exercise (chapter 02): the backward pass of the MLP ŷ = W_out ReLU(W_in x).

Fill in ``mlp_backward`` below, then check it from the repository root:

    python tutorial/exercises/check.py mlp_backward

The check compares your gradients with centred finite differences of the
package's own forward pass and loss (``mlp.forward``, ``loss.mse_loss``) in
float64, and passes when every relative error is below 1e-7.
"""

import numpy as np


def mlp_backward(W_in, W_out, x, h, a, d_y_hat):
    """Gradients of a scalar loss L with respect to W_in and W_out.

    The forward pass, for a batch with one sample per row:

        h     = x @ W_in.T          (B, n) @ (n, d_mlp) -> (B, d_mlp)    h = W_in x
        a     = max(h, 0)           (B, d_mlp)                           a = ReLU(h)
        y_hat = a @ W_out.T         (B, d_mlp) @ (d_mlp, n) -> (B, n)    ŷ = W_out a

    The chain rule, per sample (column vectors), summed over the batch:

        ∂L/∂W_out = (∂L/∂ŷ) aᵀ                      (n × d_mlp)
        ∂L/∂a     = W_outᵀ (∂L/∂ŷ)                  (d_mlp)
        ∂L/∂h     = ∂L/∂a ⊙ 1[h > 0]                (d_mlp)
        ∂L/∂W_in  = (∂L/∂h) xᵀ                      (d_mlp × n)

    With rows as samples the sum over the batch is a matrix product:
    Σ_b (∂L/∂ŷ_b) a_bᵀ is ``d_y_hat.T @ a``.

    Parameters
    ----------
    W_in : (d_mlp, n) float64, input weights.
    W_out : (n, d_mlp) float64, output weights.
    x : (B, n) float64, the inputs (a dense array here).
    h : (B, d_mlp) float64, pre-activations x @ W_in.T from the forward pass.
    a : (B, d_mlp) float64, activations max(h, 0).
    d_y_hat : (B, n) float64, ∂L/∂ŷ (for the mean squared error, 2 (ŷ − y) / (B n)).

    Returns
    -------
    d_W_in : (d_mlp, n), ∂L/∂W_in (the shape of W_in).
    d_W_out : (n, d_mlp), ∂L/∂W_out (the shape of W_out).
    """
    # Four lines, one per equation above. No loops over samples.
    raise NotImplementedError("write me: mlp_backward in tutorial/exercises/mlp_backward.py")
