"""One shared batch, seen by every model of a batched run, and its label statistics.

The labels of every model and task have one form (rows as samples, r = ReLU(x)):

    y − b(x) = r + x Tᵀ          T = N + s M    (n × n, one per model)

where b(x) is what the model adds without its MLP (G x = W_EᵀW_E x for the residual model,
0 for the MLP), N the fixed part (I for the residual task, minus G for the residual
model), M the unscaled mixing matrix and s = |σ|.

r and x share their pattern, and a stored value v of feature i is in r as v·1[v > 0]. So
every product of y with a small matrix is one sparse product with the *signed* inputs
x± (B_nz × 2n): the entry v of feature i is stored in column i if v ≤ 0 and n + i if v > 0.

    r W + x V = x± [V; W + V]         rᵀa = (x±ᵀa)[n:]        xᵀa = (x±ᵀa)[:n] + (x±ᵀa)[n:]

and ‖y‖² needs only Q = xᵀx, R = rᵀx (n × n) and ‖r‖². None of this depends on the
models, so K models share all of it.

Merging rays. The model is bias-free and ReLU is positively homogeneous, and so are the
labels: for λ > 0 a sample λx has ŷ(λx) − y(λx) = λ (ŷ(x) − y(x)), so its loss is
λ² times that of x, for any weights, and so are its gradients. Samples on the same ray
therefore count as one sample of squared length the sum of theirs: every sample with a
single active feature i of sign s becomes one row s·√(Σ v²) e_i. At p = 0.01 that turns
about 760 of 1300 non-empty rows into at most 2n = 200, the same loss and the same
gradients with 43 % fewer rows (training only: evaluation needs every sample's own loss).

Dense batches (p ≥ ``data.DENSE_FROM_P``) keep x and r as arrays: there every product with y
costs as much as forming y, so ``statistics.py`` forms each model's y = r + x Tᵀ from the
products x Uᵀ with the few distinct label matrices U of the batched models (:meth:`label_products`).
"""

import numpy as np
import scipy.sparse as sp


class SharedBatch:
    """A batch's inputs in the layouts the statistics need.

    Attributes
    ----------
    batch_size : B, all samples (the loss is a mean over B · n).
    rows : B_nz, the rows kept (after merging rays).
    x, r : (B_nz, n) ndarrays x and ReLU(x) for a dense batch; None for a sparse one.

    Sparse batches only (everything goes through x±):
    signed, signed_T : (B_nz, 2n) CSR x± and its (2n, B_nz) transpose, a CSC view.
    RQ : (2, n²) R = rᵀx and Q = xᵀx, flattened, in the training dtype.   rr : ‖r‖².
        Both are computed on first use: evaluation needs neither.
    pairs : (row, cell, diagonal, x_i, x_j, r_i) of every two stored entries that share a row
        (both orders, and each entry with itself): cell = i n + j for features i and j, diagonal
        whether it is an entry with itself (i = j: a row never holds a feature twice, as
        ``data.sample_batch`` draws it); what ‖y_b‖² needs per row.
    """

    def __init__(self, batch, dtype, merge_rays=True):
        x = batch["x"]
        self.batch_size = batch["batch_size"]
        self.n = x.shape[1]
        self.dtype = dtype
        if sp.issparse(x):
            arrays = merged_rays(x.data, x.indices, x.indptr, self.n) if merge_rays else (x.data, x.indices, x.indptr)
            self._init_sparse(*arrays)
        else:
            self._init_dense(np.asarray(x))
        self._products = self._dots = None

    @classmethod
    def prepared(cls, batch_size, n, dtype, values, signed_columns, indptr, RQ, rr):
        """A sparse batch whose x±, R, Q and ‖r‖² are already known (``stream.py`` prepares many at once).

        values (nnz,), signed_columns (nnz,) int32, indptr (B_nz + 1,) int32: x± as CSR arrays;
        RQ (2, n²) in ``dtype``; rr a float. Training only: no ``pairs``.
        """
        self = cls.__new__(cls)
        self.batch_size, self.n, self.dtype = batch_size, n, dtype
        self.x = self.r = self.pairs = self._products = self._dots = None
        self.rows = indptr.size - 1
        self.signed = sp.csr_matrix((values, signed_columns, indptr), shape=(self.rows, 2 * n))
        self.signed_T = self.signed.T                                       # (2n, B_nz) CSC view
        self._RQ, self._rr = RQ, rr
        return self

    def _init_sparse(self, values, columns, indptr):
        n, rows = self.n, indptr.size - 1
        positive = values > 0                                               # (nnz,) stored in r as well
        signed_columns = columns + positive.astype(columns.dtype) * columns.dtype.type(n)
        self.x = self.r = None                                              # products with x go through x±
        self.rows = rows
        self.signed = sp.csr_matrix((values, signed_columns, indptr), shape=(rows, 2 * n))
        self.signed_T = self.signed.T                                       # (2n, B_nz) CSC view
        counts = np.diff(indptr)                                            # (B_nz,) entries per row
        row_of = np.repeat(np.arange(rows), counts)                         # (nnz,) row of each entry
        partners = counts[row_of]                                           # (nnz,) entries sharing its row
        first = np.repeat(np.arange(values.size), partners)                 # (pairs,) entry e, partners times
        group_start = np.cumsum(partners) - partners                        # (nnz,) where e's pairs begin
        second = np.arange(first.size) + np.repeat(indptr[:-1][row_of] - group_start, partners)
        x_values = values.astype(np.float64)                                # (nnz,)
        r_values = x_values * positive                                      # (nnz,) ReLU(x)
        x_i, x_j, r_i = x_values[first], x_values[second], r_values[first]  # (pairs,) each
        cell = (columns.astype(np.int64) * n)[first] + columns[second]      # (pairs,) flat (i, j)
        self.pairs = (row_of[first], cell, first == second, x_i, x_j, r_i)  # per-row ‖y_b‖² (evaluation)
        self._r_values = r_values                                           # (nnz,) the entries of r, float64
        self._RQ = self._rr = None                                          # R, Q, ‖r‖²: on first use (training)

    @property
    def RQ(self):
        """(2, n²) R = rᵀx and Q = xᵀx, flattened, in the training dtype (sparse batches; None if dense)."""
        if self._RQ is None and self.pairs is not None:
            n, (_, cell, _, x_i, x_j, r_i) = self.n, self.pairs
            self._RQ = np.empty((2, n * n), dtype=self.dtype)
            self._RQ[0] = np.bincount(cell, r_i * x_j, n * n)               # R = rᵀx: Σ_b r_bi x_bj
            self._RQ[1] = np.bincount(cell, x_i * x_j, n * n)               # Q = xᵀx: Σ_b x_bi x_bj
        return self._RQ

    @property
    def rr(self):
        """‖r‖² (sparse batches; None if dense)."""
        if self._rr is None and self.pairs is not None:
            self._rr = float(np.dot(self._r_values, self._r_values))
        return self._rr

    def _init_dense(self, x):
        self.x = x                                                          # (B_nz, n)
        self.r = np.maximum(x, 0)                                           # (B_nz, n)  r = ReLU(x)
        self.rows = x.shape[0]
        self.signed = self.signed_T = self._RQ = self._rr = self.pairs = None

    def label_products(self, matrices):
        """x Uᵀ for each of the label matrices U (dense batches), computed once per batch and list.

        matrices : list of (n, n) arrays or None for the identity (x itself).
        Returns the list of (B_nz, n) products.
        """
        if self._products is None or self._products[0] is not matrices:
            self._products = (matrices, [self.x if U is None else self.x @ U.T for U in matrices])  # (B_nz, n) @ (n, n)
        return self._products[1]

    def label_dots(self, stack):
        """⟨U, R⟩ and ⟨U, Q⟩ for every flattened label term U (sparse batches), once per batch and stack.

        stack : (D, 5, n²) [N, M, NᵀN, NᵀM, MᵀM] of each of the D distinct (N, M) of the batched models
            (``statistics.label_stacks``).
        Returns (D, 5, 2), one BLAS product per (5, n²) slice, so each slice's numbers do not
        depend on the others.
        """
        if self._dots is None or self._dots[0] is not stack:
            self._dots = (stack, np.matmul(stack, self.RQ.T))                # (D, 5, n²) @ (n², 2) -> (D, 5, 2)
        return self._dots[1]

    def inputs_times(self, W):
        """x @ W_k for every model: W (K, n, m) -> (B_nz, K, m); for sparse x as x± [W; W]."""
        if self.x is not None:
            return np.matmul(self.x, W).transpose(1, 0, 2)                 # one gemm per model
        K, n, m = W.shape
        columns = np.empty((2 * n, K, m), dtype=W.dtype)                   # the K models side by side
        columns[:n] = W.transpose(1, 0, 2)                                 # [W; W]
        columns[n:] = columns[:n]
        return self.signed_times(columns)

    def signed_times(self, columns):
        """x± @ V_k for every model (sparse batches): V_k side by side, columns (2n, K, m) -> (B_nz, K, m)."""
        c, K, m = columns.shape
        return (self.signed @ columns.reshape(c, K * m)).reshape(-1, K, m)

    def signed_transposed_times(self, D):
        """x±ᵀ @ D_k for every model (sparse batches): D (B_nz, K, m) -> (K, 2n, m)."""
        rows, K, m = D.shape
        return (self.signed_T @ D.reshape(rows, K * m)).reshape(-1, K, m).transpose(1, 0, 2)


def merged_rays(values, columns, indptr, n):
    """A CSR batch's (values, columns, indptr) with its one-entry rows merged per (feature, sign).

    Each ray becomes one row s·√(Σ v²) e_i; the rows with several entries come first, unchanged.
    """
    counts = np.diff(indptr)                                            # (B_nz,) entries per row
    single = counts == 1
    entry = indptr[:-1][single]                                         # (S,) the entry of each one-entry row
    v = values[entry].astype(np.float64)
    bucket = columns[entry] + n * (v > 0)                               # (S,) feature, and n more if v > 0
    length_sq = np.bincount(bucket, v * v, 2 * n)                       # (2n,) Σ v² per (feature, sign)
    rays = np.flatnonzero(length_sq)                                    # (R,) the rays that occur
    kept = np.repeat(~single, counts)                                   # (nnz,) entries of the other rows
    ray_values = np.where(rays >= n, 1.0, -1.0) * np.sqrt(length_sq[rays])
    values = np.concatenate([values[kept], ray_values.astype(values.dtype)])
    columns = np.concatenate([columns[kept], (rays % n).astype(columns.dtype)])
    ends = np.cumsum(counts[~single])                                   # row ends of the kept rows
    last = ends[-1] if ends.size else 0
    indptr = np.concatenate([[0], ends, last + np.arange(1, rays.size + 1)]).astype(indptr.dtype)
    return values, columns, indptr
