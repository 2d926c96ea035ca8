"""The training loop: sample → forward → loss → backward → AdamW, with history and checkpoints.

A run is described by a plain config dict (:func:`make_config` fills in the
paper's defaults and validates everything). The random streams come from the
seed (``data.random_streams``): the mixing matrix or embedding, the batches and
the initial weights each have their own, so the same seed gives the same arrays
bit for bit, and a σ sweep reuses one unscaled M.

Speed. A step at p = 0.01 touches about p·B·n = 2048 non-zero inputs, so the
batch is kept sparse (CSR, all-zero rows dropped); every product with x is a
sparse product; the residual model runs in the feature basis (``residual.py``);
AdamW updates in place.
"""

import json
import math
import os
import time

import numpy as np

from . import data, loss, mlp, optim, residual
from .runtime import keep_freed_memory, single_blas_thread
from .storage import load_npz, save_npz
from .validate import check_array, check_choice, check_dtype, check_float, check_int, check_probability

MODELS = ("mlp", "residual")
MODEL_MODULES = {"mlp": mlp, "residual": residual}

DEFAULT_CONFIG = {
    "model": "mlp",           # 'mlp' (simplified) or 'residual' (the CC model)
    "task": "mixed",          # 'residual', 'clean' or 'mixed'
    "mixing": "asymmetric",   # kind of M for the mixed task (data.MIXING_KINDS)
    "rank": None,             # rank for the low-rank kinds
    "sigma": 0.03,            # σ for the mixed task (ignored when learn_sigma)
    "learn_sigma": False,     # train σ jointly, starting at sigma_init, labels use |σ|
    "sigma_init": 0.01,
    "p": 0.01,                # feature probability
    "steps": 10_000,
    "batch_size": 2048,
    "lr": 3e-3,
    "weight_decay": 0.01,
    "seed": 0,
    "dtype": "float32",
    "n": 100,                 # features
    "d": 1000,                # residual stream width (residual model, embedding-like M)
    "d_mlp": 50,              # neurons
}


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


def make_config(**overrides):
    """The paper's settings with ``overrides`` applied, validated.

    For ``model='residual'`` the task defaults to 'residual'. Unknown keys are refused.
    """
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(DEFAULT_CONFIG)}")
    config = dict(DEFAULT_CONFIG)
    if overrides.get("model") == "residual" and "task" not in overrides:
        config["task"] = "residual"
    config.update(overrides)
    check_choice(config["model"], "model", MODELS)
    check_choice(config["task"], "task", data.TASKS)
    check_choice(config["mixing"], "mixing kind", data.MIXING_KINDS)
    for key in ("steps", "batch_size", "n", "d", "d_mlp"):
        config[key] = check_int(config[key], key)
    config["seed"] = check_int(config["seed"], "seed", minimum=0)
    if config["rank"] is not None:
        config["rank"] = check_int(config["rank"], "rank")
        if config["rank"] > config["n"]:
            raise ValueError(f"rank must be between 1 and n = {config['n']}, got {config['rank']}")
    config["p"] = check_probability(config["p"])
    config["sigma"] = check_float(config["sigma"], "sigma")
    config["sigma_init"] = check_float(config["sigma_init"], "sigma_init")
    config["lr"] = check_float(config["lr"], "lr", 0.0, np.inf, low_open=True)
    config["weight_decay"] = check_float(config["weight_decay"], "weight_decay", 0.0)
    if not isinstance(config["learn_sigma"], bool):
        raise TypeError(f"learn_sigma must be True or False, got {config['learn_sigma']!r}")
    if config["learn_sigma"] and config["task"] != "mixed":
        raise ValueError("learn_sigma needs task='mixed' (σ scales the mixing term of the labels)")
    if config["learn_sigma"] and config["sigma_init"] == 0:
        raise ValueError("sigma_init must be non-zero when σ is learned (∂|σ|/∂σ is 0 at σ = 0, so σ would never move)")
    check_dtype(config["dtype"])
    return config


def build_run(config, M=None):
    """Initial params, the unscaled M (or None) and the data generator for a config.

    Returns ``(params, M, data_rng)``; params holds W_E for the residual model and
    a 0-d ``sigma`` array when σ is learned.
    """
    dtype = check_dtype(config["dtype"])
    streams = data.random_streams(config["seed"])
    n, d_mlp = config["n"], config["d_mlp"]
    if config["model"] == "residual":
        params = residual.init_params(n, config["d"], d_mlp, streams["matrix"], streams["init"], dtype)
    else:
        params = mlp.init_params(n, d_mlp, streams["init"], dtype)
    if config["task"] == "mixed":
        if M is None:
            M = data.mixing_matrix(config["mixing"], n, streams["matrix"], d=config["d"], rank=config["rank"])
        M = check_array(np.asarray(M, dtype=np.float64), "M", shape=(n, n))
    else:
        M = None
    if config["learn_sigma"]:
        params["sigma"] = np.array(config["sigma_init"], dtype=dtype)
    return params, M, streams["data"]


def draw_batch(config, M, data_rng, dtype):
    """One sparse batch with the parts of its labels that do not depend on σ.

    Returns the ``data.sample_sparse_batch`` dict plus ``y_base`` (B_nz, n): the
    labels without the mixing term, and ``mixed`` (B_nz, n): M x (None unless the
    task is mixed). The labels are y = y_base + |σ| · mixed.
    """
    batch = data.sample_batch(config["batch_size"], config["n"], config["p"], data_rng, dtype)
    x = batch["x"]                                              # (B_nz, n), sparse below data.DENSE_FROM_P
    if config["task"] == "mixed":
        batch["y_base"] = data.make_labels(x, "clean")          # ReLU(x)
        batch["mixed"] = data.mixing_term(x, M)                 # (B_nz, n)   M x
    else:
        batch["y_base"] = data.make_labels(x, config["task"])   # x + ReLU(x), or ReLU(x)
        batch["mixed"] = None
    return batch


def train_step(model, params, batch, sigma, learn_sigma, gram=None):
    """One forward/backward pass on a sparse batch from :func:`draw_batch`.

    Parameters
    ----------
    model : 'mlp' or 'residual'.
    params : the model's params (and a 0-d 'sigma' when learned).
    batch : from :func:`draw_batch`.
    sigma : the mixing scale σ (the labels use |σ|; ignored without a mixing term).
    learn_sigma : also return ∂L/∂σ under 'sigma'.
    gram : G = W_Eᵀ W_E for the residual model.

    Returns
    -------
    loss : float, the mean over the whole batch (all-zero rows included).
    grads : dict with 'W_in', 'W_out' (and 'sigma').
    """
    x, mixed = batch["x"], batch["mixed"]                       # (B_nz, n) sparse, (B_nz, n) or None
    if model == "residual":
        y_hat, cache = residual.forward(params, x, gram=gram, check=False)
    else:
        y_hat, cache = mlp.forward(params, x, check=False)      # (B_nz, n)
    y = batch["y_base"] if mixed is None else batch["y_base"] + abs(sigma) * mixed  # y = ReLU(x) + |σ| M x
    batch_loss, d_y_hat = loss.mse_loss(y_hat, y, batch["batch_size"])
    grads = MODEL_MODULES[model].backward(params, cache, d_y_hat)
    if learn_sigma:
        grads["sigma"] = np.array(loss.sigma_grad(d_y_hat, mixed, sigma), dtype=y_hat.dtype)
    return batch_loss, grads


@single_blas_thread()
def train(config, M=None, init_params=None, progress=None, progress_every=200,
          checkpoint_path=None, checkpoint_every=1000):
    """Train one model.

    Parameters
    ----------
    config : dict from :func:`make_config`.
    M : optional (n, n) unscaled mixing matrix (default: drawn from the seed).
    init_params : optional starting weights (fine-tuning); a fresh AdamW and schedule are used.
    progress : optional callable ``progress(step, steps, running_loss_over_p, steps_per_second)``.
    checkpoint_path : optional ``.npz`` path; written atomically every ``checkpoint_every``
        steps, and if it already holds a checkpoint of the same config, training resumes from it.

    Returns
    -------
    dict with ``params`` (trained arrays, W_E included), ``M`` (unscaled, or None),
    ``sigma`` (float, the labels' scale |σ|), ``history`` ((steps,) loss per step),
    ``sigma_history`` (learned σ per step, or None), ``config``, ``seconds``, ``steps_per_second``.
    """
    config = make_config(**config)
    keep_freed_memory()                                         # ~40 % faster steps on glibc (runtime.py)
    dtype = check_dtype(config["dtype"])
    params, M, data_rng = build_run(config, M)
    if init_params is not None:
        for key, value in init_params.items():
            if key in params and np.shape(value) != params[key].shape:
                raise ValueError(f"init_params[{key!r}] has shape {np.shape(value)}, expected {params[key].shape}")
            params[key] = np.array(value, dtype=dtype)
    model_module = MODEL_MODULES[config["model"]]
    model_module.check_params(params)
    trained_keys = list(model_module.PARAM_KEYS) + (["sigma"] if config["learn_sigma"] else [])
    state = optim.adamw_init(params, trained_keys, lr=config["lr"], weight_decay=config["weight_decay"])
    steps, p = config["steps"], config["p"]
    history = np.zeros(steps)
    sigma_history = np.zeros(steps) if config["learn_sigma"] else None
    start_step = 0
    if checkpoint_path is not None:
        start_step = _resume(checkpoint_path, config, params, state, data_rng, history, sigma_history)
    M_train = None if M is None else M.astype(dtype)
    gram = residual.gram_matrix(params["W_E"]) if config["model"] == "residual" else None
    running, t0, last_time, last_step = None, time.perf_counter(), time.perf_counter(), start_step
    for step in range(start_step, steps):
        batch = draw_batch(config, M_train, data_rng, dtype)
        sigma = float(params["sigma"]) if config["learn_sigma"] else config["sigma"]
        with np.errstate(over="ignore", invalid="ignore"):     # a diverging run ends with the clear error below
            batch_loss, grads = train_step(config["model"], params, batch, sigma, config["learn_sigma"], gram)
        if not math.isfinite(batch_loss):
            raise NonFiniteLossError(
                f"the loss became {batch_loss} at step {step}: lower lr (now {config['lr']}) or check the inputs")
        history[step] = batch_loss
        if sigma_history is not None:
            sigma_history[step] = sigma
        optim.adamw_step(params, grads, state, optim.cosine_lr(step, steps, config["lr"]))
        running = batch_loss if running is None else 0.99 * running + 0.01 * batch_loss
        done = step + 1
        if progress is not None and (done % progress_every == 0 or done == steps):
            now = time.perf_counter()
            progress(done, steps, running / p, (done - last_step) / max(now - last_time, 1e-12))
            last_time, last_step = now, done
        if checkpoint_path is not None and (done % checkpoint_every == 0) and done < steps:
            _save_checkpoint(checkpoint_path, config, params, state, data_rng, history, sigma_history, done)
    seconds = time.perf_counter() - t0
    sigma = abs(float(params["sigma"])) if config["learn_sigma"] else (abs(config["sigma"]) if M is not None else 0.0)
    return {"params": params, "M": M, "sigma": sigma, "history": history, "sigma_history": sigma_history,
            "config": config, "seconds": seconds,
            "steps_per_second": (steps - start_step) / max(seconds, 1e-12)}


def _save_checkpoint(path, config, params, state, data_rng, history, sigma_history, step):
    arrays = {f"param_{k}": v for k, v in params.items()}
    arrays.update({f"m_{k}": v for k, v in state["m"].items()})
    arrays.update({f"v_{k}": v for k, v in state["v"].items()})
    arrays.update(step=step, history=history, config_json=json.dumps(config, sort_keys=True),
                  rng_state=json.dumps(data_rng.bit_generator.state))
    if sigma_history is not None:
        arrays["sigma_history"] = sigma_history
    save_npz(path, arrays)


def _resume(path, config, params, state, data_rng, history, sigma_history):
    """Load a checkpoint of the same config into the given arrays; return the step to start at."""
    if not os.path.exists(path):
        return 0
    saved = load_npz(path, required=("step", "history", "config_json", "rng_state"))
    if json.loads(str(saved["config_json"])) != json.loads(json.dumps(config, sort_keys=True)):
        raise ValueError(f"checkpoint {path} belongs to another config; remove it or choose another path")
    for key in params:
        params[key][...] = saved[f"param_{key}"]
    for key in state["m"]:
        state["m"][key][...] = saved[f"m_{key}"]
        state["v"][key][...] = saved[f"v_{key}"]
    step = int(saved["step"])
    state["step"] = step
    history[:] = saved["history"]
    if sigma_history is not None:
        sigma_history[:] = saved["sigma_history"]
    data_rng.bit_generator.state = json.loads(str(saved["rng_state"]))
    return step
