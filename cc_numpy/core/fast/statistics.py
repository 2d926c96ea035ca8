"""Loss and gradients of K models from batch statistics, never forming the (B, n) output (sparse batches).

One model: ŷ = W_out a with a = ReLU(W_in x) (rows as samples: a is (B_nz, d_mlp)) and labels
y = r + x Tᵀ (``batch.py``). Write G_out = W_outᵀW_out, G_a = aᵀa (d_mlp × d_mlp, Gram matrices) and
C = yᵀa = rᵀa + T xᵀa (n × d_mlp). With c = 2 / (B n):

    B n L     = ⟨G_out, G_a⟩ − 2 ⟨W_out, C⟩ + ‖y‖²  ‖y‖² = ‖r‖² + 2 ⟨T, rᵀx⟩ + ⟨TᵀT, xᵀx⟩
    ∂L/∂W_out = c (W_out G_a − C)                    (= c (ŷ − y)ᵀ a)
    ∂L/∂h     = c (a G_out − y W_out) ⊙ 1[h > 0]     (= c (ŷ − y) W_out ⊙ ReLU'(h))
    ∂L/∂W_in  = (xᵀ ∂L/∂h)ᵀ
    ∂L/∂s     = c (⟨M, rᵀx⟩ + ⟨NᵀM, xᵀx⟩ + s ⟨MᵀM, xᵀx⟩ − ⟨W_out, M xᵀa⟩)    for T = N + s M

The biggest products are aᵀa and a G_out, (B_nz × d_mlp × d_mlp) each, against five
(B_nz × n × d_mlp) products of the plain path; with a sparse batch every product with y is a
sparse product.

Batching. Each per-model dense product is one ``np.matmul`` over the leading K axis (NumPy
calls the same BLAS routine on every 2-D slice), each product with the batch puts the K
models side by side as columns (a sparse product sums every output element in the same
order whatever the column count) and each per-model sum is a BLAS dot over that model's
own block. So a model's numbers are bit for bit the same whichever models share its batch.

Dense batches (p ≥ ``data.DENSE_FROM_P``: almost every row is non-empty and a tenth or more of
the entries are active, stored as an array) gain nothing from the statistics: rᵀx and xᵀx alone cost 2 B n² and x± doubles every product with the batch. There
the error e = ŷ − y is formed (:func:`dense_loss_and_grads`): five (B × n × d_mlp) products a
model, and y = r + x Nᵀ + s x Mᵀ from products x Uᵀ that the models share.
"""

import numpy as np


def dots(X, Y):
    """⟨X_k, Y_k⟩ for every k: (K, ...) and (K, ...) -> (K,), one BLAS dot per model."""
    K = X.shape[0]
    return np.matmul(X.reshape(K, 1, -1), Y.reshape(K, -1, 1))[:, 0, 0]


def mlp_loss_and_grads(batch, W_in, W_out, labels, s, learn_s, label_terms):
    """Loss and gradients of K MLPs ŷ = W_out ReLU(W_in x) on one shared batch.

    Parameters
    ----------
    batch : ``batch.SharedBatch``.
    W_in : (K, d_mlp, n).   W_out : (K, n, d_mlp).
    labels : from :func:`label_stacks` (the models' N and M, and their indices into ``label_terms``),
        optionally with "T": :func:`label_matrix` for this ``s``, formed once for a whole run.
    s : (K,) the labels' |σ| of each model.
    learn_s : also return ∂L/∂s under "s".
    label_terms : ``label_stacks``'s second value: what the models have in common (the distinct
        label matrices, and the terms of ‖y‖² per distinct (N, M)), used with each batch once,
        not once per model.

    Returns
    -------
    loss : (K,)   grads : {"W_in": (K, d_mlp, n), "W_out": (K, n, d_mlp)[, "s": (K,)]}
    """
    if batch.x is not None:
        return dense_loss_and_grads(batch, W_in, W_out, labels, s, learn_s, label_terms)
    K, n, d_mlp = W_out.shape
    scale = 2.0 / (batch.batch_size * n)                                     # c = 2 / (B n)
    T = labels["T"] if "T" in labels else label_matrix(labels, s)            # (K, n, n)  T = N + s M
    h = batch.inputs_times(W_in.transpose(0, 2, 1))                          # (B_nz, K, d_mlp)  h = x W_inᵀ
    active = h > 0                                                           # (B_nz, K, d_mlp)  1[h > 0]
    a = np.multiply(h, active, out=h)                                        # (B_nz, K, d_mlp)  a = ReLU(h), in place
    a_k = a.transpose(1, 0, 2)                                               # (K, B_nz, d_mlp) view
    G_a = np.matmul(a_k.transpose(0, 2, 1), a_k)                             # (K, d_mlp, d_mlp)  G_a = aᵀa
    G_out = np.matmul(W_out.transpose(0, 2, 1), W_out)                       # (K, d_mlp, d_mlp)  G_out = W_outᵀW_out
    d_a = np.empty_like(a)                                                   # (B_nz, K, d_mlp)
    np.matmul(a_k, G_out, out=d_a.transpose(1, 0, 2))                        # ŷ W_out = a G_out
    V = np.empty((2 * n, K, d_mlp), dtype=W_out.dtype)                       # (2n, K, d_mlp) the models side by side
    TW = V[:n].transpose(1, 0, 2)                                            # (K, n, d_mlp) view
    np.matmul(T.transpose(0, 2, 1), W_out, out=TW)                           # Tᵀ W_out (a strided out: BLAS's ldc, same sums)
    np.add(TW, W_out, out=V[n:].transpose(1, 0, 2))                          # W_out + Tᵀ W_out
    d_a -= batch.signed_times(V)                                             # − y W_out = − x± [TᵀW; W + TᵀW]
    d_a *= active                                                            # ∂L/∂h / c = (ŷ − y) W_out ⊙ 1[h > 0]
    S_h = batch.signed_transposed_times(d_a)                        # (K, 2n, d_mlp)  x±ᵀ ∂h
    d_W_in = scale * (S_h[:, :n] + S_h[:, n:]).transpose(0, 2, 1)            # (K, d_mlp, n)   c (xᵀ ∂h)ᵀ
    S_a = batch.signed_transposed_times(a)                          # (K, 2n, d_mlp)  x±ᵀ a
    xa = S_a[:, :n] + S_a[:, n:]                                             # (K, n, d_mlp)   xᵀa
    C = S_a[:, n:] + np.matmul(T, xa)                                        # (K, n, d_mlp)   C = yᵀa = rᵀa + T xᵀa
    d_W_out = scale * (np.matmul(W_out, G_a) - C)                            # (K, n, d_mlp)   c (W_out G_a − C)
    terms = batch.label_dots(label_terms["stack"])[labels["stack_id"]]       # (K, 5, 2)  ⟨N|M|NᵀN|NᵀM|MᵀM, R|Q⟩
    y_sq = (batch.rr + 2 * terms[:, 0, 0] + 2 * s * terms[:, 1, 0]           # ‖y‖² = ‖r‖² + 2⟨T, R⟩ + ⟨TᵀT, Q⟩
            + terms[:, 2, 1] + 2 * s * terms[:, 3, 1] + s * s * terms[:, 4, 1])
    loss = (dots(G_out, G_a) - 2 * dots(W_out, C) + y_sq) * (scale / 2)      # (K,)  L = (...) / (B n)
    grads = {"W_in": d_W_in, "W_out": d_W_out}
    if learn_s:                                                              # ∂T/∂s = M
        grads["s"] = scale * (terms[:, 1, 0] + terms[:, 3, 1] + s * terms[:, 4, 1]
                              - dots(W_out, np.matmul(labels["M"], xa)))
    return loss, grads


def label_matrix(labels, s):
    """T = N + s M of every model: (K, n, n). ``ModelStack`` keeps it in ``labels["T"]`` while no σ is learned."""
    return labels["N"] + s[:, None, None] * labels["M"]


def dense_loss_and_grads(batch, W_in, W_out, labels, s, learn_s, label_terms):
    """:func:`mlp_loss_and_grads` on a dense batch, through the error e = ŷ − y (K, B_nz, n)."""
    K, n, d_mlp = W_out.shape
    scale = 2.0 / (batch.batch_size * n)                                     # c = 2 / (B n)
    x, products = batch.x, batch.label_products(label_terms["matrices"])    # x (B_nz, n); x Uᵀ (B_nz, n) each
    e = np.empty((K,) + x.shape, dtype=W_out.dtype)                          # (K, B_nz, n)
    for k in range(K):                                                       # e_k = −y_k for now
        N_id, M_id = labels["N_id"][k], labels["M_id"][k]                   # y = r + x Nᵀ + s x Mᵀ
        if N_id < 0 and M_id >= 0:                                           # −(s x Mᵀ) − r: the sum −(r + s x Mᵀ)
            np.multiply(products[M_id], -s[k], out=e[k])
            e[k] -= batch.r
            continue
        np.negative(batch.r, out=e[k])
        if N_id >= 0:
            e[k] -= products[N_id]
        if M_id >= 0:
            e[k] -= s[k] * products[M_id]
    h = np.matmul(x, W_in.transpose(0, 2, 1))                                # (K, B_nz, d_mlp)  h = x W_inᵀ
    active = h > 0                                                           # 1[h > 0]
    a = np.multiply(h, active, out=h)                                        # a = ReLU(h), in place
    e += np.matmul(a, W_out.transpose(0, 2, 1))                              # (K, B_nz, n)  e = ŷ − y = a W_outᵀ − y
    loss = dots(e, e) * (scale / 2)                                          # (K,)  L = ‖e‖² / (B n)
    d_W_out = scale * np.matmul(e.transpose(0, 2, 1), a)                     # (K, n, d_mlp)   c eᵀ a
    d_h = np.matmul(e, W_out)                                                # (K, B_nz, d_mlp)  e W_out
    d_h *= active                                                            # ⊙ ReLU'(h)
    d_W_in = scale * np.matmul(d_h.transpose(0, 2, 1), x)                    # (K, d_mlp, n)   c ∂hᵀ x
    grads = {"W_in": d_W_in, "W_out": d_W_out}
    if learn_s:                                                              # ∂L/∂s = −c ⟨e, x Mᵀ⟩
        grads["s"] = np.array([-scale * np.vdot(e[k], products[M_id]) if M_id >= 0 else 0.0
                               for k, M_id in enumerate(labels["M_id"])], dtype=W_out.dtype)
    return loss, grads


def label_stacks(N, M, dtype):
    """The fixed label matrices of K models, and what the models have in common.

    Returns
    -------
    labels : {"N", "M": (K, n, n); "N_id", "M_id": (K,) each model's index into
        ``label_terms["matrices"]``, −1 for a zero matrix; "stack_id": (K,) its row of ``label_terms["stack"]``}.
    label_terms : {"matrices": list of the distinct non-zero N's and M's in ``dtype``, None standing
        for the identity (dense batches); "stack": (D, 5, n²) [N, M, NᵀN, NᵀM, MᵀM] flattened, for
        the loss value, once per distinct (N, M)}.
    """
    N, M = np.asarray(N, dtype=np.float64), np.asarray(M, dtype=np.float64)
    K, n, _ = N.shape
    distinct, ids = [], []
    for matrix in list(N) + list(M):
        if not np.any(matrix):                                               # a zero matrix adds nothing to y
            ids.append(-1)
            continue
        index = next((u for u, other in enumerate(distinct) if np.array_equal(other, matrix)), len(distinct))
        if index == len(distinct):
            distinct.append(matrix)
        ids.append(index)
    matrices = [None if np.array_equal(U, np.eye(n)) else U.astype(dtype) for U in distinct]
    _, first, stack_id = np.unique(np.array([ids[:K], ids[K:]]).T, axis=0, return_index=True,
                                   return_inverse=True)                      # per distinct (N_id, M_id): a model
    Np, Mp = N[first], M[first]                                              # (D, n, n) each: D distinct (N, M)
    Nt = Np.transpose(0, 2, 1)
    stack = np.stack([Np, Mp, Nt @ Np, Nt @ Mp, Mp.transpose(0, 2, 1) @ Mp], axis=1).reshape(first.size, 5, n * n)
    labels = {"N": N.astype(dtype), "M": M.astype(dtype), "N_id": np.array(ids[:K]), "M_id": np.array(ids[K:]),
              "stack_id": stack_id.ravel()}
    return labels, {"matrices": matrices, "stack": stack.astype(dtype)}
