"""Chapter 05: AdamW and the cosine schedule, as PyTorch runs them (cc_numpy/core/optim.py).

Run it whole:      python tutorial/05_adamw.py          (a second)
                   python tutorial/05_adamw.py --full   (the paper's 10,000-step schedule)
or cell by cell through the '# %%' markers in an editor. Read tutorial/05_adamw.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import math
import os
import tempfile

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy.core import optim  # noqa: E402
from _figures import save_figure  # noqa: E402  (tutorial/_figures.py)

parser = argparse.ArgumentParser(description="Chapter 05: AdamW and the cosine schedule.")
parser.add_argument("--full", action="store_true", help="the paper's T = 10,000 steps (default: T = 500)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for figures (default: %(default)s, outside the repository)")
parser.add_argument("--figures", default=None, metavar="DIR",
                    help="also write the chapter's small figures (dpi 80) into DIR, e.g. tutorial/figures")
args, _ = parser.parse_known_args()
os.makedirs(args.out, exist_ok=True)

T = 10_000 if args.full else 500
lr, weight_decay, beta1, beta2, eps = 3e-3, 0.01, 0.9, 0.999, 1e-8
print(f"T = {T} steps, lr = {lr}, λ = {weight_decay}, betas = ({beta1}, {beta2}), ε = {eps}")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


# %% 1. The cosine schedule
print("\n1. optim.cosine_lr(t, T, lr) = lr (1 + cos(π t / T)) / 2 for t = 0 … T − 1")
schedule = np.array([optim.cosine_lr(t, T, lr) for t in range(T)])
print(f"   lr_0 = {schedule[0]:.3g}, lr_(T/2) = {schedule[T // 2]:.3g}, lr_(T−1) = {schedule[-1]:.3g}")
check(schedule[0] == lr and np.isclose(schedule[T // 2], lr / 2), "starts at lr, halves at T/2 (no warm-up)")
check(0 < schedule[-1] < lr * math.pi ** 2 / (4 * T ** 2) * 1.01, "the last step is small but not zero: ≈ lr π²/(4T²)")
try:
    optim.cosine_lr(T, T, lr)
except ValueError as error:
    print("   t = T is refused:", error)

# %% 2. The state
print("\n2. optim.adamw_init: hyperparameters, a step counter and zero moments m, v per trained key")
rng = np.random.default_rng(0)
params = {"theta": rng.standard_normal((3, 4)), "fixed": np.ones(2)}
state = optim.adamw_init(params, ["theta"], lr=lr, weight_decay=weight_decay)
print("   state keys:", sorted(state), "; moments for", list(state["m"]))
check(state["step"] == 0 and not state["m"]["theta"].any() and "fixed" not in state["m"],
      "only the listed keys are optimised; m and v start at 0")

# %% 3. A reference implementation, written from the formulas, against optim.adamw_step
print("\n3. optim.adamw_step against a plain transcription of the formulas, on a random quadratic")
A = rng.standard_normal((6, 12))
b = rng.standard_normal(6)


def gradient(theta):
    """∇ of f(θ) = ½ ‖A θ − b‖² for θ of shape (3, 4), flattened into A's 12 columns."""
    return (A.T @ (A @ theta.reshape(-1) - b)).reshape(theta.shape)


theta0 = rng.standard_normal((3, 4))
ours = {"theta": theta0.copy()}
state = optim.adamw_init(ours, ["theta"], lr=lr, weight_decay=weight_decay)
theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
for t in range(T):
    lr_t = lr * (1 + math.cos(math.pi * t / T)) / 2                      # CosineAnnealingLR
    g = gradient(theta)
    theta = theta * (1 - lr_t * weight_decay)                            # decoupled decay first
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1))
    theta = theta - lr_t * m_hat / (np.sqrt(v_hat) + eps)                # ε after the bias correction
    optim.adamw_step(ours, {"theta": gradient(ours["theta"])}, state, optim.cosine_lr(t, T, lr))
difference = np.abs(ours["theta"] - theta).max()
print(f"   after {T} steps: max |θ_ours − θ_reference| = {difference:.1e}; state['step'] = {state['step']}")
check(difference < 1e-12, "optim.adamw_step follows the formulas step for step")
f0 = 0.5 * np.sum((A @ theta0.reshape(-1) - b) ** 2)
f1 = 0.5 * np.sum((A @ ours["theta"].reshape(-1) - b) ** 2)
print(f"   f(θ) went from {f0:.3f} to {f1:.3f}")
check(f1 < f0 / 2, "the quadratic went down")

# %% 4. The first step moves every coordinate by ≈ lr
print("\n4. Step 1: m̂ = g and v̂ = g², so the Adam part moves each coordinate by lr · sign(g)")
params = {"w": np.array([0.5, -2.0, 3.0])}
state = optim.adamw_init(params, ["w"], lr=lr, weight_decay=0.0)
optim.adamw_step(params, {"w": np.array([1e-4, -7.0, 1e3])}, state, lr)
print("   change:", params["w"] - np.array([0.5, -2.0, 3.0]))
check(np.allclose(params["w"] - np.array([0.5, -2.0, 3.0]), -lr * np.array([1, -1, 1]), rtol=1e-3),
      "gradients of size 1e-4, 7 and 1000 all give a step of size lr")

# %% 5. Weight decay is decoupled: with zero gradient only the decay acts
print("\n5. With g = 0 throughout, θ_T = θ_0 Π_t (1 − lr_t λ)")
params = {"w": np.array([1.0, -1.0])}
state = optim.adamw_init(params, ["w"], lr=lr, weight_decay=weight_decay)
for t in range(T):
    optim.adamw_step(params, {"w": np.zeros(2)}, state, optim.cosine_lr(t, T, lr))
expected = np.prod(1 - schedule * weight_decay)
print(f"   θ_T / θ_0 = {params['w'][0]:.8f}, Π (1 − lr_t λ) = {expected:.8f}, exp(−λ Σ lr_t) = "
      f"{math.exp(-weight_decay * schedule.sum()):.8f}")
check(np.allclose(params["w"], [expected, -expected], rtol=1e-12), "decay alone shrinks θ by Π (1 − lr_t λ)")

# %% 6. Figure: the schedule
print("\n6. Figure: the learning rate over the run")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(T), schedule)
ax.set(xlabel="step t", ylabel="lr_t", title=f"cosine schedule, T = {T}")
fig.tight_layout()
path = os.path.join(args.out, "05_adamw_schedule.png")
save_figure(fig, path, args.figures)               # and the chapter's small copy with --figures
print("   wrote", path)
print("\nChapter 05 done.")
