"""A training run as a plain dict: the paper's defaults, validation at the boundary, the run's arrays.

:func:`make_config` fills in the defaults of :data:`DEFAULT_CONFIG` and validates every
value once; :func:`build_run` turns a config into initial weights, the unscaled M and the
data stream (``data.random_streams``: the mixing matrix or embedding, the batches and the
initial weights each have their own stream, so the same seed gives the same arrays bit for
bit, and a σ sweep reuses one unscaled M). Both training engines (``train.py``'s plain loop
and ``cc_numpy/core/fast``) start here.
"""

import numpy as np

from . import data, mlp, residual
from .validate import (check_array, check_choice, check_dtype, check_enough_active, check_float, check_int,
                       check_probability)


MODELS = ("mlp", "residual")
ENGINES = ("fast", "plain")
MODEL_MODULES = {"mlp": mlp, "residual": residual}
WEIGHT_KEYS = ("W_E",) + mlp.PARAM_KEYS   # the arrays a run keeps: the trained W_in, W_out and the residual model's W_E

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
    "engine": "fast",         # 'fast' (batch statistics, cc_numpy/core/fast) or 'plain' (the dense teaching loop)
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


def set_initial_weights(config, params, init_params):
    """Put ``init_params`` (fine-tuning) into a fresh run's ``params``, checked against the run's shapes."""
    dtype = check_dtype(config["dtype"])
    for key, value in (init_params or {}).items():
        if key in params and np.shape(value) != params[key].shape:
            raise ValueError(f"init_params[{key!r}] has shape {np.shape(value)}, expected {params[key].shape}")
        params[key] = np.array(value, dtype=dtype)
    MODEL_MODULES[config["model"]].check_params(params)


def divergence_hint(config, fine_tuning):
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
