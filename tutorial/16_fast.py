"""Chapter 16: the fast engine — training from batch statistics, many models per pass (cc_numpy/core/fast).

Run it whole:      python tutorial/16_fast.py          (a few seconds)
                   python tutorial/16_fast.py --full   (time per step over 1,000 steps instead of 40)
or cell by cell through the '# %%' markers in an editor. Read tutorial/16_fast.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import os
import tempfile
import time

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.core import data, train  # noqa: E402
from cc_numpy.core.fast import train_batched  # noqa: E402
from cc_numpy.core.fast.batch import SharedBatch  # noqa: E402
from cc_numpy.core.fast.batched import ModelStack  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 16: the fast engine.")
parser.add_argument("--full", action="store_true", help="time 1,000 steps per engine (default: 40)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figure (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)
timed_steps = 1000 if args.full else 40


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# %% 1. One step from statistics: the same loss and gradients as the plain loop
print("\n1. The loss of ŷ = W_out a needs a only through aᵀa, yᵀa and ‖y‖²")
config = train.make_config(n=20, d_mlp=6, batch_size=300, p=0.05, dtype="float64", sigma=0.3)
params, M, data_rng = train.build_run(config)
fast_rng = np.random.default_rng()
fast_rng.bit_generator.state = data_rng.bit_generator.state     # the same draws for both
plain_batch = train.draw_batch(config, M, data_rng, np.float64)   # (B, n) dense
plain_loss, plain_grads = train.train_step("mlp", params, plain_batch, config["sigma"], learn_sigma=False)
stack = ModelStack([config], [M], [None])
shared = SharedBatch(data.sample_batch(300, 20, 0.05, fast_rng, np.float64), np.float64)
fast_loss, fast_grads = stack.loss_and_grads(shared, slice(0, 1))
print(f"   plain L = {plain_loss:.12f}, from statistics L = {fast_loss[0]:.12f}")
for key in ("W_in", "W_out"):
    print(f"   ∂L/∂{key}: relative difference {relative(fast_grads[key][0], plain_grads[key]):.1e}")
check(abs(fast_loss[0] - plain_loss) <= 1e-10 * plain_loss
      and max(relative(fast_grads[k][0], plain_grads[k]) for k in ("W_in", "W_out")) <= 1e-10,
      "the statistics give the plain loss and gradients to rounding")

# %% 2. Merging rays: one-feature samples on the same ray count as one
print("\n2. Samples with one active feature: one row per (feature, sign)")
rng = np.random.default_rng(0)
batch = data.sample_batch(2048, 100, 0.01, rng, np.float32)
merged = SharedBatch(batch, np.float32)
unmerged = SharedBatch(batch, np.float32, merge_rays=False)
print(f"   B = 2048 at p = 0.01: {unmerged.rows} non-empty rows, {merged.rows} after merging rays")
check(merged.rows < 0.7 * unmerged.rows, "about 43 % fewer rows for every product at p = 0.01")
check(np.allclose(merged.RQ, unmerged.RQ, rtol=1e-5, atol=1e-5) and np.isclose(merged.rr, unmerged.rr),
      "xᵀx, ReLU(x)ᵀx and ‖ReLU(x)‖² are unchanged")

# %% 3. Many models per pass, bit for bit the same as alone
print("\n3. train_batched: a σ sweep on one batch stream")
for p in (0.05, 0.1):                      # a sparse batch (statistics) and a dense one (the error)
    tiny = dict(n=8, d_mlp=4, steps=60, batch_size=128, p=p, seed=3)
    configs = [dict(tiny, sigma=s) for s in (0.0, 0.03, 0.1)]
    together = train_batched(configs)
    alone = train_batched([configs[1]])[0]
    check(all(np.array_equal(alone["params"][k], together[1]["params"][k]) for k in ("W_in", "W_out")),
          f"p = {p}: σ = 0.03 alone and among three models, the same float32 bits")
check(np.array_equal(train.train(configs[1])["params"]["W_out"], together[1]["params"]["W_out"]),
      "train() with the default engine='fast' is the batched trainer with K = 1")

# %% 4. Figure: time per step
print(f"\n4. Time per step at the paper's settings ({timed_steps} steps each)")
paper = dict(steps=timed_steps, sigma=0.03)
rows = []
for label, run in (("plain", lambda: train.train(dict(paper, engine="plain"))),
                   ("fast, K = 1", lambda: train.train(paper)),
                   ("fast, K = 8 (per model)",
                    lambda: train_batched([dict(paper, sigma=s) for s in np.linspace(0, 0.1, 8)]))):
    start = time.perf_counter()
    run()
    per_model = (time.perf_counter() - start) / timed_steps / (8 if "K = 8" in label else 1)
    rows.append((label, per_model * 1e3))
    print(f"   {label:>24s}: {per_model * 1e3:.2f} ms per step")
check(rows[1][1] < rows[0][1] and rows[2][1] < rows[1][1], "fast beats plain, and batching beats fast")
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1])
ax.set(xlabel="ms per step and model (one BLAS thread)", title="MLP, batch 2048, p = 0.01, float32")
fig.tight_layout()
path = os.path.join(args.out, "16_fast_time_per_step.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 16 done.")
