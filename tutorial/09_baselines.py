"""Chapter 09: the baselines every figure is measured against (cc_numpy/analyses/baselines.py).

Run it whole:      python tutorial/09_baselines.py          (a few seconds)
                   python tutorial/09_baselines.py --full   (more Monte Carlo samples, a 9-point σ sweep,
                                                             3,000 semi-NMF iterations; about half a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/09_baselines.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.analyses import baselines
from cc_numpy.core import data, evaluate  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 09: naive, naive + offset and the SNMF-built MLP.")
parser.add_argument("--full", action="store_true", help="more samples, a finer σ grid, 3,000 semi-NMF iterations")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

n, d_mlp = 100, 50
samples = 400_000 if args.full else 40_000
iterations = 3000 if args.full else 300
sigmas = np.linspace(0, 0.04, 9) if args.full else np.array([0.0, 0.01, 0.02, 0.03])
print(f"n = {n}, d_mlp = {d_mlp}; {samples} Monte Carlo samples per p; {iterations} semi-NMF iterations; "
      f"figures go to {args.out}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def agrees(estimate, exact, how_many_stderr=4):
    """A Monte Carlo estimate (evaluate.loss_over_p's dict) within a few standard errors of an exact value."""
    return abs(estimate["loss_over_p"] - exact) <= how_many_stderr * estimate["stderr"] + 1e-12


# %% 1. The naive model: 50 features exactly, the other 50 outputs zero
print("\n1. baselines.naive_params(): W_in = [I | 0], W_out = W_inᵀ; baselines.naive_loss_over_p() = 1/12")
naive = baselines.naive_params()                                  # {"W_in": (50, 100), "W_out": (100, 50)}
check(np.array_equal(naive["W_in"][:, :d_mlp], np.eye(d_mlp)) and not naive["W_in"][:, d_mlp:].any()
      and np.array_equal(naive["W_out"], naive["W_in"].T), "neuron j reads feature j and writes output j")
exact = baselines.naive_loss_over_p()                             # (n − d_mlp)/(6n)
print(f"   exact L/p = (n − d_mlp)/(6n) = {exact:.6f}")
check(np.isclose(exact, 1 / 12), "50 missing outputs × E[ReLU(x)²]/p = 1/6, averaged over 100 outputs: 1/12")
rng = np.random.default_rng(1)
for p in (0.01, 0.1, 1.0):
    estimate = evaluate.loss_over_p(naive, p, rng, task="clean", n_samples=samples)
    print(f"   Monte Carlo at p = {p:<4}: L/p = {estimate['loss_over_p']:.4f} ± {estimate['stderr']:.4f}")
    check(agrees(estimate, exact), f"the naive L/p is 1/12 at p = {p} too (features never interact)")

# %% 2. The naive model on mixed labels: exact at every p, and worse than 1/12
print("\n2. baselines.naive_loss_over_p(M=M, sigma=σ): 1/12 + σ/(3n) Σ_{o>d_mlp} M_oo + σ²‖M‖²_F/(3n)")
M = data.mixing_matrix("asymmetric", n, np.random.default_rng(2))   # M_ij ~ N(0, 1)
sigma = 0.03
exact_mixed = baselines.naive_loss_over_p(M=M, sigma=sigma)
print(f"   σ = {sigma}: exact L/p = {exact_mixed:.4f}; the rough 1/12 + σ²n/3 = {1 / 12 + sigma**2 * n / 3:.4f}")
for p in (0.01, 1.0):
    estimate = evaluate.loss_over_p(naive, p, rng, task="mixed", M=M, sigma=sigma, n_samples=samples)
    print(f"   Monte Carlo at p = {p:<4}: L/p = {estimate['loss_over_p']:.4f} ± {estimate['stderr']:.4f}")
    check(agrees(estimate, exact_mixed), f"the formula holds at p = {p}")
check(exact_mixed > 1 / 12, "on mixed labels the naive model is worse than the dashed 1/12 line of the figures")

# %% 3. Naive + offset: a constant weight b to the 50 unrepresented outputs
print("\n3. baselines.offset_loss_over_p(b, p), a parabola in b, and its vertex baselines.optimal_offset(p)")
print(f"   {'p':>6s} {'b*':>8s} {'L/p(b*)':>9s}   (naive 1/12 = {1 / 12:.5f})")
offsets = {}
for p in (0.01, 0.1, 1.0):
    b_star, best = baselines.optimal_offset(p)
    offsets[p] = (b_star, best)
    grid = np.linspace(0.0, 2.0 * b_star, 401)
    on_grid = [baselines.offset_loss_over_p(b, p) for b in grid]
    print(f"   {p:6g} {b_star:8.4f} {best:9.5f}")
    check(abs(grid[int(np.argmin(on_grid))] - b_star) <= grid[1] and
          np.isclose(best, baselines.offset_loss_over_p(b_star, p)), f"b* minimises the exact L/p at p = {p}")
check(abs(offsets[0.1][0] - 0.013) < 5e-4 and abs(offsets[1.0][0] - 0.019) < 5e-4
      and abs(offsets[1.0][1] - 0.053) < 5e-4, "the paper (arXiv:2606.14673, Fig. 10): b* ≈ 0.013 at p = 0.1; b* ≈ 0.019 and L/p ≈ 0.053 at p = 1")
check(1 / 12 - offsets[0.01][1] < 1e-4, "at p = 0.01 the offset gains less than 1e-4: ≈ naive for sparse inputs")
for p in (0.1, 1.0):
    b_star, best = offsets[p]
    estimate = evaluate.loss_over_p(baselines.offset_params(b_star), p, rng, task="clean", n_samples=samples)
    print(f"   Monte Carlo, naive + b* at p = {p}: {estimate['loss_over_p']:.4f} ± {estimate['stderr']:.4f}")
    check(agrees(estimate, best), f"offset_params(b*) has the exact L/p at p = {p}")

# %% 4. The SNMF-built MLP: which matrix to fit
print("\n4. baselines.snmf_target: ours I + σM, the authors' I + σMᵀ; with M = S + A the latter is I + σS − σA")
S, A = (M + M.T) / 2, (M - M.T) / 2                               # symmetric and antisymmetric parts
X_ours = baselines.snmf_target(M, sigma, "ours")
X_authors = baselines.snmf_target(M, sigma, "authors")
check(np.allclose(X_ours, np.eye(n) + sigma * (S + A)) and np.allclose(X_authors, np.eye(n) + sigma * (S - A)),
      "the two targets differ only in the sign of the antisymmetric part σA")
print(f"   ‖S‖²_F = {np.sum(S**2):.0f}, ‖A‖²_F = {np.sum(A**2):.0f}: for an iid M, half of ‖M‖²_F = {np.sum(M**2):.0f} "
      "is antisymmetric")
check(np.allclose(np.linalg.svd(X_ours, compute_uv=False), np.linalg.svd(X_authors, compute_uv=False)),
      "same singular values (X and Xᵀ), so the same Eckart–Young floor: each target can be fitted equally well")

# %% 5. Build both, and see where the authors' fit loses
print(f"\n5. baselines.snmf_baseline(M, σ = {sigma}, …) for both targets; scored with small_p.small_p_loss on the TRUE labels")
built = {target: baselines.snmf_baseline(M, sigma, np.random.default_rng(3), d_mlp=d_mlp, target=target,
                                         max_iter=iterations) for target in baselines.TARGETS}
fixed = sigma**2 * np.sum(M**2)                                   # σ²‖M‖²_F: the negative inputs get no output
for target, result in built.items():
    P = result["W_out"] @ result["W_in"]                          # (n, d_mlp) @ (d_mlp, n) -> (n, n)
    penalty = -4 * sigma * np.sum(P * A)                          # ‖P − I − σM‖² − ‖P − I − σMᵀ‖² = −4σ⟨P, A⟩
    true_objective = result["objective"] + (penalty if target == "authors" else 0.0)
    print(f"   {target:>7s}: fitted ‖X − W_out W_in‖² = {result['objective']:.3f} (floor "
          f"{result['eckart_young_objective']:.3f}); −4σ⟨W_out W_in, A⟩ = {penalty:+.3f}; "
          f"lim L/p = {result['small_p_loss_over_p']:.4f}")
    check(np.all(result["W_in"] >= 0), f"{target}: W_in ≥ 0, so ReLU(W_in) = W_in and ReLU(−W_in) = 0")
    check(np.isclose(result["small_p_loss_over_p"], (true_objective + fixed) / (6 * n)),
          f"{target}: lim L/p = (‖W_out W_in − (I + σM)‖²_F + σ²‖M‖²_F) / (6n)")
check(built["ours"]["small_p_loss_over_p"] < built["authors"]["small_p_loss_over_p"],
      "fitting I + σMᵀ costs extra on the true labels: the antisymmetric part comes out with the wrong sign")

# %% 6. The SNMF sweep over σ
print(f"\n6. baselines.snmf_sweep over σ = {np.round(sigmas, 3).tolist()} (one start G reused along the sweep)")
sweeps = {target: baselines.snmf_sweep(M, sigmas, np.random.default_rng(4), d_mlp=d_mlp, target=target,
                                       max_iter=iterations) for target in baselines.TARGETS}
naive_mixed = np.array([baselines.naive_loss_over_p(M=M, sigma=s) for s in sigmas])
print(f"   {'σ':>6s} {'ours':>8s} {'authors':>8s} {'naive':>8s}   (lim L/p)")
for i, s in enumerate(sigmas):
    print(f"   {s:6.3f} {sweeps['ours']['small_p_loss_over_p'][i]:8.4f} "
          f"{sweeps['authors']['small_p_loss_over_p'][i]:8.4f} {naive_mixed[i]:8.4f}")
check(abs(sweeps["ours"]["small_p_loss_over_p"][0] - 1 / 12) < 1e-3, "σ = 0: the SNMF baseline is the naive 1/12")
check(sweeps["ours"]["small_p_loss_over_p"][1:].min() < 1 / 12 - 0.005, "with mixing, an MLP built from M alone beats 1/12")

# %% 7. A sparse-limit number: the built MLP at larger p
print("\n7. The SNMF-built MLP by Monte Carlo at p = 0.01 and 0.1 against its p → 0 limit (σ = 0.03, ours)")
mlp_params = {"W_in": built["ours"]["W_in"], "W_out": built["ours"]["W_out"]}
limit = built["ours"]["small_p_loss_over_p"]
print(f"   fraction of entries of W_in above 1e-6: {np.mean(mlp_params['W_in'] > 1e-6):.2f}: "
      f"every neuron reads (almost) every feature; limit p → 0: {limit:.4f}")
at_p = {}
for p in (0.01, 0.1):
    at_p[p] = evaluate.loss_over_p(mlp_params, p, rng, task="mixed", M=M, sigma=sigma, n_samples=samples // 4)
    print(f"   p = {p:<4}: L/p = {at_p[p]['loss_over_p']:.4f} ± {at_p[p]['stderr']:.4f}   "
          f"(naive on these labels, at every p: {exact_mixed:.4f})")
check(at_p[0.1]["loss_over_p"] > limit + 0.01,
      "active features interfere through the dense W_in ≥ 0: the SNMF number holds only as p → 0")

# %% 8. Figure
print("\n8. Figure: the clean-label baselines against p, and the SNMF sweep against σ")
ps = np.logspace(-3, 0, 40)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(ps, [baselines.naive_loss_over_p()] * ps.size, label="naive")
axes[0].plot(ps, [baselines.optimal_offset(p)[1] for p in ps], label="naive + optimal offset b*")
axes[0].set(xscale="log", yscale="log", xlabel="p", ylabel="L/p", title="Clean-label baselines (exact)")
axes[0].legend()
axes[1].plot(sigmas, sweeps["ours"]["small_p_loss_over_p"], "o-", label="SNMF, I + σM (ours)")
axes[1].plot(sigmas, sweeps["authors"]["small_p_loss_over_p"], "s--", label="SNMF, I + σMᵀ (authors)")
axes[1].plot(sigmas, naive_mixed, "^:", label="naive on mixed labels")
axes[1].axhline(1 / 12, color="0.4", ls="--", label="naive 1/12 (clean)")
axes[1].set(xlabel="σ", ylabel="lim L/p", title="SNMF-built MLP, asymmetric M, p → 0")
axes[1].legend(fontsize=8)
fig.tight_layout()
path = os.path.join(args.out, "09_baselines.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 09 done.")
