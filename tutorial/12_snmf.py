"""Chapter 12: semi-NMF, and an MLP built from the mixing matrix alone (cc_numpy/analyses/snmf.py).

Run it whole:      python tutorial/12_snmf.py          (a few seconds)
                   python tutorial/12_snmf.py --full   (a 9-point σ sweep, 5,000 iterations each; about half a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/12_snmf.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.analyses import baselines, small_p, snmf
from cc_numpy.core import data, evaluate  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 12: semi-NMF and the SNMF baseline.")
parser.add_argument("--full", action="store_true", help="finer σ grid and 5,000 iterations per factorisation")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

n, d_mlp = 100, 50
sigmas = np.linspace(0, 0.04, 9) if args.full else np.array([0.0, 0.01, 0.02, 0.03])
iterations = 5000 if args.full else 300
print(f"n = {n}, rank d_mlp = {d_mlp}; σ grid {np.round(sigmas, 3).tolist()}; {iterations} iterations")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. Positive and negative parts
print("\n1. snmf.positive_part and snmf.negative_part: A = A⁺ − A⁻, |A| = A⁺ + A⁻, both ≥ 0")
A = np.array([[1.5, -2.0], [0.0, -0.5]])
A_pos, A_neg = snmf.positive_part(A), snmf.negative_part(A)
print("   A⁺ =", A_pos.tolist(), " A⁻ =", A_neg.tolist())
check(np.array_equal(A_pos - A_neg, A) and np.array_equal(A_pos + A_neg, np.abs(A)), "the two identities")

# %% 2. The two half-steps
print("\n2. snmf.update_F (least squares) and snmf.update_G (multiplicative) on a random problem")
rng = np.random.default_rng(0)
X = rng.standard_normal((30, 40))
G = snmf.init_G(X, 5, rng)                                        # (40, 5), entries in [0.2, 1.2)
F = snmf.update_F(X, G)                                           # (30, 5) = argmin_F ‖X − F Gᵀ‖²
residual_gradient = (X - F @ G.T) @ G                             # −½ ∂J/∂F, zero at the least-squares optimum
check(np.abs(residual_gradient).max() < 1e-10, "after the F-step, ∂J/∂F = −2 (X − F Gᵀ) G = 0")
G[0, 0] = 0.0                                                     # a zero entry ...
G_new = snmf.update_G(X, F, G)
check(G_new[0, 0] == 0.0 and np.all(G_new >= 0), "... stays zero; every entry stays ≥ 0")
G[0, 0] = 0.5
objectives = [snmf.snmf_objective(X, F, G)]
for _ in range(20):
    G = snmf.update_G(X, F, G)
    objectives.append(snmf.snmf_objective(X, F, G))
check(np.all(np.diff(objectives) <= 1e-12 * np.array(objectives[:-1])), "20 G-steps at fixed F never increase J")

# %% 3. The full solver recovers an exactly factorisable matrix
print("\n3. snmf.semi_nmf on X = F_true G_trueᵀ (rank 5, G_true ≥ 0)")
F_true, G_true = rng.standard_normal((30, 5)), rng.uniform(0, 1, (40, 5))
X_exact = F_true @ G_true.T
result = snmf.semi_nmf(X_exact, 5, np.random.default_rng(1), max_iter=3000)
relative = np.linalg.norm(X_exact - result["F"] @ result["G"].T) / np.linalg.norm(X_exact)
history = result["objective_history"]
print(f"   {result['n_iter']} iterations, converged {result['converged']}, relative error {relative:.1e}")
check(np.all(np.diff(history) <= 1e-12 * history[0]), "the objective never increased (up to rounding, 1e-12 of its start)")
check(relative < 1e-4, "the factorisation is recovered")

# %% 4. The SNMF baseline: factorise I + σM, read off an MLP
print("\n4. The SNMF baseline: W_out W_in ≈ X = I + σM with W_in = Gᵀ ≥ 0, W_out = F (asymmetric M)")
M = data.mixing_matrix("asymmetric", n, np.random.default_rng(2))
rows = []
for sigma in sigmas:
    target = np.eye(n) + sigma * M
    losses = {}
    for orientation, X_sigma in (("ours: X = I + σM", target), ("authors: X = (I + σM)ᵀ", target.T)):
        fit = snmf.semi_nmf(X_sigma, d_mlp, np.random.default_rng(3), max_iter=iterations)
        W_in, W_out = fit["G"].T, fit["F"]                        # (d_mlp, n) ≥ 0, (n, d_mlp)
        losses[orientation] = small_p.small_p_loss(W_in, W_out, M if sigma else None, sigma)
    naive = small_p.small_p_loss(np.eye(d_mlp, n), np.eye(n, d_mlp), M if sigma else None, sigma)
    rows.append((sigma, losses["ours: X = I + σM"], losses["authors: X = (I + σM)ᵀ"], naive))
    print(f"   σ = {sigma:.3f}: lim L/p, SNMF of I + σM {rows[-1][1]:.4f}, of (I + σM)ᵀ {rows[-1][2]:.4f}, "
          f"naive {naive:.4f}")
table = np.array(rows)
check(abs(table[0, 1] - 1 / 12) < 1e-3, "at σ = 0 the SNMF baseline is the naive 1/12")
check(table[1:, 1].min() < 1 / 12 - 0.005, "with mixing the SNMF-built MLP beats 1/12, from M alone")
check(np.all(table[1:, 1] <= table[1:, 2] + 1e-9), "factorising I + σM (our orientation) beats (I + σM)ᵀ")

# %% 4b. The package's version of the same construction
print("\n4b. baselines.snmf_baseline does exactly this (target 'ours' = I + σM, 'authors' = I + σMᵀ)")
packaged = baselines.snmf_baseline(M, 0.02, np.random.default_rng(3), d_mlp=d_mlp, target="ours", max_iter=iterations)
by_hand = snmf.semi_nmf(np.eye(n) + 0.02 * M, d_mlp, np.random.default_rng(3), max_iter=iterations)
print(f"   baselines.snmf_baseline: lim L/p = {packaged['small_p_loss_over_p']:.4f}; objective "
      f"{packaged['objective']:.3f} against the Eckart–Young floor {packaged['eckart_young_objective']:.3f}")
check(np.allclose(packaged["W_in"], by_hand["G"].T) and np.allclose(packaged["W_out"], by_hand["F"]),
      "same factors as semi_nmf by hand: W_in = Gᵀ, W_out = F")

# %% 5. The same baseline scored by Monte Carlo at small and moderate p
print("\n5. evaluate.loss_over_p of the SNMF-built MLP at σ = 0.02: p = 0.001 approaches the limit, p = 0.01 does not")
fit = snmf.semi_nmf(np.eye(n) + 0.02 * M, d_mlp, np.random.default_rng(3), max_iter=iterations)
built = {"W_in": fit["G"].T.copy(), "W_out": fit["F"].copy()}
limit = small_p.small_p_loss(built["W_in"], built["W_out"], M, 0.02)
scores = {p: evaluate.loss_over_p(built, p, np.random.default_rng(4), task="mixed", M=M, sigma=0.02,
                                  n_samples=50_000, target_stderr=0.001) for p in (0.001, 0.01)}
print(f"   limit p → 0: {limit:.4f}; " + "; ".join(f"p = {p}: {s['loss_over_p']:.4f} ± {s['stderr']:.4f}"
                                                  for p, s in scores.items()))
print(f"   fraction of positive entries of W_in: {np.mean(built['W_in'] > 1e-6):.2f}: every neuron reads every feature")
check(abs(scores[0.001]["loss_over_p"] - limit) < 5 * scores[0.001]["stderr"] + 0.003, "p = 0.001 is near the limit")
check(scores[0.01]["loss_over_p"] > scores[0.001]["loss_over_p"] + 0.005,
      "at p = 0.01 two active features interfere through the dense W_in ≥ 0: the baseline is built for p → 0 only")

# %% 6. Figures
print("\n6. Figures: the objective of the rank-5 recovery, and the SNMF baseline against σ")
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].semilogy(history)
axes[0].set(xlabel="iteration", ylabel="‖X − F Gᵀ‖²_F", title="semi-NMF of an exact rank-5 matrix")
axes[1].plot(table[:, 0], table[:, 1], "o-", label="SNMF of I + σM (ours)")
axes[1].plot(table[:, 0], table[:, 2], "o-", label="SNMF of (I + σM)ᵀ (authors)")
axes[1].plot(table[:, 0], table[:, 3], "o-", label="naive model on mixed labels")
axes[1].axhline(1 / 12, color="k", ls="--", label="naive 1/12 (clean)")
axes[1].set(xlabel="σ", ylabel="lim L/p", title="SNMF baseline, asymmetric M, p → 0", ylim=(0.06, 0.12))
axes[1].legend()
fig.tight_layout()
path = os.path.join(args.out, "12_snmf.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 12 done.")
