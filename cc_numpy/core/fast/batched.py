"""Train K models on one shared batch stream: weights stacked on a leading K axis, one AdamW.

The models may differ in σ, in the mixing matrix, in the task, in whether σ is learned and
in their initial weights (fine-tuning); they must agree on everything that decides the
batches, the shapes and the schedule (:func:`shared_keys`). Each step draws one batch,
computes what depends on the batch alone once (``batch.SharedBatch``), then every model's
loss and gradients (``statistics.py``: from statistics for a sparse batch, from the error for a
dense one), in chunks of a few models so that the working set stays small, and one AdamW
update of the stacked weights.

A model's weights are bit for bit the same whether it is trained alone (K = 1, which is
what ``train.train`` runs with ``engine='fast'``) or next to others, so results can be
cached per model.
"""

import time

import numpy as np

from .. import mlp, optim
from ..runtime import keep_freed_memory, single_blas_thread
from ..checkpoint import resume, save_checkpoint
from ..config import WEIGHT_KEYS, NonFiniteLossError, build_run, divergence_hint, make_config, set_initial_weights
from . import adamw
from .statistics import label_matrix, label_stacks, mlp_loss_and_grads
from .stream import BatchStream

SHARED_KEYS = ("model", "seed", "p", "batch_size", "steps", "n", "d", "d_mlp", "dtype", "lr", "weight_decay")
CHUNK = 8                 # models per pass over a sparse batch: (B_nz, CHUNK · d_mlp) arrays stay in cache
DENSE_CHUNK = 2           # models per pass over a dense batch (each forms a (B, n) error; 8 was 6 % slower)


def shared_keys(config):
    """The keys of :data:`SHARED_KEYS` that models trained with ``config`` must agree on.

    The MLP has no residual stream: its width d only shapes the mixing matrix of an embedding's
    labels, and the models of a stack may have different mixing matrices.
    """
    return SHARED_KEYS if config["model"] == "residual" else tuple(key for key in SHARED_KEYS if key != "d")


def check_shareable(configs):
    """Raise ValueError unless every config can share the first one's batch stream and schedule."""
    if len(configs) == 0:
        raise ValueError("train_batched needs at least one config")
    first = configs[0]
    keys = shared_keys(first)
    for index, config in enumerate(configs[1:], start=1):
        differing = [key for key in keys if config[key] != first[key]]
        if differing:
            raise ValueError(f"configs[{index}] cannot share a batch stream with configs[0]: they differ in "
                             f"{', '.join(differing)}; models trained together must agree on "
                             f"{', '.join(keys)}")


class ModelStack:
    """K models as stacked arrays (``params``), their label matrices, their optimiser state and their
    batch stream (``stream.BatchStream``; ``checkpoint_every``: the steps at which its blocks must end)."""

    def __init__(self, configs, M_list, init_params_list, checkpoint_every=None):
        self.configs = configs
        first = configs[0]
        self.model, self.dtype = first["model"], np.dtype(first["dtype"]).type
        params_list, self.Ms = [], []
        for config, M, init in zip(configs, M_list, init_params_list):
            params, M, self.data_rng = build_run(config, M)                   # every data_rng is the same stream
            set_initial_weights(config, params, init)
            params_list.append(params)
            self.Ms.append(M)
        keys = WEIGHT_KEYS if self.model == "residual" else mlp.PARAM_KEYS
        self.params = {key: np.stack([p[key] for p in params_list]) for key in keys}
        self.learned = np.array([c["learn_sigma"] for c in configs])
        self.params["sigma"] = np.array([p["sigma"] if c["learn_sigma"] else fixed_sigma(c, M)
                                         for p, c, M in zip(params_list, configs, self.Ms)], dtype=self.dtype)
        self.trained = ["W_in", "W_out"] + (["sigma"] if self.learned.any() else [])
        self.labels, self.label_terms = label_stacks(*self._label_matrices(), self.dtype)
        if not self.learned.any():                                             # σ fixed: T = N + |σ| M for good
            # (a checkpoint holds the same fixed σ, so resuming cannot change it)
            self.labels["T"] = label_matrix(self.labels, np.abs(self.params["sigma"]))
        self.stream = BatchStream(first, self.data_rng, self.dtype, checkpoint_every)   # blocks end at checkpoints
        self.state = optim.adamw_init(self.params, self.trained, lr=first["lr"], weight_decay=first["weight_decay"])
        self.work = adamw.work_arrays(self.params, self.trained)

    def _label_matrices(self):
        """N and M of every model (float64): y − b(x) = ReLU(x) + x (N + |σ| M)ᵀ (``batch.py``)."""
        n = self.configs[0]["n"]
        Ns, Ms = [], []
        for k, (config, M) in enumerate(zip(self.configs, self.Ms)):
            N = np.eye(n) if config["task"] == "residual" else np.zeros((n, n))   # y = x + ReLU(x)
            if self.model == "residual":
                W_E = self.params["W_E"][k].astype(np.float64)
                N = N - W_E.T @ W_E                                           # ŷ already holds G x = W_EᵀW_E x
            Ns.append(N)
            Ms.append(np.zeros((n, n)) if M is None else M)
        return np.stack(Ns), np.stack(Ms)

    def loss_and_grads(self, batch, models):
        """Loss and gradients of the models in slice ``models`` on one SharedBatch."""
        params = {key: value[models] for key, value in self.params.items()}
        labels = {key: value[models] for key, value in self.labels.items()}
        learned = self.learned[models]
        sigma = params["sigma"]
        if self.model == "residual":                                          # the feature basis (core/residual.py)
            W_E = params["W_E"]
            W_in = np.matmul(params["W_in"], W_E)                              # (k, d_mlp, n)  W̃_in = W_in W_E
            W_out = np.matmul(W_E.transpose(0, 2, 1), params["W_out"])         # (k, n, d_mlp)  W̃_out = W_Eᵀ W_out
        else:
            W_in, W_out = params["W_in"], params["W_out"]
        learn = "sigma" in self.trained                                       # some model of the stack learns σ
        loss, grads = mlp_loss_and_grads(batch, W_in, W_out, labels, np.abs(sigma), learn, self.label_terms)
        if self.model == "residual":
            grads["W_in"] = np.matmul(grads["W_in"], W_E.transpose(0, 2, 1))   # (k, d_mlp, d)  ∂L/∂W̃_in W_Eᵀ
            grads["W_out"] = np.matmul(W_E, grads["W_out"])                    # (k, d, d_mlp)  W_E ∂L/∂W̃_out
        if learn:                                                              # labels use |σ|: ∂|σ|/∂σ = sign σ
            grads["sigma"] = np.where(learned, np.sign(sigma) * grads.pop("s"), 0).astype(self.dtype)
        return loss, grads

    def step(self, step):
        """One shared batch, every model's loss and gradients, one AdamW update. Returns (loss, σ) before it."""
        first = self.configs[0]
        assert self.stream.step == step, "ModelStack.step must be called for steps 0, 1, 2, … in order"
        batch = self.stream.next_batch()
        size = CHUNK if batch.x is None else DENSE_CHUNK
        chunks = [slice(start, start + size) for start in range(0, len(self.configs), size)]
        with np.errstate(over="ignore", invalid="ignore"):                    # divergence is reported by the caller
            results = [self.loss_and_grads(batch, chunk) for chunk in chunks]
            loss = np.concatenate([chunk_loss for chunk_loss, _ in results])
            grads = {key: np.concatenate([chunk_grads[key] for _, chunk_grads in results]) for key in self.trained}
            sigma = self.params["sigma"].copy()
            adamw.adamw_step(self.params, grads, self.state, optim.cosine_lr(step, first["steps"], first["lr"]), self.work)
        if "sigma" in self.trained:
            self.params["sigma"][~self.learned] = sigma[~self.learned]         # a fixed σ stays fixed
        return loss, sigma


def fixed_sigma(config, M):
    """The mixing strength |σ| of a run whose σ is not learned (0 without a mixing matrix)."""
    return abs(config["sigma"]) if M is not None else 0.0


def train_batched(configs, M_list=None, init_params_list=None, progress=None, progress_every=200,
                  checkpoint_path=None, checkpoint_every=1000):
    """Train K models that share one batch stream; the results of K separate ``train`` calls.

    Parameters
    ----------
    configs : list of K config dicts (``train.make_config`` overrides); they must agree on
        :func:`shared_keys`, else ValueError.
    M_list : optional list of K unscaled mixing matrices (None entries: drawn from the seed).
    init_params_list : optional list of K starting weights (None entries: fresh weights).
    progress : optional ``progress(step, steps, running_loss_over_p, steps_per_second)``;
        ``running_loss_over_p`` is a (K,) array.
    checkpoint_path : optional ``.npz`` written every ``checkpoint_every`` steps; a run of the
        same configs resumes from it.

    Returns
    -------
    list of K dicts as ``train.train`` returns them (``seconds`` is the whole batched run's).
    """
    configs = [make_config(**dict(config, engine="fast")) for config in configs]
    check_shareable(configs)
    K = len(configs)
    keep_freed_memory()
    with single_blas_thread():
        stack = ModelStack(configs, M_list or [None] * K, init_params_list or [None] * K,
                           checkpoint_every if checkpoint_path is not None else None)
        return _run(stack, progress, progress_every, checkpoint_path, checkpoint_every,
                    fine_tuning=[init is not None for init in (init_params_list or [None] * K)])


def _run(stack, progress, progress_every, checkpoint_path, checkpoint_every, fine_tuning):
    first, K = stack.configs[0], len(stack.configs)
    steps, p = first["steps"], first["p"]
    history, sigma_history = np.zeros((steps, K)), np.zeros((steps, K))
    checkpoint_config = first if K == 1 else {"steps": steps, "models": stack.configs}
    start_step = 0
    if checkpoint_path is not None:
        start_step = resume(checkpoint_path, checkpoint_config, stack.params, stack.state, stack.data_rng,
                             history, sigma_history)
    stack.stream.start_at(start_step)
    running, t0 = None, time.perf_counter()
    last_time, last_step = t0, start_step
    for step in range(start_step, steps):
        loss, sigma = stack.step(step)
        if not np.all(np.isfinite(loss)):
            k = int(np.flatnonzero(~np.isfinite(loss))[0])
            which = "" if K == 1 else f" (model {k} of {K})"
            raise NonFiniteLossError(f"training diverged: the loss became {loss[k]} at step {step}{which}; "
                                     + divergence_hint(stack.configs[k], fine_tuning[k]))
        history[step], sigma_history[step] = loss, sigma
        running = loss if running is None else 0.99 * running + 0.01 * loss
        done = step + 1
        if progress is not None and (done % progress_every == 0 or done == steps):
            now = time.perf_counter()
            progress(done, steps, running / p, (done - last_step) / max(now - last_time, 1e-12))
            last_time, last_step = now, done
        if checkpoint_path is not None and done % checkpoint_every == 0 and done < steps:
            save_checkpoint(checkpoint_path, checkpoint_config, stack.params, stack.state, stack.data_rng,
                             history, sigma_history, done)
    seconds = time.perf_counter() - t0
    return [_result(stack, k, history[:, k], sigma_history[:, k], seconds, steps - start_step) for k in range(K)]


def _result(stack, k, history, sigma_history, seconds, steps_run):
    config = stack.configs[k]
    params = {key: value[k].copy() for key, value in stack.params.items() if key != "sigma"}
    if config["learn_sigma"]:
        params["sigma"] = stack.params["sigma"][k].copy()                      # 0-d, as train.train returns it
        sigma = abs(float(params["sigma"]))
    else:
        sigma = fixed_sigma(config, stack.Ms[k])
    return {"params": params, "M": stack.Ms[k], "sigma": sigma, "history": history.copy(),
            "sigma_history": sigma_history.copy() if config["learn_sigma"] else None, "config": config,
            "seconds": seconds, "steps_per_second": steps_run / max(seconds, 1e-12)}
