"""Exercise (chapter 11): the gradient of the exact small-p loss.

Fill in ``small_p_grad`` below, then check it from the repository root:

    python tutorial/exercises/check.py small_p_grad

The check compares your gradients with centred finite differences of the
package's ``small_p.small_p_loss`` in float64 (relative error below 1e-7), at
weights with no entry of W_in near 0 (where the loss has kinks).
"""

import numpy as np


def small_p_grad(W_in, W_out, M, sigma):
    """Gradient of lim_{p→0} L/p with respect to W_in and W_out.

    The loss (chapter 11), for the MLP ŷ = W_out ReLU(W_in x) on labels
    y = ReLU(x) + σ M x:

        H⁺ = ReLU(W_in),   H⁻ = ReLU(−W_in)                 (d_mlp, n), elementwise
        R⁺ = W_out H⁺ − I − σM                              (n, n), column i: error for x = +e_i
        R⁻ = W_out H⁻ + σM                                  (n, n), column i: error for x = −e_i
        lim L/p = (1/(6n)) (‖R⁺‖²_F + ‖R⁻‖²_F)

    Its gradient, with c = 2/(6n) (from ∂‖R‖²_F/∂R = 2R):

        ∂/∂W_out = c (R⁺ H⁺ᵀ + R⁻ H⁻ᵀ)                                  (n, d_mlp)
        ∂/∂W_in  = c (1[W_in > 0] ⊙ W_outᵀR⁺ − 1[W_in < 0] ⊙ W_outᵀR⁻)    (d_mlp, n)

    (H⁻ = ReLU(−W_in) has derivative −1[W_in < 0]: hence the minus sign.)

    Parameters
    ----------
    W_in : (d_mlp, n) float64.
    W_out : (n, d_mlp) float64.
    M : (n, n) float64, the unscaled mixing matrix.
    sigma : float, σ.

    Returns
    -------
    d_W_in : (d_mlp, n), ∂(lim L/p)/∂W_in.
    d_W_out : (n, d_mlp), ∂(lim L/p)/∂W_out.
    """
    # About eight lines: H⁺, H⁻, R⁺, R⁻, then the two gradients.
    raise NotImplementedError("write me: small_p_grad in tutorial/exercises/small_p_grad.py")
