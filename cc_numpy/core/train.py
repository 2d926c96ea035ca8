"""The training loop: sample → forward → loss → backward → AdamW, with history and checkpoints.

A run is described by a plain config dict (:func:`make_config` fills in the
paper's defaults and validates everything). The random streams come from the
seed (``data.random_streams``): the mixing matrix or embedding, the batches and
the initial weights each have their own, so the same seed gives the same arrays
bit for bit, and a σ sweep reuses one unscaled M.

Two engines run the same training. ``engine='plain'`` is the loop below: a dense
(B, n) batch, forward → loss → backward → AdamW, the teaching code. ``engine='fast'``
(the default) computes the same loss and gradients from batch statistics without
ever forming the (B, n) output (``cc_numpy/core/fast``); it is the K = 1 case of the
batched trainer ``fast.batched.train_batched``, and ``tests/test_fast.py`` proves
the two engines agree.
"""

import math
import time

import numpy as np

from . import data, loss, mlp, optim, residual
from .checkpoint import resume, save_checkpoint
from .fast.batched import train_batched
from .config import (DEFAULT_CONFIG, ENGINES, MODEL_MODULES, MODELS, NonFiniteLossError,  # noqa: F401 (public here)
                     build_run, divergence_hint, make_config, set_initial_weights)
from .runtime import keep_freed_memory, single_blas_thread
from .validate import check_dtype


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

    ``sigma`` is the mixing strength (the labels use |σ|); with ``learn_sigma`` the grads also
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
        start_step = resume(checkpoint_path, config, params, state, data_rng, history, sigma_history)
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
                                     + divergence_hint(config, init_params is not None))
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
            save_checkpoint(checkpoint_path, config, params, state, data_rng, history, sigma_history, done)
    seconds = time.perf_counter() - t0
    sigma = abs(float(params["sigma"])) if config["learn_sigma"] else (abs(config["sigma"]) if M is not None else 0.0)
    return {"params": params, "M": M, "sigma": sigma, "history": history, "sigma_history": sigma_history,
            "config": config, "seconds": seconds,
            "steps_per_second": (steps - start_step) / max(seconds, 1e-12)}
