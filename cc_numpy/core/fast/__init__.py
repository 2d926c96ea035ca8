"""The fast engine: training and evaluation from batch statistics, many models per pass.

* ``batch.py``      — one shared batch and what every model needs from it (xᵀx, ReLU(x)ᵀx, signed inputs);
* ``stream.py``     — the training batch stream: the next 16 steps' sparse batches drawn and prepared together;
* ``statistics.py`` — loss and gradients of K models without forming the (B, n) output (sparse batches);
* ``batched.py``    — ``train_batched``: K models on one batch stream, stacked weights, one AdamW;
* ``adamw.py``      — that AdamW update in place, with the teaching update's roundings;
* ``evaluate.py``   — per-sample losses from the same statistics, for ``core.evaluate.loss_over_p``.

The plain teaching code (``core/mlp.py``, ``core/residual.py``, ``core/loss.py``) computes the
same numbers; ``tests/test_fast.py`` proves it.
"""

from .batched import train_batched

__all__ = ["train_batched"]
