"""A trained run on disk: ``weights.npz``, ``metrics.json`` and ``history.npz``.

weights.npz   W_in, W_out (+ W_E for the residual model); for the mixed task the
              unscaled M and the scalar sigma, so that the labels are
              y = ReLU(x) + sigma · M x  (y_o = ReLU(x_o) + sigma Σ_i M_oi x_i).
metrics.json  the config, the final running loss, timings, and any evaluation.
history.npz   loss (steps,) per training step; sigma (steps,) when σ was learned.

All three are written atomically (``storage.py``). ``save_run`` writes the weights first (a
failed write leaves an earlier run whole), then removes an earlier run's metrics.json, and writes
metrics.json last with the SHA-256 of exactly the weights' bytes it wrote; ``load_run`` hashes
exactly the bytes it reads the arrays from and refuses a metrics.json written for other weights.
So files of two runs are never read as one, even when two saves or a save and a load overlap.
"""

import os

import numpy as np

from .config import WEIGHT_KEYS
from .evaluate import check_model_params
from .data import TASKS
from .storage import CorruptFileError, load_json, load_npz_and_sha256, save_json, save_npz, stored_array


RUN_FILES = ("weights.npz", "metrics.json", "history.npz", "checkpoint.npz")   # what a run folder may hold


def run_folder(path):
    """The folder of a run given as its folder or as its weights file."""
    path = os.fspath(path)
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def save_run(out_dir, params, M=None, sigma=0.0, metrics=None, history=None, sigma_history=None):
    """Write a run's files into ``out_dir`` (created if needed); return the weights path."""
    weights = {k: v for k, v in params.items() if k in WEIGHT_KEYS}
    if M is not None:
        weights["M"] = M
        weights["sigma"] = np.array(float(sigma))
    path = os.path.join(out_dir, "weights.npz")
    weights_sha256 = save_npz(path, weights)                    # a failed write leaves an earlier run whole
    metrics_path = os.path.join(out_dir, "metrics.json")
    if os.path.isfile(metrics_path) or os.path.islink(metrics_path):
        os.remove(metrics_path)                                 # an earlier run's: never beside these weights
    history_path = os.path.join(out_dir, "history.npz")
    if history is not None:
        arrays = {"loss": history}
        if sigma_history is not None:
            arrays["sigma"] = sigma_history
        save_npz(history_path, arrays)
    elif os.path.isfile(history_path) or os.path.islink(history_path):
        os.remove(history_path)                                 # an earlier run's: it must not outlive its weights
    save_json(metrics_path, dict(metrics or {}, weights_sha256=weights_sha256))   # the bytes just written
    return path


def load_run(path):
    """Read a run from its folder or its weights.npz, checking every array and the metrics.

    Returns ``(params, M, sigma, metrics)``: params as float64 arrays, M (or None),
    sigma (float, 0 when there is no M), metrics (dict, {} when metrics.json is absent;
    ``metrics["config"]["task"]`` is always set: without one, the model's usual task, "mixed" with
    an M, "residual" with a W_E, else "clean"). A damaged file, or a metrics.json written for other
    weights, raises CorruptFileError naming the file.
    """
    path = os.fspath(path)
    weights_path = os.path.join(path, "weights.npz") if os.path.isdir(path) else path
    arrays, weights_sha256 = load_npz_and_sha256(weights_path, required=("W_in", "W_out"))
    params = {k: stored_array(arrays, k, weights_path, shape=(None, None))
              for k in WEIGHT_KEYS if k in arrays}
    try:
        n = check_model_params(params)
    except ValueError as error:
        raise CorruptFileError(f"{weights_path} holds inconsistent weights: {error}") from None
    M, sigma = None, 0.0
    if "M" in arrays or "sigma" in arrays:
        M = stored_array(arrays, "M", weights_path, shape=(n, n))
        sigma = float(stored_array(arrays, "sigma", weights_path, shape=()))
    metrics_path = os.path.join(run_folder(path), "metrics.json")
    metrics = load_json(metrics_path, expect=dict) if os.path.exists(metrics_path) else {}
    recorded = metrics.get("weights_sha256")
    if recorded is not None and recorded != weights_sha256:
        raise CorruptFileError(f"{metrics_path} was written for other weights than {weights_path} (a save that "
                               "was interrupted, or files copied from two runs); rerun the training")
    config = metrics.setdefault("config", {})
    if not isinstance(config, dict):
        raise CorruptFileError(f"{metrics_path}: 'config' must be a JSON object, got {type(config).__name__}")
    guess = "mixed" if M is not None else "residual" if "W_E" in params else "clean"   # the model's usual task
    task = config.setdefault("task", guess)
    if task not in TASKS:
        raise CorruptFileError(f"{metrics_path}: config 'task' must be one of {', '.join(TASKS)}; got {task!r}")
    if task == "mixed" and M is None:
        raise CorruptFileError(f"{metrics_path} says the task is 'mixed' but {weights_path} holds no M and sigma")
    return params, M, sigma, metrics
