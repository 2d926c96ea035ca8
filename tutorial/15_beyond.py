"""Chapter 15: beyond the paper — the residual width sweep, the best model from M alone, the phase diagram
(cc_numpy/experiments/width_sweep.py, best_from_m.py, phase_diagram.py).

Run it whole:      python tutorial/15_beyond.py          (a few seconds: the three experiments at the test scale)
                   python tutorial/15_beyond.py --full   (also `python -m cc_numpy width-sweep --scale quick`, ~1 minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/15_beyond.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from cc_numpy.analyses import small_p
from cc_numpy.core import data, loss, mlp, residual
from cc_numpy.core.mixing import feature_basis_weights, residual_mixing_matrix
from cc_numpy.core.train import make_config, train
from cc_numpy.experiments import EXPERIMENTS, run_experiment
from cc_numpy.pipeline.claims import NAIVE, judge
from cc_numpy.pipeline.scale import make_scale

parser = argparse.ArgumentParser(description="Chapter 15: the experiments beyond the paper.")
parser.add_argument("--full", action="store_true", help="also run the width sweep at the quick scale (~1 minute)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
folder = os.path.join(args.out, "15_beyond")
shutil.rmtree(folder, ignore_errors=True)
os.makedirs(folder)
n, d_mlp = 100, 50
print(f"outputs go to {folder}; n = {n}, d_mlp = {d_mlp}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. The residual stream's mixing matrix has spread 1/√d
print("\n1. M = I − W_EᵀW_E for a Gaussian W_E (unit-norm columns): off-diagonal spread against 1/√d")
for d in (100, 300, 1000, 10000):
    M = residual_mixing_matrix(data.random_embedding(n, d, np.random.default_rng(d)))
    rms = np.sqrt(np.mean(M[~np.eye(n, dtype=bool)] ** 2))
    print(f"   d = {d:5d}: rms off-diagonal {rms:.4f}, 1/√d = {1 / np.sqrt(d):.4f}, diagonal max |M_ii| "
          f"{np.abs(np.diag(M)).max():.1e}")
    check(abs(rms * np.sqrt(d) - 1) < 0.05, f"d = {d}: √d · rms = {rms * np.sqrt(d):.3f} ≈ 1 (variance 1/d)")

# %% 2. An orthonormal W_E: no mixing at all
print("\n2. data.random_embedding(..., kind='orthonormal'): the Q of a QR, so W_EᵀW_E = I and M = 0")
W_E = data.random_embedding(n, 1000, np.random.default_rng(0), kind="orthonormal")
M_zero = residual_mixing_matrix(W_E)
check(np.abs(M_zero).max() < 1e-12, f"largest |M_ij| = {np.abs(M_zero).max():.1e} (float64)")
W_in_naive = np.eye(d_mlp, n)                                      # neuron j reads and writes feature j
naive_limit = small_p.small_p_loss(W_in_naive, W_in_naive.T, M_zero, 1.0)
check(abs(naive_limit - NAIVE) < 1e-12, f"the naive weights' exact p → 0 L/p with that M is 1/12 ({naive_limit:.6f})")
try:
    data.random_embedding(n, 50, np.random.default_rng(0), kind="orthonormal")
except ValueError as error:
    print("   d < n is refused:", error)
else:
    check(False, "an orthonormal W_E with d < n must be refused")

# %% 3. With M = 0 the residual model IS the MLP on clean labels (in its feature basis)
print("\n3. A residual model with an orthonormal W_E, trained 20 steps: its loss is the clean-label MLP's loss")
config = make_config(model="residual", d=200, embedding="orthonormal", steps=20, batch_size=512, p=0.05,
                     dtype="float64", engine="plain")
trained = train(config)["params"]
x = data.sample_inputs(4096, n, 0.05, np.random.default_rng(1))
as_residual, _ = loss.mse_loss(residual.forward_literal(trained, x)[0], data.make_labels(x, "residual"))
as_clean_mlp, _ = loss.mse_loss(mlp.forward(feature_basis_weights(trained), x)[0], data.make_labels(x, "clean"))
print(f"   residual model on x + ReLU(x): {as_residual:.10f}; MLP (W̃_in, W̃_out) on ReLU(x): {as_clean_mlp:.10f}")
check(abs(as_residual - as_clean_mlp) < 1e-12 * max(as_residual, 1), "the two losses are the same number")

# %% 4. The residual model's exact p → 0 loss, and a floor that no width-100 model can beat
print("\n4. small_p.small_p_loss(W̃_in, W̃_out, I − W_EᵀW_E, σ = 1) is the residual model's exact p → 0 L/p")
rng = np.random.default_rng(4)
params = residual.init_params(n, 200, d_mlp, rng, rng)
one_hot = np.vstack([np.eye(n), -np.eye(n)])                       # x = ±e_i: every one-active input, up to scale
error = residual.forward_literal(params, one_hot)[0] - data.make_labels(one_hot, "residual")
direct = np.sum(error ** 2) / (6 * n)                              # E[v² 1{v > 0}] = 1/6, i uniform
tilde = feature_basis_weights(params)
closed = small_p.small_p_loss(tilde["W_in"], tilde["W_out"], residual_mixing_matrix(params["W_E"]), 1.0)
check(abs(direct - closed) < 1e-10 * direct, f"the residual stream walked literally gives {direct:.6f}, the closed "
      f"form {closed:.6f}")
print("   the joint Eckart–Young floor (small_p.small_p_joint_lower_bound) against d, seed 0's W_E:")
floors = {}
for d in (100, 150, 200, 300, 1000, 10000):
    M = residual_mixing_matrix(data.random_embedding(n, d, data.random_streams(0)["matrix"]))
    floors[d] = small_p.small_p_joint_lower_bound(n, d_mlp, M, 1.0)
    print(f"   d = {d:5d}: floor {floors[d]:.4f} ({'above' if floors[d] > NAIVE else 'below'} 1/12)")
check(floors[100] > NAIVE, "at d = 100 no weights at all reach 1/12 as p → 0: the mixing is too strong")
check(floors[1000] < NAIVE, "at d = 1000 the floor leaves room below 1/12")

# %% 5. The width-sweep experiment at the test scale
print("\n5. experiments/width_sweep.py at the test scale (40-step trainings: the pipeline, not the science)")
TEST = make_scale("test")
module = EXPERIMENTS["width_sweep"]
start = time.perf_counter()
numbers = run_experiment("width_sweep", TEST, seeds=[0])
print(f"   {len(module.jobs(TEST, [0]))} trainings and the analysis in {time.perf_counter() - start:.1f} s")
for line in module.table(numbers):
    print("   " + line)
module.plot(numbers, os.path.join(folder, "width_sweep.png"))
for row in module.CHECKS:
    verdict = judge(row, numbers, full_scale=False)
    print(f"   [{verdict['verdict']}] {verdict['ours']}: {row['statement'][:100]}…")
exact = [judge(row, numbers, False)["verdict"] for row in module.CHECKS if not row["needs_paper_scale"]]
check(exact and set(exact) == {"✓"}, f"the {len(exact)} exact checks (no training length involved) pass")
check(numbers["residual"]["sweep"][0][0] is None, "1/√100 = 0.1 lies beyond the σ sweep's grid: reported as n/a")
check(os.path.getsize(os.path.join(folder, "width_sweep.png")) > 0, "the figure is written")

# %% 6. The two other experiments beyond the paper, at the test scale
print("\n6. experiments/best_from_m.py and experiments/phase_diagram.py at the test scale")
for name in ("best_from_m", "phase_diagram"):
    if name not in EXPERIMENTS:
        print(f"   {name}: not in this version of the package")
        continue
    other = EXPERIMENTS[name]
    start = time.perf_counter()
    result = run_experiment(name, TEST, seeds=[0])
    other.plot(result, os.path.join(folder, f"{name}.png"))
    verdicts = [judge(row, result, full_scale=False)["verdict"] for row in other.CHECKS]
    print(f"   {name}: {len(other.jobs(TEST, [0]))} trainings, {time.perf_counter() - start:.1f} s; "
          f"checks: {', '.join(verdicts)}")
    check(os.path.getsize(os.path.join(folder, f"{name}.png")) > 0, f"{name}.png is written")

# %% 7. (--full) the width sweep at the quick scale, as a command
if args.full:
    print("\n7. python -m cc_numpy width-sweep --scale quick (about a minute on two cores)")
    quick = os.path.join(folder, "quick")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cc_numpy", "width-sweep", "--scale", "quick", "--out", quick], check=True)
    print(f"   took {time.perf_counter() - start:.0f} s; the table:")
    with open(os.path.join(quick, "REPORT.md"), encoding="utf-8") as report:
        text = report.read()
    print(text[text.index("## Residual width sweep"):text.index("## Settings")])
print("\nChapter 15 done.")
