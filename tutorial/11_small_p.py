"""Chapter 11: the exact loss in the sparse limit p → 0, and why clean labels cannot beat 1/12 (cc_numpy/analyses/small_p.py).

Run it whole:      python tutorial/11_small_p.py          (a few seconds)
                   python tutorial/11_small_p.py --full   (a finer σ grid, longer optimisation and training; about 1.5 minutes)
or cell by cell through the '# %%' markers in an editor. Read tutorial/11_small_p.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.core import data, evaluate, gradcheck, train
from cc_numpy.analyses import small_p  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 11: the exact small-p loss.")
parser.add_argument("--full", action="store_true", help="finer σ grid, longer optimisation, longer training")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

n, d_mlp = 100, 50
sigmas = np.linspace(0, 0.08, 9) if args.full else np.array([0.0, 0.015, 0.03, 0.06])
maxiter = 3000 if args.full else 150
print(f"n = {n}, d_mlp = {d_mlp}; σ grid {np.round(sigmas, 3).tolist()}; L-BFGS-B iterations {maxiter}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. The exact limit against sampled one-active inputs
print("\n1. small_p.small_p_loss (exact) against small_p.monte_carlo_small_p_loss (sampled) for random weights")
rng = np.random.default_rng(0)
W_in, W_out = rng.standard_normal((d_mlp, n)) * 0.2, rng.standard_normal((n, d_mlp)) * 0.2
M = data.mixing_matrix("asymmetric", n, np.random.default_rng(1))
for sigma in (0.0, 0.03):
    exact = small_p.small_p_loss(W_in, W_out, M if sigma else None, sigma)
    estimate, stderr = small_p.monte_carlo_small_p_loss(W_in, W_out, M if sigma else None, sigma, 200_000,
                                                        np.random.default_rng(2))
    print(f"   σ = {sigma}: exact {exact:.5f}, Monte Carlo {estimate:.5f} ± {stderr:.5f}")
    check(abs(exact - estimate) < 5 * stderr, f"the exact limit is within 5 standard errors at σ = {sigma}")

# %% 2. Its gradient, checked
print("\n2. small_p.small_p_loss_and_grad: the analytic gradient against finite differences")
weights = {"W_in": W_in.copy(), "W_out": W_out.copy()}
value, grads = small_p.small_p_loss_and_grad(weights["W_in"], weights["W_out"], M, 0.03)
errors = gradcheck.check_gradients(lambda: small_p.small_p_loss(weights["W_in"], weights["W_out"], M, 0.03),
                                   weights, grads, np.random.default_rng(3), max_entries=300)
for key, error in errors.items():
    print(f"   ∂/∂{key}: relative error {error:.1e}")
    check(error < 1e-6, f"gradient with respect to {key}")

# %% 3. The naive model and the Eckart–Young floor
print("\n3. The naive model attains the floor (n − d_mlp)/(6n) = 1/12 on clean labels: nothing does better")
naive_in, naive_out = np.eye(d_mlp, n), np.eye(n, d_mlp)
naive_clean = small_p.small_p_loss(naive_in, naive_out)
floor_clean = small_p.small_p_lower_bound(n, d_mlp)
print(f"   naive {naive_clean:.6f}, floor {floor_clean:.6f}, 1/12 = {1 / 12:.6f}")
check(np.isclose(naive_clean, 1 / 12) and np.isclose(floor_clean, 1 / 12), "naive = floor = 1/12")
best_clean = small_p.optimise_small_p(n, d_mlp, rng=np.random.default_rng(4), n_restarts=2, maxiter=maxiter)
print(f"   L-BFGS-B from random starts: {best_clean['losses_per_restart']} "
      f"({best_clean['n_iterations_per_restart']} iterations)")
check(best_clean["loss"] >= floor_clean - 1e-12 and best_clean["loss"] < floor_clean + 1e-4,
      "optimising the exact clean loss ends at 1/12, never below")

# %% 4. With mixing the floor drops, and optimised weights go below 1/12
print("\n4. With mixing: naive gets worse, the floor and the optimum go down (then up again for large σ)")
rows = []
for kind in ("symmetric", "asymmetric"):
    M_kind = data.mixing_matrix(kind, n, np.random.default_rng(5))
    for sigma in sigmas:
        M_or_none = M_kind if sigma else None
        naive = small_p.small_p_loss(naive_in, naive_out, M_or_none, sigma)
        floor = small_p.small_p_lower_bound(n, d_mlp, M_or_none, sigma)
        best = small_p.optimise_small_p(n, d_mlp, M_or_none, sigma, np.random.default_rng(6), n_restarts=1,
                                        maxiter=maxiter)["loss"]
        rows.append((kind, sigma, naive, floor, best))
        print(f"   {kind:>10s} σ = {sigma:.3f}: naive {naive:.4f}   floor {floor:.4f}   optimised {best:.4f}")
        check(floor - 1e-12 <= best <= naive + 1e-9, "floor ≤ optimised ≤ naive")
best_symmetric = min(r[4] for r in rows if r[0] == "symmetric")
check(best_symmetric < 1 / 12 - 0.01, f"with symmetric mixing the sparse limit goes down to {best_symmetric:.4f}")

# %% 5. Why: the spectrum of the target I + σM
print("\n5. Eckart–Young: a rank-50 map captures the top 50 squared singular values of the target I + σM")
for sigma in (0.0, 0.03):
    target = np.eye(n) + sigma * data.mixing_matrix("symmetric", n, np.random.default_rng(5))
    s = np.linalg.svd(target, compute_uv=False)
    print(f"   σ = {sigma}: singular values from {s[0]:.2f} down to {s[-1]:.2f}; top 50 hold "
          f"{np.sum(s[:d_mlp] ** 2) / np.sum(s ** 2):.1%} of ‖I + σM‖²_F")

# %% 6. A trained model's L/p approaches its small-p limit
print("\n6. A trained model: evaluate.loss_over_p at small p approaches small_p.small_p_loss of its weights")
steps = 10_000 if args.full else 700
result = train.train(dict(mixing="symmetric", sigma=0.03, steps=steps))
params = {k: v.astype(np.float64) for k, v in result["params"].items()}
limit = small_p.small_p_loss(params["W_in"], params["W_out"], result["M"], 0.03)
print(f"   trained {steps} steps; small-p limit of its weights: {limit:.4f}")
for p in (0.01, 0.001):
    s = evaluate.loss_over_p(params, p, np.random.default_rng(9), task="mixed", M=result["M"], sigma=0.03,
                             n_samples=50_000, target_stderr=0.0015)
    print(f"   p = {p}: L/p = {s['loss_over_p']:.4f} ± {s['stderr']:.4f}")
check(abs(s["loss_over_p"] - limit) < 5 * s["stderr"] + 0.003, "L/p at p = 0.001 is close to the exact limit")

# %% 7. Figure: the sparse limit against σ
print("\n7. Figure: naive, floor and optimised sparse-limit L/p against σ")
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, kind in zip(axes, ("symmetric", "asymmetric")):
    table = np.array([r[1:] for r in rows if r[0] == kind])
    ax.plot(table[:, 0], table[:, 1], "o-", label="naive model")
    ax.plot(table[:, 0], table[:, 3], "o-", label="optimised (L-BFGS-B)")
    ax.plot(table[:, 0], table[:, 2], "o--", label="Eckart–Young floor")
    ax.axhline(1 / 12, color="k", ls=":", label="1/12")
    ax.set(xlabel="σ", title=f"{kind} M, p → 0", ylim=(0.02, 0.14))
    ax.legend()
axes[0].set_ylabel("lim L/p")
fig.tight_layout()
path = os.path.join(args.out, "11_small_p.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 11 done.")
