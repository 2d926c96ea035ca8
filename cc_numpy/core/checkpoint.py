"""Checkpoints: a training's whole state (weights, AdamW moments, data stream, history) in one .npz.

Written atomically every ``checkpoint_every`` steps; a rerun of the same config resumes
from it bit for bit (both engines use these two functions).
"""

import json
import os

from .storage import CorruptFileError, load_npz, save_npz, stored_array


def save_checkpoint(path, config, params, state, data_rng, history, sigma_history, step):
    arrays = {f"param_{k}": v for k, v in params.items()}
    arrays.update({f"m_{k}": v for k, v in state["m"].items()})
    arrays.update({f"v_{k}": v for k, v in state["v"].items()})
    arrays.update(step=step, history=history, config_json=json.dumps(config, sort_keys=True),
                  rng_state=json.dumps(data_rng.bit_generator.state))
    if sigma_history is not None:
        arrays["sigma_history"] = sigma_history
    save_npz(path, arrays)


def resume(path, config, params, state, data_rng, history, sigma_history):
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
