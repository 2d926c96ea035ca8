"""Seconds per 10k training steps for each model, and the share of this machine's matmul throughput.

    python benchmarks/bench_train.py            # the paper's settings: 10k steps, batch 2048, p = 0.01
    python benchmarks/bench_train.py --steps 2000

For each model it runs the real command line (``python -m cc_numpy train``, float32, the default
``engine='fast'``) in a subprocess and reports its wall time, then divides the FLOPs of the plain
loop's matrix products (expected counts at this p: the work the fast engine avoids, kept as a
fixed yardstick) per second of training by the FLOPs per second of one large float32 product
measured in the same run. Ratios, not timed tests: numbers depend on the machine.
``benchmarks/bench_fast.py`` compares the engines and batched sweeps side by side.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGET_SECONDS = {"mlp": 12.0, "residual": 15.0}      # the ceilings on 2 cores
AUTHORS_SECONDS = {"mlp": 37.0, "residual": 150.0}     # PyTorch reference on this machine (issue 2)


def step_flops(model, batch_size=2048, p=0.01, n=100, d=1000, d_mlp=50):
    """Expected FLOPs of one training step's matrix products (2 per multiply-add)."""
    rows = batch_size * (1.0 - (1.0 - p) ** n)          # non-empty rows B_nz
    nnz = p * batch_size * n                            # active inputs
    flops = 2 * nnz * d_mlp                             # h = x W_inᵀ (sparse)
    flops += 3 * 2 * rows * d_mlp * n                   # ŷ = a W_outᵀ, ∂W_out = ∂ŷᵀ a, ∂a = ∂ŷ W_out
    flops += 2 * nnz * d_mlp                            # ∂W_in = (xᵀ ∂h)ᵀ (sparse)
    if model == "residual":
        flops += 4 * 2 * d * n * d_mlp                  # W̃_in, W̃_out, and both gradients mapped back
        flops += 2 * nnz * n                            # G x (sparse)
    else:
        flops += 2 * nnz * n                            # M x in the labels (sparse)
    return flops


def peak_matmul_flops(size=2000, repeats=5):
    """FLOPs/s of one large float32 product (size × size) @ (size × size) on all BLAS threads."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def time_train_command(model, steps, out_dir):
    command = [sys.executable, "-m", "cc_numpy", "train", "--model", model, "--steps", str(steps),
               "--out", out_dir, "--quiet", "--eval-samples", "0", "--dtype", "float32"]
    if model == "mlp":
        command += ["--task", "mixed", "--mixing", "asymmetric", "--sigma", "0.03"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(out_dir, "metrics.json"), encoding="utf-8") as handle:
        training_seconds = json.load(handle)["seconds"]
    return wall, training_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="training steps per model (default: 10000)")
    parser.add_argument("--models", nargs="+", default=["mlp", "residual"], choices=["mlp", "residual"])
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    peak = peak_matmul_flops()
    print(f"one large float32 product: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'model':>9s} {'wall s/10k':>11s} {'train s/10k':>12s} {'target':>7s} {'vs target':>10s} "
          f"{'vs authors':>11s} {'matmul share':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            wall, training = time_train_command(model, args.steps, os.path.join(tmp, model))
            scale = 10_000 / args.steps
            wall_10k, train_10k = wall * scale, training * scale
            share = step_flops(model) * args.steps / training / peak
            print(f"{model:>9s} {wall_10k:11.1f} {train_10k:12.1f} {TARGET_SECONDS[model]:7.0f} "
                  f"{wall_10k / TARGET_SECONDS[model]:9.2f}x {AUTHORS_SECONDS[model] / wall_10k:10.1f}x "
                  f"{share:12.1%}")
    print("vs target < 1 meets the issue's ceiling; vs authors = how many times faster than the PyTorch code.")


if __name__ == "__main__":
    main()
