"""Seconds per 10k training steps: the plain loop, the fast engine and batched σ sweeps, side by side.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_fast.py            # 1000 steps per measurement, scaled to 10k
    python benchmarks/bench_fast.py --steps 2000 --repeats 3

Paper settings (batch 2048, p = 0.01, float32): the simplified MLP on mixed labels (asymmetric M,
σ = 0.03) and the residual model; ``mlp-dense`` is the same MLP at p = 0.5 (the dense regimes of
the sparsity and phase-diagram experiments). Every row trains through the library (sampling included) and
reports the best of ``--repeats`` runs, so that other processes on the machine disturb it less:

* ``plain``       — ``engine='plain'``, the dense (B, n) teaching loop;
* ``sparse rows`` — the loop before the fast engine (the sampler's batch of non-empty rows, CSR below
                    p = 0.1 and an array from there on, through the teaching forward/backward),
                    kept here as the reference the issue's floors were set on;
* ``fast``        — ``engine='fast'`` (``train`` runs the batched trainer with K = 1);
* ``sweep K``     — ``fast.train_batched`` on K models of a σ sweep, per model.

``vs plain`` / ``vs sparse rows`` are per-model throughput ratios. On a machine other processes keep
busy, ``--cpu`` times the CPU seconds this process got rather than wall seconds. ``peak`` is the share of one large
float32 product's GFLOP/s (one BLAS thread, as training runs) that the fast engine's products reach.
Training pins BLAS to one thread whatever OPENBLAS_NUM_THREADS says (``core.runtime``), so the
numbers at 1 and 2 threads differ only by the load the second thread puts on the machine.
"""

import argparse
import contextlib
import time

import numpy as np

from cc_numpy.core import data, mlp, optim, residual, runtime, train
from cc_numpy.core.fast import train_batched
from cc_numpy.core.fast.batch import SharedBatch

clock = time.perf_counter                  # --cpu: time.process_time, the CPU time this process got


MODELS = {"mlp": dict(model="mlp", task="mixed", mixing="asymmetric", sigma=0.03), "residual": dict(model="residual"),
          "mlp-dense": dict(model="mlp", task="mixed", mixing="asymmetric", sigma=0.03, p=0.5)}
DENSE_SWEEP = 8                            # the dense regime's sweep (the phase diagram trains 30 models a p)


def peak_gflops(size=2000, repeats=4, one_thread=True):
    """GFLOP/s of one large float32 product (size³ multiply-adds), with BLAS on one thread or on all."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    with runtime.single_blas_thread() if one_thread else contextlib.nullcontext():
        a @ a
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def fast_step_flops(config, K=1, samples=20):
    """FLOPs of the fast engine's products per step and model of K sharing a batch (2 per multiply-add)."""
    rng = data.random_streams(0)["data"]
    n, d_mlp, d = config["n"], config["d_mlp"], config["d"]
    rows = nnz = 0
    for _ in range(samples):
        shared = SharedBatch(data.sample_batch(config["batch_size"], n, config["p"], rng, np.float32), np.float32)
        rows += shared.rows / samples                  # after merging rays
        nnz += (shared.signed.nnz if shared.x is None else 0) / samples
    if shared.x is not None:                        # a dense batch: h, ŷ, eᵀa, e W_out, ∂hᵀx; x Mᵀ once for K
        return 2 * rows * n * (5 * d_mlp + n / K)
    flops = 2 * rows * d_mlp * d_mlp * 1.5          # aᵀa (half, syrk) and a P
    flops += 2 * 4 * nnz * d_mlp                    # h, y W_out, x±ᵀ∂h, x±ᵀa (sparse)
    flops += 2 * 3 * n * n * d_mlp                  # Tᵀ W_out, T xᵀa, W_outᵀ... (small dense)
    if config["model"] == "residual":
        flops += 2 * 4 * d * n * d_mlp              # W̃_in, W̃_out and both gradients mapped back
    return flops


def sparse_rows_seconds(config):
    """The pre-fast-engine loop: the sampler's non-empty rows, teaching forward/backward, loss over all B rows."""
    config = train.make_config(**config)
    dtype = np.float32
    params, M, rng = train.build_run(config)
    module = residual if config["model"] == "residual" else mlp
    state = optim.adamw_init(params, ["W_in", "W_out"], lr=config["lr"], weight_decay=config["weight_decay"])
    M32 = None if M is None else M.astype(dtype)
    gram = residual.gram_matrix(params["W_E"]) if config["model"] == "residual" else None
    B, n, steps = config["batch_size"], config["n"], config["steps"]
    runtime.keep_freed_memory()
    with runtime.single_blas_thread():
        start = clock()
        for step in range(steps):
            x = data.sample_batch(B, n, config["p"], rng, dtype)["x"]            # (B_nz, n) CSR
            if M32 is None:
                y = data.make_labels(x, config["task"])
            else:
                y = data.make_labels(x, "clean") + abs(config["sigma"]) * data.mixing_term(x, M32)
            y_hat, cache = (module.forward(params, x, gram) if gram is not None else module.forward(params, x))
            error = y_hat - y                                                      # (B_nz, n)
            grads = module.backward(params, cache, error * (2.0 / (B * n)))       # mean over all B rows
            optim.adamw_step(params, grads, state, optim.cosine_lr(step, steps, config["lr"]))
        return clock() - start


def train_seconds(config):
    start = clock()
    train.train(config)
    return clock() - start


def sweep_seconds(config, K):
    configs = [dict(config, sigma=float(s)) for s in np.linspace(0.0, 0.1, K)]
    start = clock()
    train_batched(configs)
    return (clock() - start) / K


def best(measure, repeats):
    return min(measure() for _ in range(repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per measurement, scaled to 10k (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per row (default 2)")
    parser.add_argument("--sweeps", type=int, nargs="*", default=[8, 41], help="K of the batched σ sweeps")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--cpu", action="store_true",
                        help="time CPU seconds of this process instead of wall seconds (for a busy machine)")
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.cpu else time.perf_counter
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    peak = peak_gflops()
    scale = 10_000 / args.steps
    print(f"one large float32 product: {peak:.1f} GFLOP/s on one BLAS thread (training's), "
          f"{peak_gflops(one_thread=False):.1f} on {max(runtime.blas_thread_counts() or [1])} (this process's "
          f"default); timing {'CPU' if args.cpu else 'wall'} seconds")
    print(f"{'model':>9s} {'path':>12s} {'s / 10k steps':>14s} {'vs plain':>9s} {'vs sparse rows':>15s} {'peak':>6s}")
    for name in args.models:
        config = dict(MODELS[name], steps=args.steps, dtype="float32")
        sweeps = args.sweeps if name == "mlp" else [DENSE_SWEEP] if name == "mlp-dense" else []
        rows = [("plain", None, best(lambda: train_seconds(dict(config, engine="plain")), args.repeats)),   # (path, K, s)
                ("sparse rows", None, best(lambda: sparse_rows_seconds(config), args.repeats)),
                ("fast", 1, best(lambda: train_seconds(dict(config, engine="fast")), args.repeats))]
        rows += [(f"sweep K={K}", K, best(lambda: sweep_seconds(config, K), args.repeats)) for K in sweeps]
        plain, sparse_rows = rows[0][2], rows[1][2]
        for path, K, seconds in rows:
            flops = fast_step_flops(train.make_config(**config), K) * args.steps if K else 0   # per model
            share = f"{flops / seconds / 1e9 / peak:6.1%}" if K else ""
            print(f"{name:>9s} {path:>12s} {seconds * scale:14.2f} {plain / seconds:8.2f}x "
                  f"{sparse_rows / seconds:14.2f}x {share:>6s}")
    print("ratios are per-model throughput (higher is faster); s / 10k steps of a sweep is per model.")


if __name__ == "__main__":
    main()
