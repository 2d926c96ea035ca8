"""A trained run on disk: ``weights.npz``, ``metrics.json`` and ``history.npz``.

weights.npz   W_in, W_out (+ W_E for the residual model); for the mixed task the
              unscaled M and the scalar sigma, so that the labels are
              y = ReLU(x) + sigma · M x  (y_o = ReLU(x_o) + sigma Σ_i M_oi x_i).
metrics.json  the config, the final running loss, timings, and any evaluation.
history.npz   loss (steps,) per training step; sigma (steps,) when σ was learned.

All three are written atomically (``storage.py``).
"""

import os

import numpy as np

from .config import WEIGHT_KEYS
from .evaluate import check_model_params
from .data import TASKS
from .storage import CorruptFileError, load_json, load_npz, save_json, save_npz, stored_array


def save_run(out_dir, params, M=None, sigma=0.0, metrics=None, history=None, sigma_history=None):
    """Write a run's files into ``out_dir`` (created if needed); return the weights path."""
    weights = {k: v for k, v in params.items() if k in WEIGHT_KEYS}
    if M is not None:
        weights["M"] = M
        weights["sigma"] = np.array(float(sigma))
    path = os.path.join(out_dir, "weights.npz")
    save_npz(path, weights)
    if history is not None:
        arrays = {"loss": history}
        if sigma_history is not None:
            arrays["sigma"] = sigma_history
        save_npz(os.path.join(out_dir, "history.npz"), arrays)
    save_json(os.path.join(out_dir, "metrics.json"), metrics or {})
    return path


def load_run(path):
    """Read a run from its folder or its weights.npz, checking every array and the metrics.

    Returns ``(params, M, sigma, metrics)``: params as float64 arrays, M (or None),
    sigma (float, 0 when there is no M), metrics (dict, {} when metrics.json is absent;
    ``metrics["config"]["task"]`` is always set). A damaged file raises CorruptFileError
    naming the file and the key.
    """
    path = os.fspath(path)
    weights_path = os.path.join(path, "weights.npz") if os.path.isdir(path) else path
    arrays = load_npz(weights_path, required=("W_in", "W_out"))
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
    metrics_path = os.path.join(os.path.dirname(weights_path), "metrics.json")
    metrics = load_json(metrics_path, expect=dict) if os.path.exists(metrics_path) else {}
    config = metrics.setdefault("config", {})
    if not isinstance(config, dict):
        raise CorruptFileError(f"{metrics_path}: 'config' must be a JSON object, got {type(config).__name__}")
    task = config.setdefault("task", "mixed" if M is not None else "clean")
    if task not in TASKS:
        raise CorruptFileError(f"{metrics_path}: config 'task' must be one of {', '.join(TASKS)}; got {task!r}")
    if task == "mixed" and M is None:
        raise CorruptFileError(f"{metrics_path} says the task is 'mixed' but {weights_path} holds no M and sigma")
    return params, M, sigma, metrics
