"""Mean squared error over batch and features, its gradient, and ∂L/∂σ.

    L = 1/(B n) Σ_b Σ_o (ŷ_bo − y_bo)²          ∂L/∂ŷ = 2 (ŷ − y) / (B n)

``batch_size`` lets the loss stay the mean over the *full* batch when the
all-zero rows were dropped (their error is exactly 0 for a bias-free model).

A learned mixing scale σ enters through the labels y = ReLU(x) + |σ| M x, not
through the model, so its gradient is

    ∂L/∂σ = Σ_bo ∂L/∂y_bo · ∂y_bo/∂σ = −sign(σ) Σ_bo (∂L/∂ŷ)_bo (M x)_bo.
"""

import numpy as np


def mse_loss(y_hat, y, batch_size=None):
    """Mean squared error and its gradient.

    Parameters
    ----------
    y_hat, y : (B_kept, n) predictions and labels.
    batch_size : B, the number of samples the mean is over (default: B_kept).

    Returns
    -------
    loss : float
    d_y_hat : (B_kept, n), ∂L/∂ŷ.
    """
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat and y must have the same shape, got {y_hat.shape} and {y.shape}")
    if batch_size is None:
        batch_size = y.shape[0]
    if batch_size < y.shape[0]:
        raise ValueError(f"batch_size ({batch_size}) cannot be smaller than the rows given ({y.shape[0]})")
    count = batch_size * y.shape[1]                             # B n
    error = y_hat - y                                           # (B, n)   ŷ − y
    loss = float(np.vdot(error, error)) / count                 # L = Σ (ŷ − y)² / (B n)
    error *= 2.0 / count                                        # ∂L/∂ŷ = 2 (ŷ − y) / (B n)
    return loss, error


def sigma_grad(d_y_hat, mixed, sigma):
    """∂L/∂σ for labels y = ReLU(x) + |σ| M x.

    Parameters
    ----------
    d_y_hat : (B, n), ∂L/∂ŷ.
    mixed : (B, n), the unscaled mixing term M x.
    sigma : float, the current σ.
    """
    return -float(np.sign(sigma)) * float(np.vdot(d_y_hat, mixed))  # ∂L/∂y = −∂L/∂ŷ, ∂y/∂σ = sign(σ) M x
