"""Chapter 06: training and evaluation (cc_numpy/core/train.py, cc_numpy/core/evaluate.py).

Run it whole:      python tutorial/06_training.py          (about five seconds: 1,000 steps per model)
                   python tutorial/06_training.py --full   (the paper's 10,000 steps, about a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/06_training.md beside it.
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
from cc_numpy.core import evaluate, loss, mlp, train  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 06: training and evaluation.")
parser.add_argument("--full", action="store_true", help="the paper's 10,000 steps and more evaluation samples")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures and checkpoints (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

steps = 10_000 if args.full else 1_000
eval_samples = 400_000 if args.full else 50_000
print(f"{steps} training steps per model, {eval_samples} evaluation samples per p; outputs in {args.out}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. A run is a config dict
print("\n1. train.make_config: the paper's settings (train.DEFAULT_CONFIG) with overrides, validated")
config = train.make_config(steps=steps)
print("  ", {k: config[k] for k in ("model", "task", "mixing", "sigma", "p", "steps", "batch_size", "lr", "dtype")})
check(train.make_config(model="residual")["task"] == "residual", "the residual model defaults to its own task")
for bad in ({"stpes": 10}, {"p": 0.0}, {"learn_sigma": True, "task": "clean"}):
    try:
        train.make_config(**bad)
    except (ValueError, TypeError) as error:
        print(f"   {bad} -> {type(error).__name__}: {error}")
    else:
        raise AssertionError(f"{bad} was accepted")

# %% 2. From a config to arrays: build_run, draw_batch, train_step
print("\n2. train.build_run, train.draw_batch and train.train_step: one step by hand")
config = train.make_config(mixing="symmetric", sigma=0.03, steps=steps, dtype="float64")
params, M, data_rng = train.build_run(config)
print(f"   params {{{', '.join(f'{k}: {v.shape}' for k, v in params.items())}}}, M {M.shape}")
params_again, M_again, _ = train.build_run(config)
check(np.array_equal(params["W_in"], params_again["W_in"]) and np.array_equal(M, M_again),
      "the same seed gives the same initial weights and M")
batch = train.draw_batch(config, M, data_rng, np.float64)
print(f"   batch: x {batch['x'].shape} (dense, all B samples), y_base {batch['y_base'].shape}, "
      f"mixed {batch['mixed'].shape}")
batch_loss, grads = train.train_step("mlp", params, batch, config["sigma"], learn_sigma=False)
y_hat, cache = mlp.forward(params, batch["x"])
by_hand_loss, d_y_hat = loss.mse_loss(y_hat, batch["y_base"] + 0.03 * batch["mixed"])
by_hand = mlp.backward(params, cache, d_y_hat)
check(np.isclose(batch_loss, by_hand_loss) and np.allclose(grads["W_in"], by_hand["W_in"]),
      "train_step = forward, labels y_base + |σ| M x, mse_loss, backward")

# %% 3. Train on clean labels and on mixed labels
print(f"\n3. train.train: {steps} steps of AdamW on clean labels and on mixed labels (symmetric M, σ = 0.03)")


def show_progress(step, total, running_loss_over_p, steps_per_second):
    """The progress callback: called every progress_every steps."""
    print(f"   step {step:>6d}/{total}  running L/p {running_loss_over_p:.4f}  ({steps_per_second:.0f} steps/s)")


results = {}
for name, overrides in (("clean", dict(task="clean")), ("mixed", dict(mixing="symmetric", sigma=0.03))):
    print(f"   -- {name}")
    results[name] = train.train(dict(overrides, steps=steps), progress=show_progress, progress_every=steps // 4)
    print(f"   trained in {results[name]['seconds']:.1f} s")

# %% 4. Evaluate: L/p with a standard error
print("\n4. evaluate.loss_over_p at the training p = 0.01, on the labels each model was trained on")
scores = {}
for name, result in results.items():
    params64 = {k: v.astype(np.float64) for k, v in result["params"].items()}
    scores[name] = evaluate.loss_over_p(params64, 0.01, np.random.default_rng(11), task=result["config"]["task"],
                                        M=result["M"], sigma=result["sigma"], n_samples=eval_samples)
    s = scores[name]
    print(f"   {name:>5s}: L/p = {s['loss_over_p']:.4f} ± {s['stderr']:.4f} ({s['n_samples']} samples); "
          f"naive {baselines.naive_loss_over_p():.4f}")
check(scores["mixed"]["loss_over_p"] + 3 * scores["mixed"]["stderr"] < baselines.naive_loss_over_p(),
      "with mixing the MLP beats the naive 1/12")
check(scores["clean"]["loss_over_p"] - 3 * scores["clean"]["stderr"] > scores["mixed"]["loss_over_p"],
      "on clean labels it does not do as well (chapter 11: in the sparse limit it cannot beat 1/12 at all)")

# %% 5. Sampling to a target standard error
print("\n5. target_stderr: keep drawing chunks until the standard error of L/p is small enough")
params64 = {k: v.astype(np.float64) for k, v in results["mixed"]["params"].items()}
for p in (0.001, 0.1):
    s = evaluate.loss_over_p(params64, p, np.random.default_rng(12), task="mixed", M=results["mixed"]["M"],
                             sigma=0.03, n_samples=10_000, target_stderr=0.002)
    print(f"   p = {p}: L/p = {s['loss_over_p']:.4f} ± {s['stderr']:.4f} after {s['n_samples']} samples")
    check(s["stderr"] <= 0.002, f"standard error at p = {p} reached the target")

# %% 6. L/p against p, and the training curves
print("\n6. evaluate.loss_over_p_curve over a log grid of p; figure with the training histories")
ps = np.logspace(-3, 0, 7)
curves = {name: evaluate.loss_over_p_curve({k: v.astype(np.float64) for k, v in r["params"].items()}, ps,
                                           np.random.default_rng(13), task=r["config"]["task"], M=r["M"],
                                           sigma=r["sigma"], n_samples=eval_samples // 4)
          for name, r in results.items()}
for name, curve in curves.items():
    print(f"   {name:>5s}: " + "  ".join(f"{p:.3g}: {v:.3f}" for p, v in zip(curve["p"], curve["loss_over_p"])))
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, result in results.items():
    running = np.convolve(result["history"], np.ones(50) / 50, mode="valid") / 0.01
    axes[0].plot(running, label=name)
    axes[1].errorbar(curves[name]["p"], curves[name]["loss_over_p"], yerr=curves[name]["stderr"], marker="o",
                     label=name)
for ax in axes:
    ax.axhline(1 / 12, color="k", ls="--", label="naive 1/12")
    ax.legend()
axes[0].set(xlabel="step", ylabel="training L/p (50-step mean)", ylim=(0.05, 0.2), title="training")
axes[1].set(xscale="log", yscale="log", xlabel="evaluation p", ylabel="L/p", title="trained at p = 0.01")
fig.tight_layout()
path = os.path.join(args.out, "06_training.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)

# %% 7. A learned σ
if args.full:
    print("\n7. learn_sigma=True: σ trained with the weights from σ = 0.01, from scratch (asymmetric M)")
    learned = train.train(dict(mixing="asymmetric", learn_sigma=True, steps=steps))
else:
    print("\n7. learn_sigma=True: σ trained with the weights from σ = 0.01, warm-started from the mixed model of"
          " step 3 (same seed, so the same symmetric M)")
    learned = train.train(dict(mixing="symmetric", learn_sigma=True, steps=300), init_params=results["mixed"]["params"])
history = learned["sigma_history"]
print("   σ along the run:", "  ".join(f"{history[i]:+.4f}" for i in np.linspace(0, len(history) - 1, 8).astype(int)))
print(f"   the labels use |σ| = {learned['sigma']:.4f} (the paper, from scratch: ≈ 0.025 asymmetric, ≈ 0.033 symmetric)")
check(learned["sigma"] > 0.015, "σ settled well above its start: a model that uses M wants some mixing")

# %% 8. Checkpoints: resuming gives the same weights, bit for bit
print("\n8. checkpoint_path: a run resumed from its checkpoint ends with exactly the same weights")
short = dict(steps=300, batch_size=512, mixing="symmetric", sigma=0.03)
path = os.path.join(args.out, "06_checkpoint.npz")
if os.path.exists(path):
    os.remove(path)
first = train.train(short, checkpoint_path=path, checkpoint_every=100)   # leaves the step-200 checkpoint
resumed = train.train(short, checkpoint_path=path, checkpoint_every=100)  # picks it up at step 200
print(f"   first run {first['steps_per_second']:.0f} steps/s; resumed run did the last 100 steps only")
check(all(np.array_equal(first["params"][k], resumed["params"][k]) for k in ("W_in", "W_out"))
      and np.array_equal(first["history"], resumed["history"]), "identical weights and loss history")
os.remove(path)
print("\nChapter 06 done.")
