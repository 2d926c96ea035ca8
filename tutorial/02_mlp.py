"""Chapter 02: the simplified model, a bias-free ReLU MLP (cc_numpy/core/mlp.py).

Run it whole:      python tutorial/02_mlp.py          (a few seconds)
                   python tutorial/02_mlp.py --full   (more samples for the naive-model check)
or cell by cell through the '# %%' markers in an editor. Read tutorial/02_mlp.md beside it.
"""

# %% Setup: flags, imports
import argparse
import os
import tempfile

import numpy as np

from cc_numpy.core import data, mlp

parser = argparse.ArgumentParser(description="Chapter 02: the MLP forward and backward pass.")
parser.add_argument("--full", action="store_true", help="more Monte Carlo samples for the naive model")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s; this chapter writes none)")
args, _ = parser.parse_known_args()

n, d_mlp = 100, 50
print(f"n = {n} features, d_mlp = {d_mlp} neurons")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. Initial weights
print("\n1. mlp.init_params: W_in (d_mlp, n) uniform in ±√(6/d_mlp), W_out (n, d_mlp) uniform in ±√(6/n)")
params = mlp.init_params(n, d_mlp, np.random.default_rng(0))
for key, value in params.items():
    print(f"   {key}: shape {value.shape}, dtype {value.dtype}, max |entry| {np.abs(value).max():.4f}")
check(params["W_in"].shape == (d_mlp, n) and params["W_out"].shape == (n, d_mlp), "shapes follow ŷ = W_out ReLU(W_in x)")
check(np.abs(params["W_in"]).max() <= np.sqrt(6 / d_mlp) and np.abs(params["W_out"]).max() <= np.sqrt(6 / n),
      f"bounds √(6/{d_mlp}) = {np.sqrt(6 / d_mlp):.4f} and √(6/{n}) = {np.sqrt(6 / n):.4f}")
check(mlp.check_params(params) == (n, d_mlp), "mlp.check_params returns (n, d_mlp)")

# %% 2. Forward: rows as samples in code, column vectors in the math
print("\n2. mlp.forward: y_hat = relu(x @ W_in.T) @ W_out.T, and a cache (x, h, a) for the backward pass")
rng = np.random.default_rng(1)
x = data.sample_inputs(8, n, 0.05, rng)                         # (B, n) dense
y_hat, (x_cached, h, a) = mlp.forward(params, x)
print(f"   x {x.shape} -> h {h.shape} -> a {a.shape} -> y_hat {y_hat.shape}")
column = params["W_out"] @ np.maximum(params["W_in"] @ x[0], 0)  # one sample as a column vector
check(np.allclose(y_hat[0], column), "row 0 of y_hat is W_out ReLU(W_in x) for the column vector x = x[0]")
check(np.array_equal(a, np.maximum(h, 0)), "a = ReLU(h)")
batch = data.sample_sparse_batch(1000, n, 0.05, rng)
y_sparse, _ = mlp.forward(params, batch["x"])
y_dense, _ = mlp.forward(params, batch["x"].toarray())
check(np.allclose(y_sparse, y_dense), "a scipy.sparse batch gives the same ŷ as the dense one")

# %% 3. The naive model: 50 neurons for 50 features, the other 50 outputs left at 0
print("\n3. The naive model on clean labels: L/p = (n − d_mlp)/(6n) = 1/12 at every p")
naive = {"W_in": np.zeros((d_mlp, n)), "W_out": np.zeros((n, d_mlp))}
naive["W_in"][:, :d_mlp] = np.eye(d_mlp)                           # neuron j reads feature j
naive["W_out"][:d_mlp, :] = np.eye(d_mlp)                          # and writes output j
for p in (0.001, 0.01, 0.1, 1.0):
    samples = (1_000_000 if args.full else 100_000) // (10 if p == 1.0 else 1)   # dense p needs fewer
    batch = data.sample_sparse_batch(samples, n, p, np.random.default_rng([2, int(p * 1000)]))
    y = data.make_labels(batch["x"], "clean")                   # (B_nz, n)
    y_hat, _ = mlp.forward(naive, batch["x"])                   # (B_nz, n)
    per_sample = np.zeros(samples)                              # empty samples: ℓ_b = 0 exactly
    per_sample[batch["row_index"]] = np.mean((y_hat - y) ** 2, axis=1)  # ℓ_b = (1/n) Σ_o (ŷ_bo − y_bo)²
    loss_over_p = per_sample.mean() / p
    stderr = per_sample.std(ddof=1) / np.sqrt(samples) / p
    print(f"   p = {p:6.3f}: L/p = {loss_over_p:.5f} ± {stderr:.5f}   (1/12 = {1 / 12:.5f})")
    check(abs(loss_over_p - 1 / 12) < 5 * stderr, f"naive L/p at p = {p} is 1/12 within 5 standard errors")

# %% 4. Backward: the chain rule, one matrix product per arrow
print("\n4. mlp.backward: gradients of a loss with respect to W_in and W_out")
x = data.sample_inputs(64, n, 0.05, np.random.default_rng(3))
y = data.make_labels(x, "clean")
y_hat, cache = mlp.forward(params, x)
d_y_hat = 2 * (y_hat - y) / y.size                              # ∂L/∂ŷ of the mean squared error
grads = mlp.backward(params, cache, d_y_hat)
print("   gradient shapes:", {k: v.shape for k, v in grads.items()})
check(all(grads[k].shape == params[k].shape for k in mlp.PARAM_KEYS), "each gradient has its weight's shape")
silenced = {"W_in": params["W_in"].copy(), "W_out": params["W_out"]}
silenced["W_in"][0] = -np.abs(silenced["W_in"][0])             # neuron 0 now only sees negative inputs...
x_positive = np.abs(x)                                          # ...on a batch of non-negative inputs
_, cache_positive = mlp.forward(silenced, x_positive)
out_positive, _ = mlp.forward(silenced, x_positive)
grads_positive = mlp.backward(silenced, cache_positive, 2 * (out_positive - np.maximum(x_positive, 0)) / y.size)
check(np.all(grads_positive["W_in"][0] == 0) and np.all(grads_positive["W_out"][:, 0] == 0)
      and np.any(grads_positive["W_in"][1] != 0),
      "a neuron that never fires (h ≤ 0 on the whole batch) gets exactly zero gradient, the others do not")


def loss_at(W_out):
    """Mean squared error of the model with W_out replaced, for a finite difference."""
    out, _ = mlp.forward({"W_in": params["W_in"], "W_out": W_out}, x)
    return np.mean((out - y) ** 2)


step = np.zeros_like(params["W_out"])
step[3, 7] = 1e-6
numerical = (loss_at(params["W_out"] + step) - loss_at(params["W_out"] - step)) / 2e-6
print(f"   ∂L/∂W_out[3, 7]: backward {grads['W_out'][3, 7]:.10f}, finite difference {numerical:.10f}")
check(abs(numerical - grads["W_out"][3, 7]) < 1e-8, "one entry agrees with a centred difference (chapter 04 checks all)")

# %% 5. Input checks live at the boundary
print("\n5. mlp.check_params: what train and evaluate check once (forward and backward trust their inputs)")
for bad, what in (({"W_in": params["W_in"], "W_out": params["W_out"].T}, "W_out transposed"),
                  ({"W_in": np.full_like(params["W_in"], np.nan), "W_out": params["W_out"]}, "W_in with NaN")):
    try:
        mlp.check_params(bad)
    except ValueError as error:
        print(f"   {what}: ValueError: {error}")
    else:
        raise AssertionError(f"{what} was accepted")
print("\nChapter 02 done.")
