"""AdamW and the cosine learning-rate schedule, written out as PyTorch runs them.

At step t = 0 … T−1 (counting from 0; Adam's bias corrections use t + 1):

    lr_t = lr · (1 + cos(π t / T)) / 2                 (CosineAnnealingLR, T_max = T)
    θ   ← θ · (1 − lr_t λ)                             decoupled weight decay first
    m   ← β₁ m + (1 − β₁) g
    v   ← β₂ v + (1 − β₂) g²
    θ   ← θ − lr_t · m̂ / (√v̂ + ε)                      m̂ = m / (1 − β₁^{t+1}), v̂ = v / (1 − β₂^{t+1})

ε is added to √v̂ after the bias correction, as in ``torch.optim.AdamW``. The
arrays in ``params`` are updated in place; everything is elementwise, so a stack
of K models (a leading K axis) is updated exactly as K separate models would be.
"""

import math

import numpy as np


def cosine_lr(step, total_steps, lr):
    """lr_t = lr · (1 + cos(π t / T)) / 2 for t = 0 … T−1 (no warm-up, last step not zero)."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def adamw_init(params, keys, lr=3e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8):
    """The optimiser state: hyperparameters, the step count and zero moments m, v for each trained key."""
    return {"lr": lr, "weight_decay": weight_decay, "beta1": betas[0], "beta2": betas[1], "eps": eps,
            "step": 0,
            "m": {k: np.zeros_like(params[k]) for k in keys},
            "v": {k: np.zeros_like(params[k]) for k in keys}}


def adamw_step(params, grads, state, lr_t):
    """One AdamW update of ``params[k]`` (in place) for every trained key k, at learning rate ``lr_t``."""
    state["step"] += 1
    t = state["step"]                               # t + 1 in the module docstring
    beta1, beta2, eps, decay = state["beta1"], state["beta2"], state["eps"], state["weight_decay"]
    for key in state["m"]:
        g = grads[key]
        m = state["m"][key] = beta1 * state["m"][key] + (1 - beta1) * g      # m ← β₁ m + (1 − β₁) g
        v = state["v"][key] = beta2 * state["v"][key] + (1 - beta2) * g * g  # v ← β₂ v + (1 − β₂) g²
        m_hat = m / (1 - beta1 ** t)                                          # m̂ = m / (1 − β₁^t)
        v_hat = v / (1 - beta2 ** t)                                          # v̂ = v / (1 − β₂^t)
        params[key] *= 1 - lr_t * decay                                       # θ ← θ (1 − lr_t λ)
        params[key] -= lr_t * m_hat / (np.sqrt(v_hat) + eps)                  # θ ← θ − lr_t m̂ / (√v̂ + ε)
