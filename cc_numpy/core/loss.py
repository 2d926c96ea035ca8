"""Mean squared error over batch and features, its gradient, and ∂L/∂σ.

    L = 1/(B n) Σ_b Σ_o (ŷ_bo − y_bo)²          ∂L/∂ŷ = 2 (ŷ − y) / (B n)

A learned mixing strength σ enters through the labels y = ReLU(x) + |σ| M x, not
through the model, so its gradient is

    ∂L/∂σ = Σ_bo ∂L/∂y_bo · ∂y_bo/∂σ = −sign(σ) Σ_bo (∂L/∂ŷ)_bo (M x)_bo.
"""

import numpy as np


def mse_loss(y_hat, y):
    """The loss L (float) and ∂L/∂ŷ (B, n) for predictions and labels of shape (B, n)."""
    error = y_hat - y                               # (B, n)   ŷ − y
    loss = float(np.mean(error * error))            # L = Σ (ŷ − y)² / (B n)
    d_y_hat = 2.0 * error / error.size              # (B, n)   ∂L/∂ŷ = 2 (ŷ − y) / (B n)
    return loss, d_y_hat


def sigma_grad(d_y_hat, mixed, sigma):
    """∂L/∂σ for labels y = ReLU(x) + |σ| M x, from ∂L/∂ŷ (B, n) and the unscaled mixing term M x (B, n)."""
    return -float(np.sign(sigma)) * float(np.vdot(d_y_hat, mixed))  # ∂L/∂y = −∂L/∂ŷ, ∂y/∂σ = sign(σ) M x
