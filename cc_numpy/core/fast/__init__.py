"""The fast engine: training and evaluation from batch statistics, many models per pass.

* ``batch.py``      — one shared batch and what every model needs from it (xᵀx, ReLU(x)ᵀx, signed inputs);
* ``statistics.py`` — loss and gradients of K models without forming the (B, n) output;
* ``batched.py``    — ``train_batched``: K models on one batch stream, stacked weights, one AdamW;
* ``evaluate.py``   — per-sample losses from the same statistics, for ``core.evaluate.loss_over_p``.

The plain teaching code (``core/mlp.py``, ``core/residual.py``, ``core/loss.py``) computes the
same numbers; ``tests/test_fast.py`` proves it.
"""

from .batched import train_batched

__all__ = ["train_batched"]
