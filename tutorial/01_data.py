"""Chapter 01: sparse inputs, labels and mixing matrices (cc_numpy/core/data.py).

Run it whole:      python tutorial/01_data.py          (a few seconds)
                   python tutorial/01_data.py --full   (the paper's batch size and n)
or cell by cell through the '# %%' markers in an editor. Read tutorial/01_data.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.core import data  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 01: sparse inputs, labels, mixing matrices.")
parser.add_argument("--full", action="store_true", help="use the paper's sizes (n = 100, d = 1000, many samples)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()        # known args only, so the cells also run inside a notebook kernel
os.makedirs(args.out, exist_ok=True)

n, d, p = 100, 1000, 0.01                  # the paper's sizes; only the number of samples changes with --full
batch_size = 200_000 if args.full else 20_000
print(f"n = {n} features, p = {p}, batch of {batch_size} samples; figures go to {args.out}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. Independent random streams from one seed
print("\n1. data.random_streams(seed) splits one seed into three independent generators")
streams = data.random_streams(0)
print("   streams:", {name: type(g).__name__ for name, g in streams.items()})
again = data.random_streams(0)
check(np.array_equal(streams["data"].random(3), again["data"].random(3)),
      "the same seed gives the same data stream")
check(not np.array_equal(data.random_streams(0)["data"].random(3), data.random_streams(0)["init"].random(3)),
      "the data and init streams differ")

# %% 2. A sparse batch: active features, values, all-zero rows
print("\n2. data.sample_sparse_batch draws B samples and keeps only the non-empty rows (CSR)")
rng = np.random.default_rng(1)
batch = data.sample_sparse_batch(batch_size, n, p, rng)
x = batch["x"]
print(f"   x: {type(x).__name__} of shape {x.shape} (B_nz non-empty rows of B = {batch['batch_size']})")
print(f"   {x.nnz} active entries; row_index[:5] = {batch['row_index'][:5]}")
active_fraction = x.nnz / (batch_size * n)
stderr_active = np.sqrt(p * (1 - p) / (batch_size * n))
check(abs(active_fraction - p) < 5 * stderr_active,
      f"fraction of active entries {active_fraction:.5f} ≈ p = {p} (within 5 standard errors)")
empty_fraction = 1 - x.shape[0] / batch_size
expected_empty = (1 - p) ** n
stderr_empty = np.sqrt(expected_empty * (1 - expected_empty) / batch_size)
check(abs(empty_fraction - expected_empty) < 5 * stderr_empty,
      f"all-zero samples {empty_fraction:.4f} ≈ (1 − p)^n = {expected_empty:.4f}")
values = x.data
check(values.min() >= -1 and values.max() <= 1 and abs(values.mean()) < 5 * np.sqrt(1 / 3 / values.size),
      f"active values lie in [-1, 1] with mean {values.mean():+.4f} ≈ 0")
check(abs(np.mean(np.maximum(values, 0) ** 2) - 1 / 6) < 0.01,
      f"E[ReLU(v)²] over active values = {np.mean(np.maximum(values, 0) ** 2):.4f} ≈ 1/6 = {1 / 6:.4f}")

# %% 3. The dense view puts the all-zero rows back
print("\n3. data.batch_to_dense rebuilds the (B, n) array; data.sample_inputs does both steps at once")
dense = data.batch_to_dense(batch)
print(f"   dense shape {dense.shape}, non-zeros {np.count_nonzero(dense)}")
check(dense.shape == (batch_size, n) and np.count_nonzero(dense) == x.nnz, "dense and sparse hold the same entries")
check(np.array_equal(dense[batch["row_index"]], x.toarray()), "row_index says where each kept row sat")
check(np.array_equal(data.sample_inputs(50, n, p, np.random.default_rng(7)),
                     data.batch_to_dense(data.sample_batch(50, n, p, np.random.default_rng(7)))),
      "sample_inputs is the same draw as sample_batch")

# %% 4. The sampler training uses: sparse below p = 0.1, dense from there on
print(f"\n4. data.sample_batch: sample_sparse_batch below data.DENSE_FROM_P = {data.DENSE_FROM_P}, a dense draw above")
check(np.array_equal(data.sample_batch(100, n, p, np.random.default_rng(8))["x"].toarray(),
                     data.sample_sparse_batch(100, n, p, np.random.default_rng(8))["x"].toarray()),
      f"at p = {p} it is the sparse sampler")
dense_p = 0.5
dense_batch = data.sample_batch(batch_size // 10, n, dense_p, np.random.default_rng(9))
active = dense_batch["x"][dense_batch["x"] != 0]
print(f"   p = {dense_p}: x is a {type(dense_batch['x']).__name__} of shape {dense_batch['x'].shape}; "
      f"active fraction {active.size / (dense_batch['batch_size'] * n):.4f}, value mean {active.mean():+.4f}, "
      f"E[v²] {np.mean(active ** 2):.4f} (1/3 = {1 / 3:.4f})")
check(isinstance(dense_batch["x"], np.ndarray) and abs(active.size / (dense_batch["batch_size"] * n) - dense_p) < 0.01
      and abs(np.mean(active ** 2) - 1 / 3) < 0.01, "one uniform u per entry: active if u < p, value 2u/p − 1")

# %% 5. The three label tasks
print("\n5. data.make_labels: residual y = x + ReLU(x), clean y = ReLU(x), mixed y = ReLU(x) + σ M x")
x_small = np.array([[0.5, -0.25, 0.0]])                  # one sample, n = 3, as a (1, 3) row
M_small = np.array([[0.0, 1.0, 0.0],
                    [2.0, 0.0, 0.0],
                    [0.0, 0.0, 3.0]])
for task in data.TASKS:
    y = data.make_labels(x_small, task, M=M_small, sigma=0.1)
    print(f"   {task:>8s}: x = {x_small[0]} -> y = {y[0]}")
column = M_small @ x_small[0]                             # M x for a column vector
check(np.allclose(data.mixing_term(x_small, M_small)[0], column),
      "data.mixing_term(x, M) = x @ M.T is M x for every row")
check(np.allclose(data.make_labels(x_small, "mixed", M_small, 0.1),
                  np.maximum(x_small, 0) + 0.1 * column), "mixed labels are ReLU(x) + σ M x")

# %% 6. The embedding W_E and the mixing-matrix families
print("\n6. data.random_embedding and data.mixing_matrix (every kind in data.MIXING_KINDS)")
W_E = data.random_embedding(n, d, np.random.default_rng(2))
check(W_E.shape == (d, n) and np.allclose(np.linalg.norm(W_E, axis=0), 1), "W_E is d × n with unit-norm columns")
matrices = {kind: data.mixing_matrix(kind, n, np.random.default_rng(3), d=d,
                                     rank=10 if kind.startswith("lowrank") else None)    # rank: low-rank kinds only
            for kind in data.MIXING_KINDS}
for kind, M in matrices.items():
    off = M[~np.eye(n, dtype=bool)]
    print(f"   {kind:>20s}: rank {np.linalg.matrix_rank(M):3d}, ‖M‖_F = {np.linalg.norm(M):7.2f}, "
          f"off-diagonal std {off.std():.4f}, mean |diagonal| {np.abs(np.diag(M)).mean():.4f}")
check(np.array_equal(matrices["symmetric"], matrices["symmetric"].T), "the symmetric kind is symmetric")
check(abs(matrices["asymmetric"].std() - 1) < 0.05, "asymmetric entries have std ≈ 1")
check(np.allclose(np.diag(matrices["embedding"]), 0), "the embedding kind has a zero diagonal (unit columns)")
check(abs(matrices["embedding"][~np.eye(n, dtype=bool)].std() - 1 / np.sqrt(d)) < 0.1 / np.sqrt(d),
      f"its off-diagonal std ≈ 1/√d = {1 / np.sqrt(d):.4f}")
check(np.allclose(matrices["embedding"], -matrices["embedding_authors"]), "the authors' sign is the opposite")
check(np.isclose(np.linalg.norm(matrices["lowrank"]), n) and np.linalg.matrix_rank(matrices["lowrank"]) == 10,
      "low rank: rank 10, rescaled to ‖M‖_F = n")

# %% 7. A picture: one batch and two mixing matrices
print("\n7. Figure: the first 60 samples of a batch, an asymmetric M and an embedding M")
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
axes[0].imshow(dense[:60], cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
axes[0].set(title=f"x: 60 samples × {n} features, p = {p}", xlabel="feature i", ylabel="sample")
for ax, kind in zip(axes[1:], ("asymmetric", "embedding")):
    M = matrices[kind]
    limit = np.abs(M).max()
    ax.imshow(M, cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set(title=f"M ({kind})", xlabel="input i", ylabel="output o")
fig.tight_layout()
path = os.path.join(args.out, "01_data.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 01 done.")
