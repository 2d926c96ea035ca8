"""Chapter 04: the loss and checking every hand-written gradient (cc_numpy/core/loss.py, cc_numpy/core/gradcheck.py).

Run it whole:      python tutorial/04_gradients.py          (a few seconds)
                   python tutorial/04_gradients.py --full   (probe every entry, at the paper's n and d_mlp)
or cell by cell through the '# %%' markers in an editor. Read tutorial/04_gradients.md beside it.
"""

# %% Setup: flags, imports
import argparse
import os
import tempfile

import numpy as np

from cc_numpy.core import data, gradcheck, loss, mlp, residual

parser = argparse.ArgumentParser(description="Chapter 04: the loss and gradient checks.")
parser.add_argument("--full", action="store_true", help="the paper's n = 100, d_mlp = 50 and more probed entries")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s; this chapter writes none)")
args, _ = parser.parse_known_args()

n, d, d_mlp = (100, 1000, 50) if args.full else (12, 60, 6)
batch_size, p = (256, 0.05) if args.full else (40, 0.3)
max_entries = 400 if args.full else 200
TOLERANCE = 1e-6                           # a correct gradient: ~1e-9 small, ~1e-7 at the paper's sizes (rounding)
print(f"n = {n}, d = {d}, d_mlp = {d_mlp}, batch {batch_size}, p = {p}; float64 throughout")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. The loss and its gradient
print("\n1. loss.mse_loss: L = Σ (ŷ − y)² / (B n) and ∂L/∂ŷ = 2 (ŷ − y) / (B n)")
rng = np.random.default_rng(0)
batch = data.sample_sparse_batch(batch_size, n, p, rng)
x_sparse, x_dense = batch["x"], data.batch_to_dense(batch)
params = mlp.init_params(n, d_mlp, np.random.default_rng(1))
y_hat_dense, _ = mlp.forward(params, x_dense)
y_dense = data.make_labels(x_dense, "clean")
L_dense, d_dense = loss.mse_loss(y_hat_dense, y_dense)
y_hat_kept, _ = mlp.forward(params, x_sparse)
error_kept = y_hat_kept - data.make_labels(x_sparse, "clean")       # the non-empty rows only
count = batch["batch_size"] * n                                     # B n: the mean is still over all B samples
L_kept = float(np.sum(error_kept ** 2)) / count
print(f"   dense batch of {x_dense.shape[0]} rows: L = {L_dense:.6f}; {x_sparse.shape[0]} kept rows, "
      f"summed and divided by B n = {count}: L = {L_kept:.6f}")
check(np.isclose(L_dense, L_kept), "dropping the all-zero rows changes nothing when the mean still divides by B")
check(np.allclose(d_dense[batch["row_index"]], 2 * error_kept / count), "and ∂L/∂ŷ of the kept rows is the same")
y_hat_probe = y_hat_dense.copy()
numerical = gradcheck.numerical_gradient(lambda: loss.mse_loss(y_hat_probe, y_dense)[0], y_hat_probe, indices=[0, 5, 17])
check(np.allclose(numerical, d_dense.reshape(-1)[[0, 5, 17]], atol=1e-10), "∂L/∂ŷ agrees with centred differences")

# %% 2. The relative error, and what "correct" looks like
print("\n2. gradcheck.relative_error = ‖g_fd − g‖ / (‖g_fd‖ + ‖g‖): 1e-7 or less if right, ≳ 1e-2 if wrong")
for scale in (1e-12, 1e-6, 1.0):
    g = np.array([1.0, -2.0, 3.0])
    print(f"   perturbation {scale:g}: relative error {gradcheck.relative_error(g + scale, g):.2e}")


# %% 3. Check the MLP's backward pass
print("\n3. gradcheck.check_gradients on mlp.backward (W_in and W_out)")
x, y = x_dense, y_dense
h = x @ params["W_in"].T
print(f"   smallest non-zero |pre-activation| {np.abs(h[h != 0]).min():.2e} (well above the step 1e-6: no kink crossed)")


def mlp_loss():
    """The loss as a function of the arrays in params (perturbed in place by the checker)."""
    return loss.mse_loss(mlp.forward(params, x)[0], y)[0]


y_hat, cache = mlp.forward(params, x)
grads = mlp.backward(params, cache, loss.mse_loss(y_hat, y)[1])
errors = gradcheck.check_gradients(mlp_loss, params, grads, np.random.default_rng(2), max_entries=max_entries)
for key, error in errors.items():
    print(f"   ∂L/∂{key}: relative error {error:.2e}")
    check(error < TOLERANCE, f"mlp.backward's ∂L/∂{key} is right")

# %% 4. A bug the check catches: forget the ReLU mask
print("\n4. A wrong backward pass (no ReLU' mask) gives a relative error of order 0.1–1")
x_, h_, a_ = cache
d_y_hat = loss.mse_loss(y_hat, y)[1]
wrong = {"W_in": ((d_y_hat @ params["W_out"]).T @ x_),          # forgot "* (h > 0)"
         "W_out": d_y_hat.T @ a_}
wrong_errors = gradcheck.check_gradients(mlp_loss, params, wrong, np.random.default_rng(2), max_entries=max_entries)
print(f"   ∂L/∂W_in without the mask: relative error {wrong_errors['W_in']:.2e}")
check(wrong_errors["W_in"] > 1e-2, "the check flags the bug")

# %% 5. Check the residual model, literal and feature-basis paths
print("\n5. The residual model's two backward passes")
streams = data.random_streams(4)
res_params = residual.init_params(n, d, d_mlp, streams["matrix"], streams["init"])
y_res = data.make_labels(x, "residual")
for name, forward, backward in (("literal", residual.forward_literal, residual.backward_literal),
                                ("feature basis", residual.forward, residual.backward)):
    out, res_cache = forward(res_params, x)
    res_grads = backward(res_params, res_cache, loss.mse_loss(out, y_res)[1])
    res_errors = gradcheck.check_gradients(lambda: loss.mse_loss(forward(res_params, x)[0], y_res)[0],
                                           {k: res_params[k] for k in residual.PARAM_KEYS}, res_grads,
                                           np.random.default_rng(5), max_entries=max_entries)
    for key, error in res_errors.items():
        print(f"   {name:>13s} ∂L/∂{key}: relative error {error:.2e}")
        check(error < TOLERANCE, f"residual ({name}) ∂L/∂{key} is right")

# %% 6. The gradient of a learned mixing strength σ
print("\n6. loss.sigma_grad: σ enters the labels y = ReLU(x) + |σ| M x, not the model")
M = data.mixing_matrix("asymmetric", n, np.random.default_rng(6))
mixed = data.mixing_term(x, M)                                    # M x, (B, n)
for sigma in (0.03, -0.02):
    sigma_box = np.array([sigma])                                 # an array the checker can perturb


    def sigma_loss():
        labels = np.maximum(x, 0) + abs(sigma_box[0]) * mixed     # y = ReLU(x) + |σ| M x
        return loss.mse_loss(y_hat, labels)[0]

    d_y = loss.mse_loss(y_hat, np.maximum(x, 0) + abs(sigma) * mixed)[1]
    analytic = loss.sigma_grad(d_y, mixed, sigma)
    numerical = gradcheck.numerical_gradient(sigma_loss, sigma_box)[0]
    print(f"   σ = {sigma:+.2f}: ∂L/∂σ analytic {analytic:+.8f}, finite difference {numerical:+.8f}")
    check(gradcheck.relative_error([numerical], [analytic]) < TOLERANCE, f"loss.sigma_grad is right at σ = {sigma:+.2f}")
print("\nChapter 04 done.")
