"""Exercise (chapter 12): the multiplicative G step of semi-NMF (Ding, Li & Jordan 2010).

Fill in ``update_G`` below, then check it from the repository root:

    python tutorial/exercises/check.py snmf_update_G

The check alternates the package's exact F step (``snmf.update_F``) with your G
step for 60 iterations on a small X, and checks after every G step that G stays
≥ 0 and that the objective J = ‖X − F Gᵀ‖²_F (``snmf.snmf_objective``) never
increases; then that one step agrees with the Ding–Li–Jordan update.
"""

import numpy as np


def update_G(X, F, G):
    """One multiplicative update of the non-negative factor G, F held fixed.

    Semi-NMF approximates X ≈ F Gᵀ with F of any sign and G ≥ 0 by minimising
    J(F, G) = ‖X − F Gᵀ‖²_F. Its gradient in G is

        ∂J/∂G = −2 XᵀF + 2 G FᵀF.

    Split every matrix Y into its positive and negative parts,
    [Y]₊ = max(Y, 0) and [Y]₋ = max(−Y, 0) (both ≥ 0, Y = [Y]₊ − [Y]₋). Then

        ∂J/∂G = 2 (D − N),   N = [XᵀF]₊ + G [FᵀF]₋   (what pushes G up, ≥ 0)
                             D = [XᵀF]₋ + G [FᵀF]₊   (what pushes G down, ≥ 0)

    and the update multiplies each entry by the square root of their ratio:

        G ← G ⊙ sqrt( N / D )                       (elementwise)

    An entry grows where the gradient is negative (N > D) and shrinks where it
    is positive; a product of non-negative numbers stays ≥ 0; and Ding, Li &
    Jordan prove J(F, G_new) ≤ J(F, G).

    Parameters
    ----------
    X : (m, k) float64, the matrix to factorise, any sign.
    F : (m, r) float64, the current F, any sign.
    G : (k, r) float64, the current G, all entries > 0.

    Returns
    -------
    G_new : (k, r) float64, all entries ≥ 0.

    D > 0 wherever G > 0 and F has no zero column, so no guard against
    division by zero is needed on the check's inputs.
    """
    # About six lines: XᵀF, FᵀF, their positive and negative parts, N, D, the update.
    raise NotImplementedError("write me: update_G in tutorial/exercises/snmf_update_G.py")
