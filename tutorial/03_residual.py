"""Chapter 03: the original CC model, a residual MLP (cc_numpy/residual.py).

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
    out, cache = residual.forward(params, batch["x"], gram=G, check=False)
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
print("\nChapter 03 done.")
