"""Chapter 08: the mixing matrix hidden in the CC model (cc_numpy/core/mixing.py).

Run it whole:      python tutorial/08_mixing.py          (about six seconds: 700 steps per model)
                   python tutorial/08_mixing.py --full   (the paper's 10,000 steps per model, about a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/08_mixing.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.core import data, evaluate, loss, mixing, mlp, residual, train  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 08: the residual model is an MLP on mixed labels.")
parser.add_argument("--full", action="store_true", help="train every model for the paper's 10,000 steps")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

n, d, d_mlp = 100, 1000, 50
steps = 10_000 if args.full else 700
eval_samples = 400_000 if args.full else 100_000
print(f"n = {n}, d = {d}, d_mlp = {d_mlp}; {steps} training steps per model; figures go to {args.out}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def as_float64(params):
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items() if k != "sigma"}


# %% 1. The closed form: the residual model's error is an MLP's error on mixed labels
print("\n1. mixing.residual_mixing_matrix(W_E) = I − W_EᵀW_E and mixing.feature_basis_weights(params) = W̃")
streams = data.random_streams(0)
params = residual.init_params(n, d, d_mlp, streams["matrix"], streams["init"])
params["W_out"] *= 30                                             # make the MLP part matter (any weights will do)
M = mixing.residual_mixing_matrix(params["W_E"])                  # σ = 1
tilde = mixing.feature_basis_weights(params)
x = data.sample_inputs(4096, n, 0.05, np.random.default_rng(1))
error_residual = residual.forward_literal(params, x)[0] - data.make_labels(x, "residual")    # ŷ − (x + ReLU(x))
error_mlp = mlp.forward(tilde, x)[0] - data.make_labels(x, "mixed", M, sigma=1.0)           # W̃ MLP − (ReLU(x) + M x)
print(f"   max |error_residual − error_mlp| = {np.abs(error_residual - error_mlp).max():.1e}")
check(np.allclose(error_residual, error_mlp, atol=1e-12), "same error ŷ − y for every sample, hence the same loss")

# %% 2. ... and the same gradients, mapped through W_E
print("\n2. The gradients agree too: ∂L/∂W_in = (∂L/∂W̃_in) W_Eᵀ, ∂L/∂W_out = W_E ∂L/∂W̃_out")
y_hat, cache = residual.forward_literal(params, x)
grads_residual = residual.backward_literal(params, cache, loss.mse_loss(y_hat, data.make_labels(x, "residual"))[1])
y_hat_mlp, cache_mlp = mlp.forward(tilde, x)
grads_mlp = mlp.backward(tilde, cache_mlp, loss.mse_loss(y_hat_mlp, data.make_labels(x, "mixed", M, 1.0))[1])
check(np.allclose(grads_residual["W_in"], grads_mlp["W_in"] @ params["W_E"].T), "∂L/∂W_in")
check(np.allclose(grads_residual["W_out"], params["W_E"] @ grads_mlp["W_out"]), "∂L/∂W_out")

# %% 3. What this M looks like
print("\n3. M = I − W_EᵀW_E: symmetric, zero diagonal, entries of size 1/√d")
off_diagonal = M[~np.eye(n, dtype=bool)]
eigenvalues = np.linalg.eigvalsh(M)
ratio = np.sqrt(n / d)
print(f"   off-diagonal std {off_diagonal.std():.4f} (1/√d = {1 / np.sqrt(d):.4f}); eigenvalues in "
      f"[{eigenvalues.min():.3f}, {eigenvalues.max():.3f}] (Marchenko–Pastur edges 1 − (1 ± √(n/d))²: "
      f"[{1 - (1 + ratio) ** 2:.3f}, {1 - (1 - ratio) ** 2:.3f}])")
check(np.allclose(M, M.T) and np.allclose(np.diag(M), 0), "symmetric with a zero diagonal")
check(np.allclose(mixing.residual_mixing_matrix(params["W_E"], sign="authors"), -M), "the authors' sign is −M")
print(f"   as a σ-scaled matrix of unit-variance entries: σ_equivalent = {off_diagonal.std():.4f} (cf. the 0.03 of chapter 06)")

# %% 4. Same seed, same W_E: train.build_run gives the residual model and the MLP the same M
print("\n4. The residual model and the MLP with mixing='embedding' share W_E (and so M) for one seed")
residual_params, _, _ = train.build_run(train.make_config(model="residual", dtype="float64"))
_, M_embedding, _ = train.build_run(train.make_config(mixing="embedding", sigma=1.0, dtype="float64"))
check(np.allclose(mixing.residual_mixing_matrix(residual_params["W_E"]), M_embedding),
      "mixing_matrix('embedding') = I − W_EᵀW_E of the residual model's W_E")

# %% 5. Train the residual model, and the MLP on its mixing matrix (both signs)
print(f"\n5. Train for {steps} steps: the residual model; the MLP on M (our sign); the MLP on −M (the authors' sign)")
runs = {"residual model": train.train(dict(model="residual", steps=steps)),
        "MLP, M = I − W_EᵀW_E": train.train(dict(mixing="embedding", sigma=1.0, steps=steps)),
        "MLP, M = W_EᵀW_E − I": train.train(dict(mixing="embedding_authors", sigma=1.0, steps=steps))}
scores = {}
for name, result in runs.items():
    task = result["config"]["task"]
    scores[name] = evaluate.loss_over_p(as_float64(result["params"]), 0.01, np.random.default_rng(7), task=task,
                                        M=result["M"], sigma=result["sigma"], n_samples=eval_samples)
    print(f"   {name:>22s}: L/p = {scores[name]['loss_over_p']:.4f} ± {scores[name]['stderr']:.4f} "
          f"({result['seconds']:.1f} s)   naive 1/12 = {1 / 12:.4f}")

trained = as_float64(runs["residual model"]["params"])
as_mlp = evaluate.loss_over_p(mixing.feature_basis_weights(trained), 0.01, np.random.default_rng(7), task="mixed",
                              M=mixing.residual_mixing_matrix(trained["W_E"]), sigma=1.0, n_samples=eval_samples)
print(f"   the trained residual model read as an MLP (W̃) on mixed labels: L/p = {as_mlp['loss_over_p']:.6f}")
check(np.isclose(as_mlp["loss_over_p"], scores["residual model"]["loss_over_p"], rtol=1e-9),
      "the same number as the residual model on its own task: it IS that MLP")
check(scores["residual model"]["loss_over_p"] < 1 / 12 and scores["MLP, M = I − W_EᵀW_E"]["loss_over_p"] < 1 / 12,
      "both beat the naive 1/12")
wrong_sign = evaluate.loss_over_p(as_float64(runs["MLP, M = W_EᵀW_E − I"]["params"]), 0.01, np.random.default_rng(7),
                                  task="mixed", M=M_embedding, sigma=1.0, n_samples=eval_samples)
print(f"   the authors'-sign MLP scored on the residual model's actual labels: L/p = {wrong_sign['loss_over_p']:.4f}")
check(wrong_sign["loss_over_p"] > 1 / 12, "the sign matters: −M describes labels the residual model never sees")

# %% 6. The trained network's linear part follows M
print("\n6. Off-diagonal entries of W̃_out W̃_in against M (the network fits σ M x with σ = 1)")
tilde_trained = mixing.feature_basis_weights(trained)
product = tilde_trained["W_out"] @ tilde_trained["W_in"]          # (n, d_mlp) @ (d_mlp, n) -> (n, n)
mask = ~np.eye(n, dtype=bool)
slope, intercept = np.polyfit(M_embedding[mask], product[mask], 1)
correlation = np.corrcoef(M_embedding[mask], product[mask])[0, 1]
print(f"   (W̃_out W̃_in)_ij ≈ {slope:.2f} M_ij {intercept:+.4f}, correlation {correlation:.2f} "
      "(the paper: ≈ 1.86 σM_ij for an asymmetric M)")
check(correlation > 0.5 and slope > 1, "the neurons' linear map is aligned with M")
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(M_embedding[mask], product[mask], s=2, alpha=0.3)
grid = np.linspace(M_embedding[mask].min(), M_embedding[mask].max(), 2)
ax.plot(grid, slope * grid + intercept, "r", label=f"slope {slope:.2f}")
ax.set(xlabel="M_ij = −⟨W_E[:, i], W_E[:, j]⟩", ylabel="(W̃_out W̃_in)_ij", title="trained residual model, i ≠ j")
ax.legend()
fig.tight_layout()
path = os.path.join(args.out, "08_mixing_fit.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)

# %% 7. Remove M and the gain disappears
print(f"\n7. Fine-tune the MLP of 'M = I − W_EᵀW_E' on clean labels (M removed) for {steps} steps, fresh AdamW")
tuned = train.train(dict(task="clean", steps=steps), init_params=runs["MLP, M = I − W_EᵀW_E"]["params"])
before = evaluate.loss_over_p(as_float64(runs["MLP, M = I − W_EᵀW_E"]["params"]), 0.01, np.random.default_rng(8),
                              n_samples=eval_samples)
after = evaluate.loss_over_p(as_float64(tuned["params"]), 0.01, np.random.default_rng(8), n_samples=eval_samples)
print(f"   on clean labels: before fine-tuning L/p = {before['loss_over_p']:.4f}, after = {after['loss_over_p']:.4f} "
      f"± {after['stderr']:.4f}; with M it was {scores['MLP, M = I − W_EᵀW_E']['loss_over_p']:.4f}")
check(after["loss_over_p"] > 1 / 12 - 3 * after["stderr"] - 0.001,
      "without the mixing term the same network is back at (or above) the naive 1/12")
print("\nChapter 08 done.")
