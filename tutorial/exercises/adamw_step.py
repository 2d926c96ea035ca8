"""Exercise (chapter 05): one AdamW step, exactly as torch.optim.AdamW takes it.

Fill in ``adamw_step`` below, then check it from the repository root:

    python tutorial/exercises/check.py adamw_step

The check runs five steps with a cosine learning rate on a few numbers and
compares θ, m and v after every step with a reference AdamW trajectory written
from the formulas (relative error below 1e-10). It uses a large ε and a large
weight decay, so putting ε or the decay in the wrong place shows.
"""

import numpy as np


def adamw_step(theta, g, m, v, t, lr_t, weight_decay, beta1, beta2, eps):
    """One AdamW update; returns the new (theta, m, v).

    The update at step t = 1, 2, … (t counts the steps taken, this one included):

        θ ← θ · (1 − lr_t λ)                        decoupled weight decay, first
        m ← β₁ m + (1 − β₁) g                       first moment
        v ← β₂ v + (1 − β₂) g²                      second moment (elementwise)
        m̂ = m / (1 − β₁^t),   v̂ = v / (1 − β₂^t)    bias corrections
        θ ← θ − lr_t · m̂ / (√v̂ + ε)                 ε added after the bias correction

    Parameters
    ----------
    theta : (k,) float64, the parameters θ before the step.
    g : (k,) float64, the gradient ∂L/∂θ at θ.
    m : (k,) float64, first moment before the step (zeros before step 1).
    v : (k,) float64, second moment before the step (zeros before step 1).
    t : int ≥ 1, the number of this step (1 for the first step).
    lr_t : float > 0, the learning rate of this step (from the cosine schedule).
    weight_decay : float ≥ 0, λ.
    beta1, beta2 : floats in [0, 1), β₁ and β₂.
    eps : float > 0, ε.

    Returns
    -------
    theta : (k,) float64, θ after the step.
    m : (k,) float64, the new first moment (before bias correction).
    v : (k,) float64, the new second moment (before bias correction).

    You may return new arrays or update the given ones in place and return them.
    """
    # Six lines, one per equation above (the bias corrections take two).
    raise NotImplementedError("write me: adamw_step in tutorial/exercises/adamw_step.py")
