"""The training loop: sample → forward → loss → backward → AdamW, with history and checkpoints.

A run is described by a plain config dict (:func:`make_config` fills in the
paper's defaults and validates everything). The random streams come from the
seed (``data.random_streams``): the mixing matrix or embedding, the batches and
the initial weights each have their own, so the same seed gives the same arrays
bit for bit, and a σ sweep reuses one unscaled M.

Two engines run the same training. ``engine='plain'`` is the loop below: a dense
(B, n) batch, forward → loss → backward → AdamW, the teaching code. ``engine='fast'``
(the default) computes the same loss and gradients from batch statistics without
ever forming the (B, n) output (``cc_numpy/fast``); it is the K = 1 case of the
batched trainer ``fast.batched.train_batched``, and ``tests/test_fast.py`` proves
the two engines agree.
"""

import json
import math
import os
import time

import numpy as np

from . import data, loss, mlp, optim, residual
from .runtime import keep_freed_memory, single_blas_thread
from .storage import CorruptFileError, load_npz, save_npz, stored_array
from .validate import (check_array, check_choice, check_dtype, check_enough_active, check_float, check_int,
                       check_probability)

MODELS = ("mlp", "residual")
ENGINES = ("fast", "plain")
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
    "embedding": "gaussian",  # W_E: 'gaussian' (unit-norm columns) or 'orthonormal' (QR, M = 0; needs d ≥ n)
    "d_mlp": 50,              # neurons
    "engine": "fast",         # 'fast' (batch statistics, cc_numpy/fast) or 'plain' (the dense teaching loop)
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
    check_choice(config["engine"], "engine", ENGINES)
    check_choice(config["task"], "task", data.TASKS)
    check_choice(config["mixing"], "mixing kind", data.MIXING_KINDS)
    check_choice(config["embedding"], "embedding", data.EMBEDDINGS)
    for key in ("steps", "batch_size", "n", "d", "d_mlp"):
        config[key] = check_int(config[key], key)
    config["seed"] = check_int(config["seed"], "seed", minimum=0)
    if config["rank"] is not None:
        config["rank"] = check_int(config["rank"], "rank")
        if config["rank"] > config["n"]:
            raise ValueError(f"rank must be between 1 and n = {config['n']}, got {config['rank']}")
    if config["embedding"] != "gaussian":
        if config["model"] != "residual" and not (config["task"] == "mixed" and config["mixing"].startswith("embedding")):
            raise ValueError(f"embedding={config['embedding']!r} applies to the residual model and to the embedding "
                             "mixing kinds only (nothing else draws a W_E)")
        if config["d"] < config["n"]:
            raise ValueError(f"embedding='orthonormal' needs d ≥ n ({config['n']} orthonormal columns in R^d), "
                             f"got d = {config['d']}")
    config["p"] = check_probability(config["p"])
    check_enough_active(config["p"], config["batch_size"] * config["n"], what="a batch of batch_size × n entries")
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
        params = residual.init_params(n, config["d"], d_mlp, streams["matrix"], streams["init"], dtype,
                                      embedding=config["embedding"])
    else:
        params = mlp.init_params(n, d_mlp, streams["init"], dtype)
    if config["task"] == "mixed":
        if M is None:
            M = data.mixing_matrix(config["mixing"], n, streams["matrix"], d=config["d"], rank=config["rank"],
                                   embedding=config["embedding"])
        M = check_array(np.asarray(M, dtype=np.float64), "M", shape=(n, n))
    else:
        M = None
    if config["learn_sigma"]:
        params["sigma"] = np.array(config["sigma_init"], dtype=dtype)
    return params, M, streams["data"]


def draw_batch(config, M, data_rng, dtype):
    """One dense batch and its labels, split as y = y_base + |σ| · mixed.

    Returns ``{"x": (B, n), "y_base": (B, n), "mixed": (B, n) M x or None}``: y_base is
    ReLU(x) for the mixed task (else the task's labels), mixed is None unless the task is mixed.
    """
    x = data.sample_inputs(config["batch_size"], config["n"], config["p"], data_rng, dtype)   # (B, n)
    if config["task"] == "mixed":
        return {"x": x, "y_base": data.make_labels(x, "clean"), "mixed": data.mixing_term(x, M)}
    return {"x": x, "y_base": data.make_labels(x, config["task"]), "mixed": None}


def train_step(model, params, batch, sigma, learn_sigma, gram=None):
    """Forward → loss → backward on a batch from :func:`draw_batch`; returns (loss, grads).

    ``sigma`` is the mixing scale (the labels use |σ|); with ``learn_sigma`` the grads also
    hold ∂L/∂σ under 'sigma'. ``gram`` is G = W_Eᵀ W_E for the residual model.
    """
    x, mixed = batch["x"], batch["mixed"]                       # (B, n), (B, n) or None
    if model == "residual":
        y_hat, cache = residual.forward(params, x, gram=gram)   # (B, n)
    else:
        y_hat, cache = mlp.forward(params, x)                   # (B, n)
    y = batch["y_base"] if mixed is None else batch["y_base"] + abs(sigma) * mixed  # y = ReLU(x) + |σ| M x
    batch_loss, d_y_hat = loss.mse_loss(y_hat, y)
    grads = MODEL_MODULES[model].backward(params, cache, d_y_hat)
    if learn_sigma:
        grads["sigma"] = np.array(loss.sigma_grad(d_y_hat, mixed, sigma), dtype=y_hat.dtype)
    return batch_loss, grads


def set_initial_weights(config, params, init_params):
    """Put ``init_params`` (fine-tuning) into a fresh run's ``params``, checked against the run's shapes."""
    dtype = check_dtype(config["dtype"])
    for key, value in (init_params or {}).items():
        if key in params and np.shape(value) != params[key].shape:
            raise ValueError(f"init_params[{key!r}] has shape {np.shape(value)}, expected {params[key].shape}")
        params[key] = np.array(value, dtype=dtype)
    MODEL_MODULES[config["model"]].check_params(params)


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
    if config["engine"] == "fast":                              # the batched trainer with K = 1
        from ..fast.batched import train_batched

        def report(done, steps, running, rate):
            progress(done, steps, float(running[0]), rate)

        return train_batched([config], [M], [init_params], progress=None if progress is None else report,
                             progress_every=progress_every, checkpoint_path=checkpoint_path,
                             checkpoint_every=checkpoint_every)[0]
    keep_freed_memory()                                         # ~40 % faster steps on glibc (runtime.py)
    dtype = check_dtype(config["dtype"])
    params, M, data_rng = build_run(config, M)
    set_initial_weights(config, params, init_params)
    trained_keys = list(MODEL_MODULES[config["model"]].PARAM_KEYS) + (["sigma"] if config["learn_sigma"] else [])
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
            raise NonFiniteLossError(f"training diverged: the loss became {batch_loss} at step {step}; "
                                     + _divergence_hint(config, init_params is not None))
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


def _divergence_hint(config, fine_tuning):
    """Name the settings that plausibly made the loss overflow (not lr alone)."""
    suspects = []
    sigma = config["sigma_init"] if config["learn_sigma"] else config["sigma"]
    sigma_name = "sigma_init" if config["learn_sigma"] else "sigma"
    if config["task"] == "mixed" and abs(sigma) > 10:
        suspects.append(f"{sigma_name} = {sigma:g} (labels of size |σ|·‖M x‖)")
    if config["lr"] * config["weight_decay"] >= 1:
        suspects.append(f"weight_decay = {config['weight_decay']:g} (lr · weight_decay = "
                        f"{config['lr'] * config['weight_decay']:g} ≥ 1 makes every step overshoot)")
    if config["lr"] > 0.1:
        suspects.append(f"lr = {config['lr']:g}")
    if fine_tuning:
        suspects.append("the starting weights")
    if not suspects:
        return (f"lower lr (now {config['lr']:g}), weight_decay (now {config['weight_decay']:g}) or "
                f"|{sigma_name}| (now {abs(sigma):g})")
    return "too large: " + "; ".join(suspects)


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
    """Load a checkpoint of the same config into the given arrays; return the step to start at.

    Every array is checked against the run (keys, shapes, finite values, 0 ≤ step < steps),
    so a damaged checkpoint raises CorruptFileError naming the file and the key.
    """
    if not os.path.exists(path):
        return 0
    saved = load_npz(path, required=("step", "history", "config_json", "rng_state"))
    try:
        same = json.loads(str(saved["config_json"])) == json.loads(json.dumps(config, sort_keys=True))
        rng_state = json.loads(str(saved["rng_state"]))
    except ValueError as error:
        raise CorruptFileError(f"{path}: 'config_json' and 'rng_state' must hold JSON ({error})") from None
    if not same:
        raise ValueError(f"checkpoint {path} belongs to another config; remove it or choose another path")
    step = stored_array(saved, "step", path, shape=())
    if step != int(step) or not 0 <= step < config["steps"]:
        raise CorruptFileError(f"{path}: 'step' must be a whole number in [0, {config['steps']}), got {step:g}")
    loaded = {f"param_{k}": v for k, v in params.items()}
    loaded.update({f"{kind}_{k}": state[kind][k] for kind in ("m", "v") for k in state["m"]})
    loaded["history"] = history
    if sigma_history is not None:
        loaded["sigma_history"] = sigma_history
    values = {key: stored_array(saved, key, path, shape=target.shape) for key, target in loaded.items()}
    try:
        data_rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptFileError(f"{path}: 'rng_state' is not a state of this random generator ({error})") from None
    for key, target in loaded.items():
        target[...] = values[key]
    state["step"] = int(step)
    return int(step)
