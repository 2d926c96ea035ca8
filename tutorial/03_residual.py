"""Chapter 03: the original CC model, a residual MLP (cc_numpy/core/residual.py).

Run it whole:      python tutorial/03_residual.py          (a few seconds)
                   python tutorial/03_residual.py --full   (timings at the paper's batch of 2048)
or cell by cell through the '# %%' markers in an editor. Read tutorial/03_residual.md beside it.
"""

# %% Setup: flags, imports
import argparse
import os
import tempfile
import time

import numpy as np

from cc_numpy.core import data, mixing, mlp, residual

parser = argparse.ArgumentParser(description="Chapter 03: the residual CC model, two ways.")
parser.add_argument("--full", action="store_true", help="time the two implementations at the paper's batch size")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s; this chapter writes none)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()

n, d, d_mlp, p = 100, 1000, 50, 0.01
batch_size = 2048 if args.full else 512
print(f"n = {n}, d = {d}, d_mlp = {d_mlp}, p = {p}, batch {batch_size}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. Parameters: a fixed embedding and two trained matrices
print("\n1. residual.init_params: W_E (d, n) from one stream, W_in (d_mlp, d) and W_out (d, d_mlp) from another")
streams = data.random_streams(0)
params = residual.init_params(n, d, d_mlp, streams["matrix"], streams["init"])
for key, value in params.items():
    print(f"   {key}: shape {value.shape}")
check(residual.check_params(params) == (n, d, d_mlp), "residual.check_params returns (n, d, d_mlp)")
check(np.allclose(np.linalg.norm(params["W_E"], axis=0), 1), "every feature's embedding W_E[:, i] has unit norm")
check(np.abs(params["W_out"]).max() <= np.sqrt(6 / d), f"W_out starts within ±√(6/d) = {np.sqrt(6 / d):.4f}")

# %% 2. The Gram matrix: what the residual stream alone carries from x to ŷ
print("\n2. residual.gram_matrix: G = W_Eᵀ W_E, and W_U r = W_Eᵀ W_E x = G x when the MLP adds nothing")
G = residual.gram_matrix(params["W_E"])
off_diagonal = G[~np.eye(n, dtype=bool)]
print(f"   G is {G.shape}; diagonal in [{np.diag(G).min():.6f}, {np.diag(G).max():.6f}]; "
      f"off-diagonal std {off_diagonal.std():.4f} (1/√d = {1 / np.sqrt(d):.4f})")
check(np.allclose(np.diag(G), 1), "diag(G) = 1: unit columns")
check(abs(off_diagonal.std() * np.sqrt(d) - 1) < 0.1, "off-diagonal interference of size ≈ 1/√d")

# %% 3. The literal forward pass, through the 1000-dim stream
print("\n3. residual.forward_literal: r = W_E x, r' = r + W_out ReLU(W_in r), ŷ = W_Eᵀ r'")
x = data.sample_inputs(batch_size, n, p, np.random.default_rng(1))
y_literal, (r, h, a) = residual.forward_literal(params, x)
print(f"   x {x.shape} -> r {r.shape} -> h, a {h.shape} -> y_hat {y_literal.shape}")
column = params["W_E"].T @ (params["W_E"] @ x[0] + params["W_out"] @ np.maximum(params["W_in"] @ params["W_E"] @ x[0], 0))
check(np.allclose(y_literal[0], column), "row 0 is W_U (W_E x + W_out ReLU(W_in W_E x)) for the column vector x[0]")

# %% 4. The same function in the feature basis
print("\n4. residual.forward: ŷ = G x + W̃_out ReLU(W̃_in x), W̃_in = W_in W_E, W̃_out = W_Eᵀ W_out")
tilde = mixing.feature_basis_weights(params)
print(f"   W̃_in {tilde['W_in'].shape}, W̃_out {tilde['W_out'].shape}: an n-dim MLP (chapter 02)")
y_fast, _ = residual.forward(params, x)
error = np.abs(y_fast - y_literal).max()
print(f"   max |ŷ_fast − ŷ_literal| = {error:.2e}")
check(error < 1e-12, "the two implementations agree to rounding")
check(np.allclose(y_fast, x @ G + mlp.forward(tilde, x)[0]), "forward = G x + the MLP of chapter 02 on W̃")
batch = data.sample_sparse_batch(batch_size, n, p, np.random.default_rng(1))
check(np.allclose(residual.forward(params, batch["x"])[0], y_fast[batch["row_index"]]),
      "the fast path accepts the sparse batch (same draw), the literal one needs dense x")

# %% 5. Gradients both ways
print("\n5. residual.backward maps the MLP's feature-basis gradients back through W_E")
y = data.make_labels(x, "residual")                               # y = x + ReLU(x)
d_y_hat = 2 * (y_literal - y) / y.size                            # ∂L/∂ŷ of the mean squared error
grads_literal = residual.backward_literal(params, (r, h, a), d_y_hat)
_, cache = residual.forward(params, x)
grads_fast = residual.backward(params, cache, d_y_hat)
for key in residual.PARAM_KEYS:
    rel = np.linalg.norm(grads_fast[key] - grads_literal[key]) / np.linalg.norm(grads_literal[key])
    print(f"   ∂L/∂{key}: shape {grads_fast[key].shape}, relative difference {rel:.1e}")
    check(rel < 1e-12, f"∂L/∂{key} agrees between the two implementations")

# %% 6. Why bother: the cost of one forward + backward step
print("\n6. Timing one forward + backward step (literal on dense x, fast on the sparse batch)")


def time_it(step, repeats=20):
    """Best time of ``repeats`` calls, in milliseconds."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def literal_step():
    out, cache = residual.forward_literal(params, x)
    residual.backward_literal(params, cache, out - y)


def fast_step():
    out, cache = residual.forward(params, batch["x"], gram=G)
    residual.backward(params, cache, out - data.make_labels(batch["x"], "residual"))


literal_ms, fast_ms = time_it(literal_step), time_it(fast_step)
print(f"   literal {literal_ms:.2f} ms, feature basis {fast_ms:.2f} ms per step (B = {batch_size})")
check(fast_ms < literal_ms, "the feature-basis path is faster")

# %% 7. The untrained model already outputs ≈ x
print("\n7. With W_out = 0 the model outputs ŷ = G x ≈ x: only ReLU(x) and the interference G − I are wrong")
silent = dict(params, W_out=np.zeros_like(params["W_out"]))
y_silent, _ = residual.forward(silent, x)
check(np.allclose(y_silent, x @ G), "with W_out = 0, ŷ = G x")
print("   error ŷ − y = −ReLU(x) + (G − I) x: chapter 08 calls −(G − I) = I − W_EᵀW_E the mixing matrix")

# %% 8. A picture: the residual stream
print("\n8. Figure: the residual stream, drawn box by box")
import matplotlib  # noqa: E402

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

fig, ax = plt.subplots(figsize=(10, 3.6))
ax.set(xlim=(0, 11), ylim=(0, 4.2))
ax.axis("off")


def box(x0, y0, text, width=1.3, height=0.8, color="#dbe9f6"):
    """A rounded box centred at (x0, y0) with a label."""
    ax.add_patch(FancyBboxPatch((x0 - width / 2, y0 - height / 2), width, height,
                                boxstyle="round,pad=0.05", facecolor=color, edgecolor="black"))
    ax.text(x0, y0, text, ha="center", va="center", fontsize=9)


def arrow(start, end, label="", offset=(0, 0.12)):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="black"))
    if label:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], label,
                ha="center", va="bottom", fontsize=8)


stream_y = 1.0                                                   # the residual stream runs left to right
box(0.6, stream_y, "x\n(n = 100)", width=1.0, color="#f3f3f3")
box(2.7, stream_y, "r = W_E x\n(d = 1000)", width=1.4)
box(7.5, stream_y, "r' = r + W_out a\n(d = 1000)", width=1.8)
box(10.1, stream_y, "ŷ = W_U r'\n(n = 100)", width=1.3, color="#f3f3f3")
ax.add_patch(plt.Circle((5.4, stream_y), 0.18, facecolor="white", edgecolor="black"))
ax.text(5.4, stream_y, "+", ha="center", va="center", fontsize=12)
arrow((1.15, stream_y), (1.95, stream_y), "W_E")
arrow((3.45, stream_y), (5.22, stream_y), "skip: r passes unchanged", offset=(0, -0.42))
arrow((5.58, stream_y), (6.55, stream_y))
arrow((8.45, stream_y), (9.4, stream_y), "W_U = W_Eᵀ")
box(3.6, 3.1, "h = W_in r\n(d_mlp = 50)", width=1.7, color="#fde2c8")   # the MLP branch above the stream
box(5.4, 3.1, "a = ReLU(h)", width=1.3, color="#fde2c8")
arrow((3.0, stream_y + 0.45), (3.4, 2.65), "W_in", offset=(-0.35, 0))
arrow((4.5, 3.1), (4.7, 3.1))
arrow((5.4, 2.65), (5.4, stream_y + 0.2), "W_out a", offset=(0.45, 0))
ax.text(5.5, 0.05, "trained: W_in (50 × 1000), W_out (1000 × 50);  fixed: W_E (1000 × 100, unit columns), W_U = W_Eᵀ",
        ha="center", fontsize=8)
ax.set_title("The CC model: an MLP that reads and writes a 1000-dimensional residual stream", fontsize=10)
fig.tight_layout()
os.makedirs(args.out, exist_ok=True)
path = os.path.join(args.out, "03_residual_stream.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 03 done.")
