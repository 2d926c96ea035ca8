"""AdamW and the cosine learning-rate schedule, written out as PyTorch runs them.

At step t = 0 … T−1 (counting from 0; Adam's bias corrections use t + 1):

    lr_t = lr · (1 + cos(π t / T)) / 2                 (CosineAnnealingLR, T_max = T)
    θ   ← θ · (1 − lr_t λ)                             decoupled weight decay first
    m   ← β₁ m + (1 − β₁) g
    v   ← β₂ v + (1 − β₂) g²
    θ   ← θ − (lr_t / (1 − β₁^{t+1})) · m / (√(v / (1 − β₂^{t+1})) + ε)

ε is added to √v̂ after the bias correction, as in ``torch.optim.AdamW``.
Every update is in place, so the arrays in ``params`` are the ones updated.
"""

import math

import numpy as np

from .validate import check_float, check_int


def cosine_lr(step, total_steps, lr):
    """lr_t = lr · (1 + cos(π t / T)) / 2 for t = 0 … T−1 (no warm-up, last step not zero)."""
    total_steps = check_int(total_steps, "total_steps")
    step = check_int(step, "step", minimum=0)
    if step >= total_steps:
        raise ValueError(f"step must be in [0, total_steps = {total_steps}), got {step}")
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def adamw_init(params, keys, lr=3e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8):
    """The optimiser state: hyperparameters, the step count and m, v for each trained key.

    Returns a dict ``{"lr", "weight_decay", "beta1", "beta2", "eps", "step", "m": {...}, "v": {...}}``.
    """
    check_float(lr, "lr", 0.0, np.inf, low_open=True)
    check_float(weight_decay, "weight_decay", 0.0)
    beta1 = check_float(betas[0], "beta1", 0.0, 1.0, high_open=True)
    beta2 = check_float(betas[1], "beta2", 0.0, 1.0, high_open=True)
    check_float(eps, "eps", 0.0, np.inf, low_open=True)
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"params has no entries {missing} to optimise; it has {sorted(params)}")
    return {"lr": float(lr), "weight_decay": float(weight_decay), "beta1": beta1, "beta2": beta2,
            "eps": float(eps), "step": 0,
            "m": {k: np.zeros_like(params[k]) for k in keys},
            "v": {k: np.zeros_like(params[k]) for k in keys}}


def adamw_step(params, grads, state, lr_t):
    """One AdamW update of ``params[k]`` for every k in ``state["m"]``, in place.

    Parameters
    ----------
    params : dict of arrays (updated in place).
    grads : dict of arrays of the same shapes.
    state : from :func:`adamw_init` (updated in place).
    lr_t : the learning rate for this step (e.g. :func:`cosine_lr`).
    """
    state["step"] += 1
    t = state["step"]                                            # t + 1 in the module docstring
    beta1, beta2, eps = state["beta1"], state["beta2"], state["eps"]
    bias1 = 1.0 - beta1 ** t                                     # 1 − β₁^t
    bias2 = 1.0 - beta2 ** t                                     # 1 − β₂^t
    step_size = lr_t / bias1                                     # lr_t / (1 − β₁^t)
    decay = 1.0 - lr_t * state["weight_decay"]                   # 1 − lr_t λ
    for key in state["m"]:
        theta, g, m, v = params[key], grads[key], state["m"][key], state["v"][key]
        scratch = np.empty_like(theta)
        theta *= decay                                           # θ ← θ (1 − lr_t λ)
        np.subtract(g, m, out=scratch)
        scratch *= 1.0 - beta1
        m += scratch                                             # m ← m + (1 − β₁)(g − m) = β₁ m + (1 − β₁) g
        np.multiply(g, g, out=scratch)
        scratch *= 1.0 - beta2
        v *= beta2
        v += scratch                                             # v ← β₂ v + (1 − β₂) g²
        np.sqrt(v, out=scratch)
        scratch /= math.sqrt(bias2)
        scratch += eps                                           # √v̂ + ε,  v̂ = v / (1 − β₂^t)
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        theta -= scratch                                         # θ ← θ − lr_t m̂ / (√v̂ + ε)
