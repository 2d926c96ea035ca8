"""Chapter 10: the neurons live in the top eigenvectors of the mixing matrix (cc_numpy/analyses/eigen.py).

Run it whole:      python tutorial/10_eigen.py          (a few seconds: 2,000 training steps)
                   python tutorial/10_eigen.py --full   (the paper's 20,000 steps, under a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/10_eigen.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.analyses import eigen
from cc_numpy.core import evaluate, train  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 10: eigen-analysis of a trained MLP against its mixing matrix.")
parser.add_argument("--full", action="store_true", help="train for the paper's 20,000 steps")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

n, d_mlp, k_top, sigma = 100, 50, 50, 0.03
steps = 20_000 if args.full else 2_000
eval_samples = 400_000 if args.full else 50_000
print(f"asymmetric M, σ = {sigma}, p = 0.01, {steps} training steps; figures go to {args.out}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. The eigenbasis of the symmetrised mixing matrix
print("\n1. eigen.symmetric_eigenbasis(M): (M + Mᵀ)/2 = E diag(λ) Eᵀ, λ descending")
config = train.make_config(mixing="asymmetric", sigma=sigma, steps=steps)
_, M, _ = train.build_run(config)                                 # the M this run trains on (seed 0)
eigenvalues, E = eigen.symmetric_eigenbasis(M)                    # (n,), (n, n)
S = (M + M.T) / 2
print(f"   λ_1 = {eigenvalues[0]:.2f} … λ_50 = {eigenvalues[49]:.2f}, λ_51 = {eigenvalues[50]:.2f} … "
      f"λ_100 = {eigenvalues[-1]:.2f}; semicircle radius 2√(n/2) = {2 * np.sqrt(n / 2):.2f}")
check(np.all(np.diff(eigenvalues) <= 0) and np.allclose(E.T @ E, np.eye(n)), "sorted, orthonormal")
check(np.allclose(E @ np.diag(eigenvalues) @ E.T, S), "reconstructs (M + Mᵀ)/2")
check(np.array_equal(eigen.symmetric_eigenbasis(M.T)[1], E), "M and Mᵀ give the same basis (signs fixed)")

# %% 2. Why this basis: the singular vectors of I + σM
print("\n2. eigen.mixing_svd(M, σ): s_k(I + σM) ≈ 1 + σλ_k, and the top-50 singular vectors ≈ E_1 … E_50")
singular_values, U, Vt = eigen.mixing_svd(M, sigma)
overlap = np.sum((E[:, :k_top].T @ Vt[:k_top].T) ** 2) / k_top   # ‖E_50ᵀ V_50‖²_F / 50, 1 = same subspace
energy = np.sum(singular_values[:k_top] ** 2) / np.sum(singular_values ** 2)
print(f"   s_1 = {singular_values[0]:.3f} vs 1 + σλ_1 = {1 + sigma * eigenvalues[0]:.3f}; "
      f"s_100 = {singular_values[-1]:.3f} vs 1 + σλ_100 = {1 + sigma * eigenvalues[-1]:.3f}")
print(f"   overlap of the top-50 right singular subspace with span(E_1 … E_50): {overlap:.3f} (random: 0.5)")
print(f"   the top 50 singular values carry {energy:.1%} of ‖I + σM‖²_F (for I alone: 50 %)")
check(np.allclose(U @ np.diag(singular_values) @ Vt, np.eye(n) + sigma * M), "I + σM = U diag(s) Vt")
check(np.corrcoef(singular_values, 1 + sigma * eigenvalues)[0, 1] > 0.99 and overlap > 0.9,
      "to first order in σ, (I + σM)ᵀ(I + σM) = I + 2σS: the best rank-50 map keeps the top eigenvectors of S")

# %% 3. The measurements on maps whose answer we know
print("\n3. eigen.eigen_alignment and eigen.subspace_fractions on a projector and on random weights")
projector = {"W_in": E[:, :k_top].T, "W_out": E[:, :k_top]}      # W_out W_in = Σ_{k ≤ 50} E_k E_kᵀ
cos_projector = eigen.eigen_alignment(projector["W_in"], projector["W_out"], E)
check(np.allclose(cos_projector[:k_top], 1) and np.allclose(cos_projector[k_top:], 0),
      "projector on E_1 … E_50: cos = 1 for k ≤ 50, 0 beyond (A E_k = 0 counts as 0)")
rng = np.random.default_rng(0)
random_fractions = eigen.subspace_fractions(rng.standard_normal((d_mlp, n)), rng.standard_normal((n, d_mlp)), E, k=k_top)
print(f"   random weights: input fraction {random_fractions['input_fraction_total']:.3f}, output "
      f"{random_fractions['output_fraction_total']:.3f}, random_baseline k/n = {random_fractions['random_baseline']}")
check(abs(random_fractions["input_fraction_total"] - 0.5) < 0.05, "a random direction puts about k/n of its norm there")

# %% 4. Train the model the paper analyses
print(f"\n4. Train the MLP on y = ReLU(x) + σ M x (asymmetric, σ = {sigma}, p = 0.01) for {steps} steps")
run = train.train(config)
W_in = run["params"]["W_in"].astype(np.float64)                   # (d_mlp, n)
W_out = run["params"]["W_out"].astype(np.float64)                 # (n, d_mlp)
score = evaluate.loss_over_p({"W_in": W_in, "W_out": W_out}, 0.01, np.random.default_rng(1), task="mixed",
                             M=M, sigma=sigma, n_samples=eval_samples)
print(f"   {run['seconds']:.1f} s; L/p at p = 0.01: {score['loss_over_p']:.4f} ± {score['stderr']:.4f} (naive 1/12 = 0.0833)")
check(np.array_equal(run["M"], M), "the run trained on the M analysed above")

# %% 5. cos(E_k, W_out W_in E_k)
print("\n5. eigen.eigen_alignment(W_in, W_out, E): does W_out W_in map E_k onto a multiple of itself?")
cos = eigen.eigen_alignment(W_in, W_out, E)
cos_svd = eigen.eigen_alignment(Vt[:k_top], U[:, :k_top] * singular_values[:k_top], E)   # best rank-50 linear map
for low, high in ((1, 40), (41, 50), (51, 60), (61, 100)):
    print(f"   k = {low:>3d} … {high:<3d}: mean cos trained {cos[low - 1:high].mean():.3f}, "
          f"best rank-50 linear map {cos_svd[low - 1:high].mean():.3f}")
check(cos[:40].mean() > 0.9 and cos[60:].max() < 0.6,
      "≈ 1 for the first 40 eigenvectors, small beyond the 60th: the model keeps the top eigen-subspace")

# %% 6. Where the neurons' weights live
print("\n6. eigen.subspace_fractions and eigen.projection_matrices: the weights in the eigenbasis")
fractions = eigen.subspace_fractions(W_in, W_out, E, k=k_top)
projections = eigen.projection_matrices(W_in, W_out, E)           # W_in E (d_mlp, n), Eᵀ W_out (n, d_mlp)
print(f"   inside span(E_1 … E_50): input weights {fractions['input_fraction_total']:.3f}, output weights "
      f"{fractions['output_fraction_total']:.3f} (random {fractions['random_baseline']}); least aligned neuron: "
      f"input {fractions['input_fraction'].min():.3f}, output {fractions['output_fraction'].min():.3f}")
check(fractions["input_fraction_total"] > 0.7 and fractions["output_fraction_total"] > 0.7,
      "well above the 0.5 of a random subspace of the same size")
check(np.allclose(projections["input"] @ E.T, W_in), "W_in E are coordinates: (W_in E) Eᵀ = W_in")

# %% 7. W_out W_in against σM
print("\n7. eigen.product_vs_mixing_fit: (W_out W_in)_ij ≈ slope · σM_ij + intercept, off and on the diagonal")
fits = {"trained": eigen.product_vs_mixing_fit(W_in, W_out, M, sigma),
        "projector on E_1 … E_50": eigen.product_vs_mixing_fit(projector["W_in"], projector["W_out"], M, sigma),
        "best rank-50 linear map": eigen.product_vs_mixing_fit(Vt[:k_top], U[:, :k_top] * singular_values[:k_top],
                                                               M, sigma)}
print(f"   {'':>24s} {'off-diag slope':>15s} {'r²':>5s} {'diag slope':>11s} {'diag intercept':>15s}")
for name, fit in fits.items():
    print(f"   {name:>24s} {fit['offdiag']['slope']:15.2f} {fit['offdiag']['r2']:5.2f} {fit['diag']['slope']:11.2f} "
          f"{fit['diag']['intercept']:15.2f}")
print(f"   {'paper (20k steps)':>24s} {1.86:15.2f} {'':>5s} {3.38:11.2f} {0.62:15.2f}")
trained = fits["trained"]
check(1.3 < trained["offdiag"]["slope"] < 2.4 and abs(trained["diag"]["intercept"] - 0.62) < 0.1,
      "off-diagonal slope near the paper's 1.86, diagonal intercept near 0.62")
check(trained["diag"]["slope"] > 1.5 * trained["offdiag"]["slope"],
      "the diagonal slope is about twice the off-diagonal one (S_ii = M_ii, but S_ij only half of M_ij)")

# %% 8. The summary the reproduction reports
print("\n8. eigen.eigen_summary(W_in, W_out, M, σ): everything above as one dict of floats")
summary = eigen.eigen_summary(W_in, W_out, M, sigma, k=k_top)
for key in ("cos_mean_head", "cos_min_head", "cos_max_tail", "cos_mean_tail", "input_fraction_total",
            "output_fraction_total", "offdiag_slope", "diag_slope", "diag_intercept"):
    print(f"   {key:>22s} = {summary[key]:.3f}")
check(np.isclose(summary["cos_mean_head"], cos[:40].mean()) and np.isclose(summary["cos_max_tail"], cos[60:].max()),
      "head = E_1 … E_40, tail = E_61 … E_100 (the defaults head=40, tail_start=60)")

# %% 9. Figure
print("\n9. Figure: alignment, the input weights in the eigenbasis, the fit, the fractions per neuron")
fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
k = np.arange(1, n + 1)
axes[0, 0].plot(k, cos, ".-", label="trained")
axes[0, 0].plot(k, cos_svd, ".", alpha=0.5, label="best rank-50 linear map")
axes[0, 0].axvline(k_top, color="0.6", linewidth=0.8)
axes[0, 0].set(xlabel="k (descending eigenvalue of (M + Mᵀ)/2)", ylabel="cos(E_k, W_out W_in E_k)")
axes[0, 0].legend()
image = axes[0, 1].imshow(np.abs(projections["input"]), aspect="auto", cmap="magma")
axes[0, 1].set(xlabel="eigenvector k", ylabel="neuron j", title="|W_in E|")
fig.colorbar(image, ax=axes[0, 1])
off = trained["offdiag"]
axes[1, 0].plot(trained["offdiag_x"], trained["offdiag_y"], ".", markersize=1.5, alpha=0.4, label="i ≠ j")
axes[1, 0].plot(trained["diag_x"], trained["diag_y"], ".", markersize=4, label="i = j")
line = np.linspace(trained["offdiag_x"].min(), trained["offdiag_x"].max(), 2)
axes[1, 0].plot(line, off["slope"] * line + off["intercept"], "k", label=f"slope {off['slope']:.2f}")
axes[1, 0].set(xlabel="σ M_ij", ylabel="(W_out W_in)_ij")
axes[1, 0].legend(fontsize=8)
axes[1, 1].bar(np.arange(d_mlp), fractions["input_fraction"], label="input (rows of W_in)")
axes[1, 1].plot(fractions["output_fraction"], "k.", label="output (columns of W_out)")
axes[1, 1].axhline(fractions["random_baseline"], color="0.4", ls="--", label="random k/n")
axes[1, 1].set(xlabel="neuron j", ylabel="fraction in span(E_1 … E_50)", ylim=(0, 1.05))
axes[1, 1].legend(fontsize=8)
fig.tight_layout()
path = os.path.join(args.out, "10_eigen.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 10 done.")
