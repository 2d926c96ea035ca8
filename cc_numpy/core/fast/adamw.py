"""``optim.adamw_step`` in place: the same operations in the same order, without temporaries.

The teaching update (``core/optim.py``) writes AdamW as five lines of array expressions; each
allocates a new array, and a stack of 41 models holds 410 000 weights. Here every expression
is evaluated into two work arrays per weight, one operation at a time, in the order Python
evaluates the teaching line, so every rounding is the same: the weights are bit for bit those
of ``optim.adamw_step`` (``tests/test_fast.py`` checks).
"""

import numpy as np


def work_arrays(params, keys):
    """{key: (array, array)}: two scratch arrays of ``params[key]``'s shape and dtype per trained key."""
    return {key: (np.empty_like(params[key]), np.empty_like(params[key])) for key in keys}


def adamw_step(params, grads, state, lr_t, work):
    """One AdamW update of ``params[k]`` (in place) for every trained key k.

    params, grads : {key: ndarray}, a weight and its gradient of one shape and dtype (ndarrays,
        not NumPy scalars: an in-place operation on a scalar would only rebind a name).
    state : from ``optim.adamw_init`` (its m and v are updated in place).   lr_t : this step's rate.
    work : from :func:`work_arrays`.
    """
    state["step"] += 1
    t = state["step"]
    beta1, beta2, eps, decay = state["beta1"], state["beta2"], state["eps"], state["weight_decay"]
    for key in state["m"]:
        g, m, v, theta = grads[key], state["m"][key], state["v"][key], params[key]
        update, root = work[key]
        m *= beta1                                                  # m ← β₁ m + (1 − β₁) g
        np.multiply(1 - beta1, g, out=update)
        m += update
        v *= beta2                                                  # v ← β₂ v + (1 − β₂) g²  ((1 − β₂) g) g
        np.multiply(1 - beta2, g, out=update)
        update *= g
        v += update
        np.divide(v, 1 - beta2 ** t, out=root)                      # v̂ = v / (1 − β₂^t)
        np.sqrt(root, out=root)
        root += eps                                                 # √v̂ + ε
        np.divide(m, 1 - beta1 ** t, out=update)                    # m̂ = m / (1 − β₁^t)
        np.multiply(lr_t, update, out=update)                       # lr_t m̂
        update /= root
        theta *= 1 - lr_t * decay                                   # θ ← θ (1 − lr_t λ)
        theta -= update                                               # θ ← θ − lr_t m̂ / (√v̂ + ε)
