"""The training batch stream: many steps' sparse batches drawn one by one, prepared together.

Preparing a sparse batch for the statistics (``batch.SharedBatch``: merge the rays, sign the
columns, sum R = rᵀx and Q = xᵀx) takes some twenty NumPy calls on arrays of a couple of
thousand entries, so at p = 0.01 it cost more than the arithmetic it prepares. None of it
depends on the weights, so :class:`BatchStream` draws the batches of the next ``BLOCK`` steps
(each with exactly the draws of ``data.sample_batch``, in the same order) and prepares them in
one pass: every entry carries its step s, and each sum over a batch becomes a sum over bins
(s, ·). A bin's terms are added in the same order as in a batch of its own, so every step's
batch is bit for bit the one ``SharedBatch(data.sample_batch(...))`` gives (a test checks).

A checkpoint stores the data stream's state, so a block never runs past a checkpoint step.
Dense batches (p ≥ ``data.DENSE_FROM_P``) are drawn and prepared one step at a time.
"""

import numpy as np

from .. import data
from .batch import SharedBatch

BLOCK = 16                 # steps drawn and prepared together at most (16 and 64 measured alike, 4 slower)
MAX_BINS = 1 << 20         # block · n² bins of R and Q (float64) at most: 8 MiB each
MAX_PAIRS = 1 << 20        # expected pairs of entries per block at most (~10 arrays of 8 bytes each)


class BatchStream:
    """``next_batch()`` returns the SharedBatch of the next training step.

    config : the run's config (``batch_size``, ``n``, ``p``, ``steps``).
    rng : the run's data stream (``data.random_streams(seed)["data"]``), advanced exactly as
        one ``data.sample_batch`` call a step would advance it, at every checkpoint step.
    dtype : the training dtype.   checkpoint_every : None, or the steps between checkpoints.
    """

    def __init__(self, config, rng, dtype, checkpoint_every=None):
        self.batch_size, self.n, self.p, self.steps = config["batch_size"], config["n"], config["p"], config["steps"]
        self.rng, self.dtype, self.checkpoint_every = rng, dtype, checkpoint_every
        self.sparse = self.p < data.DENSE_FROM_P
        B, n, p = self.batch_size, self.n, self.p
        pairs = B * n * p * (1 + (n - 1) * p)                           # E Σ_rows c², c ~ Binomial(n, p) entries a row
        self.block = int(max(1, min(BLOCK, MAX_BINS // (n * n), MAX_PAIRS // max(pairs, 1))))
        self.buffer, self.step = [], 0

    def start_at(self, step):
        """Begin at ``step`` (after a resume; the buffer must be empty)."""
        assert not self.buffer
        self.step = step

    def next_batch(self):
        """The SharedBatch of step ``self.step`` (then the step count moves on by one)."""
        if not self.sparse:
            self.step += 1
            return SharedBatch(data.sample_batch(self.batch_size, self.n, self.p, self.rng, self.dtype), self.dtype)
        if not self.buffer:
            block = min(self.block, self.steps - self.step)
            if self.checkpoint_every is not None:                       # the stream is saved at these steps
                block = min(block, self.checkpoint_every - self.step % self.checkpoint_every)
            assert block > 0, "no batch is left: the run has its steps"
            self.buffer = prepared_batches(self.batch_size, self.n, self.p, self.rng, self.dtype, block)
            self.buffer.reverse()
        self.step += 1
        return self.buffer.pop()


def prepared_batches(batch_size, n, p, rng, dtype, block):
    """The SharedBatches of ``block`` consecutive sparse training batches (rays merged).

    batch_size, n, p : B, features and the feature probability (p < ``data.DENSE_FROM_P``).
    rng : the data stream, advanced by ``block`` batches' draws.   dtype : the training dtype.

    Returns a list of ``block`` ``SharedBatch``es, in step order. Each batch is drawn with
    ``data.draw_active_entries`` as ``data.sample_sparse_batch`` draws it; the rest follows
    ``SharedBatch._init_sparse`` and ``batch.merged_rays`` with a step index s on every
    entry, row and bin ("(S,)" below: one value per step of the block).
    """
    draws = [data.draw_active_entries(batch_size, n, p, rng, dtype) for _ in range(block)]
    sizes = np.array([drawn.size for drawn, _ in draws])                # (S,) entries per step
    positions = np.concatenate([drawn for drawn, _ in draws])           # (E,) flat positions
    values = np.concatenate([v for _, v in draws]).astype(dtype, copy=False)   # (E,) x values
    step_of = np.repeat(np.arange(block), sizes)                                # (E,) step of each entry
    rows, columns = np.divmod(positions, n)                                     # (E,) row in its batch, feature
    columns = columns.astype(np.int32)
    row_key = step_of * batch_size + rows                                       # (E,) a row id across steps
    starts = data.run_starts(row_key)                                           # (rows,) first entry of each row
    counts = np.diff(np.append(starts, row_key.size))                           # (rows,) entries per row
    row_step = step_of[starts]                                                  # (rows,) step of each row

    # merged_rays: every one-entry row joins its ray (step, feature, sign)
    single = counts == 1
    entry = starts[single]                                                      # (single,) their entries
    v = values[entry].astype(np.float64)
    bucket = step_of[entry] * (2 * n) + columns[entry] + n * (v > 0)            # (single,) ray (s, i, sign)
    length_sq = np.bincount(bucket, v * v, block * 2 * n)                       # Σ v² per ray
    rays = np.flatnonzero(length_sq)                                            # (R,) the rays that occur
    ray_step, ray = np.divmod(rays, 2 * n)
    ray_values = (np.where(ray >= n, 1.0, -1.0) * np.sqrt(length_sq[rays])).astype(dtype)
    ray_columns = (ray % n).astype(np.int32)
    kept = np.repeat(~single, counts)                                           # (E,) entries of the other rows

    # each step's batch: its kept rows, then its rays (as merged_rays orders them)
    kept_at, ray_at, entries_per_step, entries_before = _kept_then_rays(step_of[kept], ray_step, block)
    total = entries_per_step.sum()
    merged = np.empty(total, dtype=dtype)
    merged[kept_at], merged[ray_at] = values[kept], ray_values
    merged_columns = np.empty(total, dtype=np.int32)
    merged_columns[kept_at], merged_columns[ray_at] = columns[kept], ray_columns
    entry_step = np.repeat(np.arange(block), entries_per_step)                  # (total,)
    multi_at, ray_row_at, rows_per_step, rows_before = _kept_then_rays(row_step[~single], ray_step, block)
    lengths = np.empty(rows_per_step.sum(), dtype=np.int64)                    # (rows,) entries per merged row
    lengths[multi_at], lengths[ray_row_at] = counts[~single], 1
    indptr = np.concatenate([[0], np.cumsum(lengths)])                          # across steps

    # SharedBatch._init_sparse for all steps at once
    positive = merged > 0
    signed_columns = merged_columns + positive.astype(np.int32) * np.int32(n)
    row_of = np.repeat(np.arange(lengths.size), lengths)                        # (total,) row of each entry
    partners = lengths[row_of]
    first = np.repeat(np.arange(total), partners)                               # (pairs,)
    group_start = np.cumsum(partners) - partners
    second = np.arange(first.size) + np.repeat(indptr[:-1][row_of] - group_start, partners)
    x_values = merged.astype(np.float64)                                       # (total,)
    r_values = x_values * positive                                              # (total,) r = ReLU(x)
    x_i, x_j, r_i = x_values[first], x_values[second], r_values[first]         # (pairs,) each
    row_cell = entry_step * (n * n) + merged_columns * n                        # (total,) bin (s, i, 0) of each entry
    cell = row_cell[first] + merged_columns[second]                             # (pairs,) bin (s, i, j)
    RQ = np.empty((block, 2, n * n), dtype=dtype)
    RQ[:, 0] = np.bincount(cell, r_i * x_j, block * n * n).reshape(block, n * n)   # R = rᵀx per step
    RQ[:, 1] = np.bincount(cell, x_i * x_j, block * n * n).reshape(block, n * n)   # Q = xᵀx per step

    batches = []
    for s in range(block):
        e0, e1 = entries_before[s], entries_before[s] + entries_per_step[s]
        r0, r1 = rows_before[s], rows_before[s] + rows_per_step[s]
        step_indptr = (indptr[r0:r1 + 1] - indptr[r0]).astype(np.int32)
        rr = float(np.dot(r_values[e0:e1], r_values[e0:e1]))                    # ‖r‖²
        batches.append(SharedBatch.prepared(batch_size, n, dtype, merged[e0:e1], signed_columns[e0:e1],
                                            step_indptr, RQ[s], rr))
    return batches


def _kept_then_rays(kept_step, ray_step, block):
    """Places for two step-sorted groups when each step lists its kept items, then its rays.

    kept_step (k,), ray_step (R,) : the step of each item, non-decreasing.
    Returns kept_at (k,), ray_at (R,) positions, and per step (S,) the item count and the first position.
    """
    kept_per_step = np.bincount(kept_step, minlength=block)                     # (S,)
    rays_per_step = np.bincount(ray_step, minlength=block)                      # (S,)
    per_step = kept_per_step + rays_per_step
    before = _exclusive_cumsum(per_step)                                        # (S,) first position of each step
    kept_at = before[kept_step] + np.arange(kept_step.size) - _exclusive_cumsum(kept_per_step)[kept_step]
    ray_at = (before[ray_step] + kept_per_step[ray_step] + np.arange(ray_step.size)
              - _exclusive_cumsum(rays_per_step)[ray_step])
    return kept_at, ray_at, per_step, before


def _exclusive_cumsum(counts):
    """(S,) counts -> (S,) the sum of the counts before each."""
    return np.cumsum(counts) - counts
