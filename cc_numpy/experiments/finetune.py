"""Fine-tuning with the mixing matrix removed (the paper's Fig. 6).

A simplified MLP is trained at p = 0.01 on asymmetric M with σ = 0.025, then
trained on from those weights with M = 0 (clean labels), with a fresh AdamW and
learning-rate schedule for as many steps again. The figure is the training
trace across the switch; the numbers are L/p at p = 0.01 of the first model on
its own (mixed) labels, of the same weights on clean labels (scored here, no
extra training), and of the fine-tuned model on clean labels.
"""

import numpy as np

from ..core.data import random_streams
from ..core.evaluate import loss_over_p
from ..pipeline import plotting
from ..pipeline.claims import NAIVE, PAPER_ID, at_most, check, claim, reading, within
from . import at_p, job

ORDER = 40
HELP = "train on asymmetric M (σ = 0.025), then fine-tune with M = 0: the training trace and L/p before and after"
TRAIN_P = 0.01
SIGMA = 0.025


def mixed_job(scale, seed):
    """The first phase: asymmetric M, σ = 0.025, p = 0.01."""
    return job(scale, seed, [TRAIN_P], p=TRAIN_P, task="mixed", mixing="asymmetric", sigma=SIGMA)


def finetuned_job(scale, seed):
    """The second phase: the first phase's weights trained on with M = 0 (fresh AdamW and schedule)."""
    return job(scale, seed, [TRAIN_P], init_from=mixed_job(scale, seed), p=TRAIN_P, task="clean")


def jobs(scale, seeds):
    return [j for seed in seeds for j in (mixed_job(scale, seed), finetuned_job(scale, seed))]   # parent trained once


def _windowed(values, window):
    """Means of consecutive windows of ``window`` values (a trailing partial window is dropped)."""
    usable = len(values) // window * window
    return np.asarray(values[:usable], dtype=float).reshape(-1, window).mean(axis=1)


def _on_clean(result, scale, seed):
    """L/p at p = 0.01 of a trained MLP's weights scored on clean labels (the seed's "eval" stream)."""
    params = {k: np.asarray(result[k], dtype=np.float64) for k in ("W_in", "W_out")}
    return loss_over_p(params, TRAIN_P, random_streams(seed)["eval"], task="clean", n_samples=scale["min_samples"],
                       target_stderr=scale["target_stderr"], max_samples=scale["max_samples"])


def numbers(results, scale, seeds):
    window = max(1, scale["steps"] // 100)
    out = {"sigma": SIGMA, "p": TRAIN_P, "naive": NAIVE, "window": window, "switch_step": scale["steps"],
           "seeds": seeds, "trace_loss_over_p": [], "mixed_phase_loss_over_p": [], "mixed_phase_stderr": [],
           "mixed_weights_on_clean_loss_over_p": [], "mixed_weights_on_clean_stderr": [],
           "finetuned_loss_over_p": [], "finetuned_stderr": []}
    for seed in seeds:
        first, second = results[mixed_job(scale, seed)], results[finetuned_job(scale, seed)]
        trace = np.concatenate([_windowed(first["history"], window), _windowed(second["history"], window)])
        out["trace_loss_over_p"].append((trace / TRAIN_P).tolist())                       # (seeds, windows)
        for key, (value, stderr) in (("mixed_phase", at_p(first, TRAIN_P)), ("finetuned", at_p(second, TRAIN_P))):
            out[f"{key}_loss_over_p"].append(value)
            out[f"{key}_stderr"].append(stderr)
        clean = _on_clean(first, scale, seed)
        out["mixed_weights_on_clean_loss_over_p"].append(float(clean["loss_over_p"]))
        out["mixed_weights_on_clean_stderr"].append(float(clean["stderr"]))
    out["step"] = (np.arange(len(out["trace_loss_over_p"][0])) * window + window).tolist()
    return out


def plot(numbers, path):
    with plotting.figure(path) as axis:
        plotting.mean_band(axis, numbers["step"], numbers["trace_loss_over_p"], "training L/p (window mean)",
                           marker=None)
        axis.axvline(numbers["switch_step"], color="k", linewidth=0.8, label="M removed (fresh AdamW)")
        plotting.naive_line(axis, numbers["naive"])
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("L/p")
        axis.set_title(f"Fine-tuning with M = 0 after asymmetric M, σ = {numbers['sigma']} "
                       f"({len(numbers['seeds'])} seeds; band: min–max)", fontsize=10)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)


def _read(key):
    return lambda n: reading(n[f"{key}_loss_over_p"], mc=n[f"{key}_stderr"])


CLAIMS = [
    claim("fine-tuning with M = 0 after training on asymmetric M (σ = 0.025): the gain disappears, the loss "
          "climbs back to about the naive level (L/p at p = 0.01 of the fine-tuned model)", "≈ 0.083 (naive)",
          f"{PAPER_ID}, Fig. 6 (fine-tuning with M removed)", _read("finetuned"), within(NAIVE)),
]
CHECKS = [
    check("before fine-tuning, the mixed-phase model beats naive on its own mixed labels (there is a gain to "
          "lose; L/p at p = 0.01)", "< 1/12", _read("mixed_phase"), at_most(NAIVE), needs_paper_scale=True),
]
