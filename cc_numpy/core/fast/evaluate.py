"""Per-sample losses from batch statistics: what ``core.evaluate.loss_over_p`` averages.

For sample b (a row), with ŷ_b = W_out a_b and y_b = r_b + T x_b (``batch.py``):

    n ℓ_b = ‖ŷ_b‖² − 2 ŷ_b·y_b + ‖y_b‖²
          = a_b G_out a_bᵀ − 2 a_b · (x± V)_b + Σ_ij [x_bi (TᵀT)_ij x_bj + 2 r_bi T_ij x_bj] + ‖r_b‖²

with G_out = W_outᵀW_out and V = [TᵀW_out; W_out + TᵀW_out] (2n × d_mlp), so no (B, n) array is
formed for a sparse batch: the last sum runs over the pairs of stored entries of each row.
A dense batch forms ŷ − y, which costs no more there.
Everything is computed in float64, whatever the dtype of the weights.
"""

import numpy as np

from ..mixing import feature_basis_weights
from .batch import SharedBatch


def prepare(params, task, M=None, sigma=0.0):
    """What the per-sample losses need from a model and its labels (float64).

    params : an MLP's or a residual model's weights; task, M, sigma: the labels
    (``data.make_labels``: y = ReLU(x) + σ M x for 'mixed', σ as given).
    """
    if task == "mixed" and M is None:
        raise ValueError("the mixed task needs a mixing matrix M of shape (n, n)")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    n = params["W_in"].shape[1] if "W_E" not in params else params["W_E"].shape[1]
    N = np.eye(n) if task == "residual" else np.zeros((n, n))             # y = x + ReLU(x)
    if "W_E" in params:                                                    # ŷ = G x + W̃_out ReLU(W̃_in x)
        N = N - params["W_E"].T @ params["W_E"]
        params = feature_basis_weights(params)
    T = N + sigma * np.asarray(M, dtype=np.float64) if task == "mixed" else N   # (n, n)
    W_in, W_out = params["W_in"], params["W_out"]
    TW = T.T @ W_out                                                       # (n, d_mlp)  Tᵀ W_out
    return {"W_in": W_in, "W_out": W_out, "G_out": W_out.T @ W_out, "V": np.concatenate([TW, TW + W_out]),
            "T": T, "TtT": T.T @ T}


def sample_losses(model, batch):
    """ℓ_b = (1/n) Σ_o (ŷ_bo − y_bo)² of the non-empty rows of ``data.sample_batch``: (B_nz,) float64."""
    shared = SharedBatch(batch, np.float64, merge_rays=False)          # every sample's own row
    n = shared.n
    h = shared.inputs_times(model["W_in"].T[None])[:, 0]                  # (B_nz, d_mlp)  h = W_in x
    a = np.maximum(h, 0)                                                   # (B_nz, d_mlp)  a = ReLU(h)
    if shared.x is not None:                                               # a dense batch: form ŷ − y itself
        error = a @ model["W_out"].T - shared.r - shared.x @ model["T"].T   # (B_nz, n)  ŷ − (r + x Tᵀ)
        return np.einsum("bo,bo->b", error, error) / n
    y_hat_sq = np.einsum("bj,bj->b", a @ model["G_out"], a)                    # (B_nz,)  ‖ŷ_b‖² = a_b G_out a_bᵀ
    cross = np.einsum("bj,bj->b", np.asarray(shared.signed @ model["V"]), a)   # ŷ_b · y_b
    rows, cell, diagonal, x_i, x_j, r_i = shared.pairs                     # (pairs,) each; cell = i n + j
    per_pair = x_i * model["TtT"].take(cell)                               # x_i (TᵀT)_ij x_j
    per_pair *= x_j
    term = 2 * r_i                                                         # + 2 r_i T_ij x_j
    term *= model["T"].take(cell)
    term *= x_j
    per_pair += term
    np.multiply(diagonal, r_i, out=term)                                   # + [i = j] r_i r_i
    term *= r_i
    per_pair += term
    y_sq = np.bincount(rows, per_pair, shared.rows)                        # ‖y_b‖²
    return np.maximum(y_hat_sq - 2 * cross + y_sq, 0) / n
