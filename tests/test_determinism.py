"""Same config, same bits: whatever OPENBLAS_NUM_THREADS says, in the library and on the command line.

Paper-sized products (n = 100, d_mlp = 50, batch 2048, and the residual model's d = 1000) are the ones
OpenBLAS splits over threads, and a split changes the last bits of a sum; cc_numpy pins its BLAS to one
thread while it trains and evaluates (``core.runtime.single_blas_thread``), so these runs must agree.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from cc_numpy.core import runtime

TRAIN = """
import sys, numpy as np
from cc_numpy.core.train import make_config, train
from cc_numpy.core.evaluate import loss_over_p
run = train(make_config(model=sys.argv[1], steps=15))
value = loss_over_p({k: v.astype(np.float64) for k, v in run["params"].items()}, 0.01,
                    np.random.default_rng(0), task=run["config"]["task"], M=run["M"], sigma=run["sigma"],
                    n_samples=20_000)
np.savez(sys.argv[2], loss=value["loss_over_p"], **run["params"])
"""


def _run(tmp_path, model, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if threads is not None:
        env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    path = tmp_path / f"{model}-{threads}.npz"
    subprocess.run([sys.executable, "-c", TRAIN, model, str(path)], env=env, check=True, timeout=120)
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "residual"])
def test_one_two_or_unset_blas_threads_give_the_same_bits(tmp_path, model):
    runs = [_run(tmp_path, model, threads) for threads in ("1", "2", None)]
    for other in runs[1:]:
        assert sorted(other) == sorted(runs[0])
        for key in runs[0]:
            assert np.array_equal(runs[0][key], other[key]), f"{key} differs with another BLAS thread count"


def test_single_blas_thread_pins_and_restores():
    before = runtime.blas_thread_counts()
    with runtime.single_blas_thread():
        assert all(count == 1 for count in runtime.blas_thread_counts())
    assert runtime.blas_thread_counts() == before
