"""Sparse inputs, the three label tasks and the mixing-matrix families.

Notation (column vectors in the math, rows-as-samples in code):

    x ∈ R^n          each feature active with probability p, value ~ U[-1, 1], else 0
    residual task    y = x + ReLU(x)                 (the CC model of Braun et al.)
    clean task       y = ReLU(x)                     (M = 0)
    mixed task       y = ReLU(x) + σ M x             (y_o = ReLU(x_o) + σ Σ_i M_oi x_i)

In code a batch ``x`` has shape (B, n) and ``σ M x`` is ``sigma * x @ M.T``.

Sampling is O(p·B·n): instead of drawing B·n Bernoulli coins we draw the gaps
between active positions of the flattened batch. The gap between successive
successes of independent Bernoulli(p) trials is Geometric(p), so cumulative
sums of geometric draws give exactly the same distribution of active
positions. At p = 0.01 about 37 % of samples are all-zero ((1 − p)^n); a
bias-free model's loss and gradient on them are exactly zero, so
:func:`sample_sparse_batch` keeps only the non-empty rows (as a CSR matrix)
and remembers the full batch size, which the loss still divides by.

Every random draw takes an explicit ``numpy.random.Generator``.
:func:`random_streams` splits one seed into independent streams for the
matrices (W_E or M), the data and the initial weights (``SeedSequence.spawn``),
so a σ sweep can reuse one fixed unscaled M while only σ changes.
"""

import numpy as np
import scipy.sparse as sp

from .validate import check_array, check_choice, check_dtype, check_int, check_probability, check_rng

TASKS = ("residual", "clean", "mixed")
MIXING_KINDS = ("asymmetric", "symmetric", "embedding", "embedding_authors", "lowrank", "lowrank_orthonormal")
EMBEDDINGS = ("gaussian", "orthonormal")   # kinds of W_E (random_embedding)
STREAMS = ("matrix", "data", "init", "eval", "analysis")   # one named stream per use; never [seed, k]
DENSE_FROM_P = 0.1        # from this p on, sample_batch draws dense arrays (CSR products no longer pay)


def nonempty_fraction(p, n):
    """1 − (1 − p)ⁿ: the fraction of samples with at least one active feature."""
    return 1.0 - (1.0 - p) ** n


def random_streams(seed):
    """Independent generators for the matrices, the data, the initial weights, evaluation and analyses.

    Returns a dict ``{"matrix", "data", "init", "eval", "analysis"}`` of Generators
    spawned from ``numpy.random.SeedSequence(seed)`` (a stream's draws never
    depend on how much another stream was used).
    """
    check_int(seed, "seed", minimum=0)
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def _active_positions(total, p, rng):
    """Sorted flat positions in [0, total) each active independently with probability p.

    Positions are cumulative sums of Geometric(p) gaps, so the cost is O(p·total).
    Returns an int64 array of shape (K,), K ~ Binomial(total, p).

    A gap longer than ``total`` already lands past the end, so gaps are capped at
    ``total + 1``: the kept positions and the draws are unchanged, and at tiny p
    (where NumPy returns gaps near the int64 maximum) the sums cannot overflow.
    """
    expected = p * total
    chunk = int(expected + 6.0 * np.sqrt(expected) + 16)
    pieces, last = [], -1
    while last < total:
        gaps = np.minimum(rng.geometric(p, size=chunk), total + 1)  # (chunk,) gaps in [1, total + 1]
        positions = last + np.cumsum(gaps)                      # (chunk,) next active positions
        pieces.append(positions)
        last = positions[-1]
    positions = np.concatenate(pieces)
    return positions[: np.searchsorted(positions, total)]       # keep positions < total


def draw_active_entries(batch_size, n, p, rng, dtype):
    """The draws of one sparse batch: flat positions (K,) int64, sorted, and values (K,) ~ U[-1, 1].

    Unchecked: :func:`sample_sparse_batch` validates its arguments, then calls this;
    ``core/fast/stream.py`` calls it for many batches in a row with the same draws.
    """
    positions = _active_positions(batch_size * n, p, rng)       # (K,)
    values = rng.uniform(-1.0, 1.0, size=positions.size).astype(dtype)  # (K,) x_i ~ U[-1, 1]
    return positions, values


def run_starts(keys):
    """Where each run of equal values starts in a sorted (K,) array: (runs,) indices, 0 first if K > 0."""
    new_run = np.empty(keys.size, dtype=bool)                   # (K,) an entry starts a run
    new_run[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new_run[1:])
    return np.flatnonzero(new_run)


def sample_sparse_batch(batch_size, n, p, rng, dtype=np.float64):
    """A batch of sparse inputs, all-zero rows dropped.

    Parameters
    ----------
    batch_size : int, B, the number of samples drawn (all-zero ones included).
    n : int, number of features.
    p : float in (0, 1], probability that a feature is active.
    rng : numpy.random.Generator.
    dtype : float32 or float64.

    Returns
    -------
    dict with
        ``x``: scipy.sparse.csr_matrix of shape (B_nz, n), the non-empty rows;
        ``batch_size``: B (the loss is a mean over all B rows);
        ``row_index``: (B_nz,) int array, where each kept row sat in the batch.
    """
    batch_size = check_int(batch_size, "batch_size")
    n = check_int(n, "n")
    p = check_probability(p)
    check_rng(rng)
    dtype = check_dtype(dtype)
    positions, values = draw_active_entries(batch_size, n, p, rng, dtype)  # (K,), (K,)
    rows, cols = np.divmod(positions, n)                        # (K,), (K,) rows already sorted
    starts = run_starts(rows)                                   # (B_nz,) first entry of each non-empty row
    row_index = rows[starts]                                    # (B_nz,)
    indptr = np.append(starts, rows.size)                       # (B_nz + 1,) CSR row pointers
    x = sp.csr_matrix((values, cols.astype(np.int32), indptr.astype(np.int32)),
                      shape=(row_index.size, n))
    return {"x": x, "batch_size": batch_size, "row_index": row_index}


def sample_batch(batch_size, n, p, rng, dtype=np.float64):
    """The sampler used for training and evaluation: sparse below ``DENSE_FROM_P``, dense from it on.

    Below ``DENSE_FROM_P`` this is :func:`sample_sparse_batch` (CSR, O(p·B·n)). From it
    on, most entries are active and a dense draw is cheaper: one uniform u per entry
    decides both whether it is active (u < p) and its value, since given u < p the
    ratio u/p is uniform on [0, 1), so 2u/p − 1 ~ U[-1, 1]. Returns the same dict,
    with ``x`` a dense (B_nz, n) ndarray.
    """
    p = check_probability(p)
    if p < DENSE_FROM_P:
        return sample_sparse_batch(batch_size, n, p, rng, dtype)
    batch_size, n = check_int(batch_size, "batch_size"), check_int(n, "n")
    check_rng(rng)
    dtype = check_dtype(dtype)
    u = rng.random((batch_size, n))                             # (B, n) u ~ U[0, 1)
    active = u < p                                              # P(active) = p
    x = np.multiply(u, 2.0 / p, out=u)                          # in place: 2u/p
    x -= 1.0                                                    # value 2u/p − 1 ~ U[-1, 1)
    x *= active                                                 # 0 where inactive (a product: no branches)
    x += 0.0                                                    # −0 -> +0
    row_index = np.flatnonzero(active.any(axis=1))              # (B_nz,) non-empty rows
    x = x[row_index] if row_index.size < batch_size else x
    return {"x": x.astype(dtype, copy=False), "batch_size": batch_size, "row_index": row_index}


def batch_to_dense(batch):
    """The full (B, n) dense array of a batch, all-zero rows put back."""
    x = batch["x"]
    dense = np.zeros((batch["batch_size"], x.shape[1]), dtype=x.dtype)  # (B, n)
    dense[batch["row_index"]] = _as_dense(x)
    return dense


def sample_inputs(batch_size, n, p, rng, dtype=np.float64):
    """A dense (B, n) batch of sparse inputs, all-zero rows included (same draw as :func:`sample_batch`)."""
    return batch_to_dense(sample_batch(batch_size, n, p, rng, dtype))


def _as_dense(x):
    """A dense ndarray view of x, which may be an ndarray or a scipy sparse matrix."""
    return x.toarray() if sp.issparse(x) else x


def mixing_term(x, M):
    """M x for every sample: ``x @ M.T``, shape (B, n); x dense or sparse (B, n), M (n, n)."""
    return np.asarray(x @ M.T)                                  # (B, n) @ (n, n) -> (B, n)


def make_labels(x, task, M=None, sigma=0.0):
    """Labels for a batch.

    Parameters
    ----------
    x : (B, n) ndarray or scipy sparse matrix.
    task : 'residual' (y = x + ReLU(x)), 'clean' (y = ReLU(x)) or
        'mixed' (y = ReLU(x) + σ M x).
    M : (n, n) unscaled mixing matrix, required for 'mixed'.
    sigma : float, the mixing strength σ (the labels use it as given).

    Returns
    -------
    y : (B, n) ndarray.
    """
    check_choice(task, "task", TASKS)
    if task == "mixed":
        if M is None:
            raise ValueError("the mixed task needs a mixing matrix M of shape (n, n)")
        check_array(M, "M", shape=(x.shape[1], x.shape[1]))
    value_label = _residual_value_label if task == "residual" else _relu
    if sp.issparse(x):                                          # both maps send 0 to 0: map the stored values only
        y = sp.csr_matrix((value_label(x.data), x.indices, x.indptr), shape=x.shape).toarray()  # (B, n)
    else:
        y = value_label(x)                                      # (B, n)
    if task == "mixed":
        y += sigma * mixing_term(x, M)                          # y = ReLU(x) + σ M x
    return y


def _relu(values):
    return np.maximum(values, 0)                                # ReLU(x)


def _residual_value_label(values):
    return values + np.maximum(values, 0)                       # x + ReLU(x)


def random_embedding(n, d, rng, dtype=np.float64, kind="gaussian"):
    """The fixed embedding W_E (d × n), each feature column of unit norm.

    kind
        'gaussian'     Gaussian entries, columns scaled to unit norm (Braun et al.'s): the
                       columns overlap by ≈ ±1/√d, so M = I − W_EᵀW_E ≠ 0.
        'orthonormal'  the Q of a QR of the same Gaussian draw (signs fixed by diag R > 0):
                       W_EᵀW_E = I, so the residual stream adds no mixing (M = 0). Needs d ≥ n.
    Both draw the same (d, n) Gaussian matrix from ``rng``.
    """
    n, d = check_int(n, "n"), check_int(d, "d")
    check_choice(kind, "embedding", EMBEDDINGS)
    check_rng(rng)
    if kind == "orthonormal" and d < n:
        raise ValueError(f"an orthonormal embedding needs d ≥ n (n = {n} orthonormal columns in R^d), got d = {d}")
    W_E = rng.standard_normal((d, n))                           # (d, n)
    if kind == "orthonormal":
        Q, R = np.linalg.qr(W_E)                                # (d, n), (n, n): W_E = Q R, QᵀQ = I
        W_E = Q * np.where(np.diag(R) < 0, -1.0, 1.0)           # a unique sign per column (diag R > 0)
    else:
        W_E /= np.linalg.norm(W_E, axis=0, keepdims=True)       # ‖W_E[:, i]‖ = 1
    return W_E.astype(check_dtype(dtype))


def mixing_matrix(kind, n, rng, d=1000, rank=None, embedding="gaussian"):
    """An unscaled mixing matrix M (n × n), float64.

    kind
        'asymmetric'          M_ij iid N(0, 1).
        'symmetric'           upper triangle (diagonal included) of such a matrix
                              mirrored below it; every entry still N(0, 1).
        'embedding'           M = I − W_Eᵀ W_E for a random embedding (d × n): the sign
                              the CC model's algebra gives (see ``mixing.py``); ``embedding``
                              says which kind of W_E (``random_embedding``; 'orthonormal' gives M = 0).
        'embedding_authors'   M = W_Eᵀ W_E − I, the sign the authors used.
        'lowrank'             M = U Vᵀ, U, V (n × rank) Gaussian.
        'lowrank_orthonormal' M = Q_U Q_Vᵀ with Q from the QR of U and V: a flat spectrum.
        Both low-rank kinds are rescaled to ‖M‖_F = n, the expected norm of the
        asymmetric kind, so that σ means the same size of mixing. ``rank`` (default n)
        is refused for the other kinds, which ignore it.
    """
    check_choice(kind, "mixing kind", MIXING_KINDS)
    n = check_int(n, "n")
    check_rng(rng)
    if rank is not None and not kind.startswith("lowrank"):
        raise ValueError(f"rank applies to the low-rank kinds only ('lowrank', 'lowrank_orthonormal'); "
                         f"the {kind!r} M has full rank")
    if embedding != "gaussian" and not kind.startswith("embedding"):
        raise ValueError(f"embedding={embedding!r} applies to the embedding kinds only ('embedding', "
                         f"'embedding_authors'); the {kind!r} M draws no W_E")
    if kind == "asymmetric":
        return rng.standard_normal((n, n))                      # (n, n) M_ij ~ N(0, 1)
    if kind == "symmetric":
        upper = np.triu(rng.standard_normal((n, n)))            # (n, n) diagonal included
        return upper + np.triu(upper, 1).T                      # mirror the strict upper triangle
    if kind in ("embedding", "embedding_authors"):
        from .mixing import residual_mixing_matrix

        W_E = random_embedding(n, d, rng, kind=embedding)       # (d, n)
        sign = "algebra" if kind == "embedding" else "authors"
        return residual_mixing_matrix(W_E, sign=sign)
    rank = check_int(rank if rank is not None else n, "rank")
    if rank > n:
        raise ValueError(f"rank must be between 1 and n = {n}, got {rank}")
    U = rng.standard_normal((n, rank))                          # (n, r)
    V = rng.standard_normal((n, rank))                          # (n, r)
    if kind == "lowrank_orthonormal":
        U, V = np.linalg.qr(U)[0], np.linalg.qr(V)[0]           # orthonormal columns
    M = U @ V.T                                                 # (n, r) @ (r, n) -> (n, n)
    return M * (n / np.linalg.norm(M))                          # ‖M‖_F = n
