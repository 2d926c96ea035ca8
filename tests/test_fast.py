"""The fast engine (cc_numpy/core/fast) against the plain teaching path, and batched training.

* one step: the same loss and gradients as ``train.train_step`` (float64, ≤ 1e-10 relative);
* whole runs: the same trajectory as ``engine='plain'`` (float64 to rounding, float32 to float32 rounding);
* batching: a model's weights are bit for bit the same alone (K = 1) or among K models;
* the batch stream and the in-place AdamW: bit for bit what ``SharedBatch(data.sample_batch(...))``
  and ``optim.adamw_step`` give;
* evaluation: the same per-sample losses as ``evaluate.sample_losses``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from cc_numpy.core import data, evaluate, mlp, optim, residual, train
from cc_numpy.core.fast import adamw
from cc_numpy.core.fast import evaluate as fast_evaluate
from cc_numpy.core.fast.batch import SharedBatch
from cc_numpy.core.fast.batched import ModelStack, check_shareable, train_batched
from cc_numpy.core.fast.statistics import label_stacks
from cc_numpy.core.fast.stream import BatchStream, prepared_batches
from cc_numpy.pipeline import jobs

CASES = [dict(model="mlp", task="mixed"), dict(model="mlp", task="clean"), dict(model="mlp", task="residual"),
         dict(model="mlp", task="mixed", learn_sigma=True, sigma_init=-0.05, mixing="symmetric"),
         dict(model="residual", task="residual"), dict(model="residual", task="clean"),
         dict(model="residual", task="mixed", learn_sigma=True)]


def relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_same_run(a, b, rtol):
    assert set(a) == set(b) and set(a["params"]) == set(b["params"])
    for key in a["params"]:
        assert a["params"][key].dtype == b["params"][key].dtype and a["params"][key].shape == b["params"][key].shape
        assert relative(a["params"][key], b["params"][key]) <= rtol, key
    assert relative(a["history"], b["history"]) <= rtol
    assert (a["sigma_history"] is None) == (b["sigma_history"] is None)
    if a["sigma_history"] is not None:
        assert relative(a["sigma_history"], b["sigma_history"]) <= rtol
    assert a["sigma"] == pytest.approx(b["sigma"], rel=rtol)


def assert_bit_identical(a, b):
    for key in a["params"]:
        assert np.array_equal(a["params"][key], b["params"][key]), key
    assert np.array_equal(a["history"], b["history"])
    if a["sigma_history"] is not None:
        assert np.array_equal(a["sigma_history"], b["sigma_history"])
    assert a["sigma"] == b["sigma"]


# ---------------------------------------------------------------- one step: statistics == the plain path

@pytest.mark.parametrize("p", [0.02, 0.05, 0.3])                # sparse batches, and a dense one (p ≥ 0.1)
@pytest.mark.parametrize("case", CASES)
def test_one_step_has_the_plain_loss_and_gradients(case, p):
    config = train.make_config(n=20, d=60, d_mlp=6, batch_size=300, p=p, seed=4, dtype="float64", **case)
    stack = ModelStack([config], [None], [None])
    params, M, data_rng = train.build_run(config)
    for key in ("W_E", "W_in", "W_out"):                         # both start from the same weights
        if key in params:
            np.testing.assert_array_equal(params[key], stack.params[key][0])
    fast_rng = np.random.default_rng()
    fast_rng.bit_generator.state = data_rng.bit_generator.state
    batch = train.draw_batch(config, M, data_rng, np.float64)    # the plain (B, n) batch
    raw = data.sample_batch(300, 20, p, fast_rng, np.float64)   # the same draws
    np.testing.assert_array_equal(data.batch_to_dense(raw), batch["x"])
    shared = SharedBatch(raw, np.float64)                       # one-entry rows merged per ray
    if p < data.DENSE_FROM_P:
        assert shared.rows < raw["x"].shape[0]
    sigma = float(params["sigma"]) if config["learn_sigma"] else config["sigma"]
    gram = residual.gram_matrix(params["W_E"]) if config["model"] == "residual" else None
    plain_loss, plain_grads = train.train_step(config["model"], params, batch, sigma, config["learn_sigma"], gram)
    fast_loss, fast_grads = stack.loss_and_grads(shared, slice(0, 1))
    assert fast_loss[0] == pytest.approx(plain_loss, rel=1e-10)
    assert set(fast_grads) == set(plain_grads)
    for key in plain_grads:
        assert relative(fast_grads[key][0], plain_grads[key]) <= 1e-10, key


def test_merging_rays_keeps_every_statistic_and_drops_rows():
    batch = data.sample_batch(2048, 30, 0.02, np.random.default_rng(2), np.float64)
    merged, unmerged = SharedBatch(batch, np.float64), SharedBatch(batch, np.float64, merge_rays=False)
    counts = np.diff(batch["x"].indptr)
    assert merged.rows == np.sum(counts > 1) + len({(c, v > 0) for c, v, k in
                                                    zip(batch["x"].indices[batch["x"].indptr[:-1]],
                                                        batch["x"].data[batch["x"].indptr[:-1]], counts) if k == 1})
    assert merged.rows < 0.8 * unmerged.rows
    np.testing.assert_allclose(merged.RQ, unmerged.RQ, rtol=1e-12, atol=1e-12)
    assert merged.rr == pytest.approx(unmerged.rr, rel=1e-12)
    W = np.random.default_rng(3).standard_normal((1, 30, 4))
    a_merged = np.maximum(merged.inputs_times(W), 0)[:, 0]                     # (rows, 4) activations
    a_plain = np.maximum(unmerged.inputs_times(W), 0)[:, 0]
    np.testing.assert_allclose(a_merged.T @ a_merged, a_plain.T @ a_plain, rtol=1e-12)   # the same aᵀa


# (batch_size, n, p, dtype, steps): paper-sized, very sparse (empty batches), rows of many entries, float64
STREAMS = [(2048, 100, 0.01, np.float32, 40), (64, 5, 0.002, np.float32, 40), (300, 12, 0.09, np.float64, 20),
           (40, 7, 0.05, np.float64, 37)]


@pytest.mark.parametrize("batch_size, n, p, dtype, count", STREAMS)
def test_prepared_batches_are_bit_for_bit_the_batches_of_single_steps(batch_size, n, p, dtype, count):
    drawn = np.random.default_rng(7)
    together = prepared_batches(batch_size, n, p, drawn, dtype, count)
    rng = np.random.default_rng(7)
    empty = 0
    for prepared in together:
        single = SharedBatch(data.sample_batch(batch_size, n, p, rng, dtype), dtype)
        empty += single.rows == 0
        assert prepared.rows == single.rows and prepared.batch_size == single.batch_size
        for key in ("data", "indices", "indptr"):
            a, b = getattr(prepared.signed, key), getattr(single.signed, key)
            assert a.dtype == b.dtype and np.array_equal(a, b), key
        assert prepared.RQ.dtype == single.RQ.dtype and np.array_equal(prepared.RQ, single.RQ)
        assert prepared.rr == single.rr
    assert drawn.bit_generator.state == rng.bit_generator.state
    assert (empty > 0) == (p == 0.002)                                       # the very sparse stream has empty batches


def test_the_stream_leaves_the_generator_where_single_steps_leave_it_at_every_checkpoint():
    config = dict(batch_size=256, n=20, p=0.02, steps=50)
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    stream = BatchStream(config, rng, np.float32, checkpoint_every=7)       # blocks of 16 cut at 7, 14, …
    for step in range(1, 51):
        stream.next_batch()
        data.sample_batch(256, 20, 0.02, reference, np.float32)
        if step % 7 == 0 or step == 50:
            assert rng.bit_generator.state == reference.bit_generator.state, step


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_adamw_is_bit_for_bit_the_teaching_adamw(dtype):
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((3, 5, 7)).astype(dtype), "sigma": rng.standard_normal(3).astype(dtype)}
    copy = {key: value.copy() for key, value in params.items()}
    state, state_copy = (optim.adamw_init(p, list(p), weight_decay=0.1) for p in (params, copy))
    work = adamw.work_arrays(copy, list(copy))
    for step in range(60):
        grads = {key: (rng.standard_normal(value.shape) * 10.0 ** rng.integers(-9, 3)).astype(dtype)
                 for key, value in params.items()}
        lr_t = optim.cosine_lr(step, 60, 3e-3)
        optim.adamw_step(params, grads, state, lr_t)
        adamw.adamw_step(copy, grads, state_copy, lr_t, work)
    for key in params:
        assert np.array_equal(params[key], copy[key])
        assert np.array_equal(state["m"][key], state_copy["m"][key]) and np.array_equal(state["v"][key], state_copy["v"][key])


# ---------------------------------------------------------------- whole runs: the fast engine == the plain engine

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("p", [0.1, 0.03])                      # a dense stream; a sparse one (prepared in blocks)
def test_fast_and_plain_runs_agree_float64(tiny_config, case, p):
    config = dict(tiny_config, steps=300, dtype="float64", p=p, **case)
    assert_same_run(train.train(dict(config, engine="fast")), train.train(dict(config, engine="plain")), 1e-10)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[4]])
def test_fast_and_plain_runs_agree_to_float32_rounding(tiny_config, case):
    config = dict(tiny_config, steps=300, dtype="float32", **case)
    fast, plain = train.train(dict(config, engine="fast")), train.train(dict(config, engine="plain"))
    assert fast["params"]["W_in"].dtype == np.float32
    assert_same_run(fast, plain, 2e-5)                           # a few hundred float32 roundings apart


# ---------------------------------------------------------------- batched training

def sweep_configs(base):
    """Models that share a batch stream: a σ sweep, learned σ, clean labels, another mixing kind."""
    configs = [dict(base, sigma=s) for s in (0.0, 0.01, 0.03, -0.05)]
    configs.append(dict(base, learn_sigma=True, sigma_init=0.02))
    configs.append(dict(base, task="clean"))
    configs.append(dict(base, mixing="symmetric", sigma=0.02))
    return configs


@pytest.mark.parametrize("p", [0.01, 0.5])                      # a sparse and a dense batch stream
@pytest.mark.parametrize("model", ["mlp", "residual"])
def test_a_model_gets_the_same_bits_alone_or_in_a_batch_float32(model, p):
    """Paper-sized models (n = 100, d_mlp = 50, d = 1000), so BLAS runs its real kernels."""
    base = dict(model=model, task="mixed", steps=12, batch_size=1024, seed=5, dtype="float32", p=p)
    configs = sweep_configs(base)
    M_list = [None] * len(configs)
    M_list[2] = np.random.default_rng(0).standard_normal((100, 100))        # a model with its own M
    init = train.train(dict(base, steps=3))["params"]
    inits = [None] * len(configs)
    inits[1] = {k: init[k] for k in ("W_in", "W_out")}                      # a fine-tuned model
    together = train_batched(configs, M_list, inits)
    for index in (0, 1, 2, 4, len(configs) - 1):
        alone = train_batched([configs[index]], [M_list[index]], [inits[index]])[0]
        assert_bit_identical(alone, together[index])
    single = train.train(configs[3])                                           # train() is the K = 1 case
    assert_bit_identical(single, together[3])


def test_label_terms_are_kept_once_per_distinct_pair_of_label_matrices():
    """A σ sweep on one M has one (N, M) pair; each model points at its own pair's terms."""
    rng = np.random.default_rng(3)
    n = 6
    M, other = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    N = np.stack([np.zeros((n, n)), np.zeros((n, n)), np.eye(n), np.zeros((n, n)), np.zeros((n, n))])
    Ms = np.stack([M, M, M, other, np.zeros((n, n))])                        # the last: clean labels, M = 0
    labels, label_terms = label_stacks(N, Ms, np.float64)
    assert label_terms["stack"].shape == (4, 5, n * n)
    for k in range(5):
        expected = np.stack([N[k], Ms[k], N[k].T @ N[k], N[k].T @ Ms[k], Ms[k].T @ Ms[k]]).reshape(5, n * n)
        np.testing.assert_array_equal(label_terms["stack"][labels["stack_id"][k]], expected)
    assert labels["stack_id"][0] == labels["stack_id"][1] != labels["stack_id"][2]


def test_the_label_matrix_is_kept_for_a_run_only_while_no_sigma_is_learned(tiny_config):
    """T = N + |σ| M formed once is what each step would form; a stack that learns σ forms it every step."""
    fixed = [dict(tiny_config, model="mlp", task="mixed", mixing="asymmetric", sigma=s, p=0.05, dtype="float64")
             for s in (0.0, -0.03)]
    for configs in ([dict(c, dtype="float32") for c in fixed],                   # the MLP, and the residual model
                    [dict(tiny_config, model="residual", p=0.05, dtype="float32")]):   # (whose N = I − W_EᵀW_E)
        stack = ModelStack([train.make_config(**c) for c in configs], [None] * len(configs), [None] * len(configs))
        assert stack.labels["T"].dtype == np.float32
        batch = stack.stream.next_batch()
        kept = stack.loss_and_grads(batch, slice(None))
        del stack.labels["T"]                                                  # formed from N and σ in the step
        formed = stack.loss_and_grads(batch, slice(None))
        np.testing.assert_array_equal(kept[0], formed[0])
        for key in formed[1]:
            np.testing.assert_array_equal(kept[1][key], formed[1][key])
    learned = fixed + [dict(fixed[0], learn_sigma=True)]
    stack = ModelStack([train.make_config(**c) for c in learned], [None] * 3, [None] * 3)
    assert "T" not in stack.labels
    result = train_batched(learned)[2]                                         # σ moves, and T with it
    assert_same_run(result, train.train(dict(learned[2], engine="plain")), 1e-10)


def test_mlps_of_different_widths_share_a_batch_stream_and_keep_their_bits(tiny_config):
    """The MLP's d only shapes an embedding's mixing matrix: such models train together (the width
    sweep's predictions), residual models of different d do not."""
    configs = [dict(tiny_config, model="mlp", task="mixed", mixing="embedding", d=d) for d in (8, 16, 32)]
    configs.append(dict(tiny_config, model="mlp", task="mixed", mixing="asymmetric", d=64))
    together = train_batched(configs)
    for config, result in zip(configs, together):
        assert_bit_identical(train.train(config), result)
    assert not np.array_equal(together[0]["params"]["W_in"], together[1]["params"]["W_in"])   # d mattered
    keys = {jobs.group_key(jobs.make_job(config)) for config in configs}
    assert len(keys) == 1
    residuals = [dict(tiny_config, model="residual", d=d) for d in (16, 32)]
    assert len({jobs.group_key(jobs.make_job(config)) for config in residuals}) == 2
    with pytest.raises(ValueError, match="differ in d;"):
        train_batched(residuals)


def test_batched_runs_equal_separate_plain_runs_float64(tiny_config):
    configs = sweep_configs(dict(tiny_config, steps=150, dtype="float64"))
    together = train_batched(configs)
    for config, result in zip(configs, together):
        assert_same_run(result, train.train(dict(config, engine="plain")), 1e-10)
        assert result["config"] == train.make_config(**config)


def test_batched_results_have_the_format_of_single_runs(tiny_config):
    configs = [dict(tiny_config, learn_sigma=True), dict(tiny_config, model="mlp", task="clean")]
    for batched, config in zip(train_batched(configs), configs):
        single = train.train(dict(config, engine="plain"))
        assert set(batched) == set(single)
        for key in single["params"]:
            assert batched["params"][key].shape == single["params"][key].shape
            assert batched["params"][key].dtype == single["params"][key].dtype
        assert batched["history"].shape == single["history"].shape
        assert type(batched["sigma"]) is type(single["sigma"])


@pytest.mark.parametrize("change", [dict(seed=4), dict(p=0.2), dict(batch_size=64), dict(steps=7), dict(n=9),
                                    dict(dtype="float64"), dict(model="residual"), dict(lr=1e-2)])
def test_configs_that_cannot_share_a_batch_stream_are_refused(tiny_config, change):
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"configs\\[1\\] cannot share a batch stream.*{key}"):
        train_batched([tiny_config, dict(tiny_config, **change)])
    check_shareable([train.make_config(**tiny_config), train.make_config(**dict(tiny_config, sigma=0.2))])


def test_batched_progress_and_divergence(tiny_config):
    calls = []
    train_batched([tiny_config, dict(tiny_config, sigma=0.1)], progress=lambda *a: calls.append(a),
                  progress_every=20)
    assert [c[0] for c in calls] == [20, 40, 60] and calls[0][2].shape == (2,)
    with pytest.raises(train.NonFiniteLossError, match=r"at step \d+ \(model 1 of 2\)"):
        train_batched([tiny_config, dict(tiny_config, sigma=1e30)])


@pytest.mark.parametrize("p, steps, every", [(0.1, 30, 10), (0.02, 37, 10), (0.02, 45, 7)])   # dense; sparse blocks cut
def test_batched_checkpoints_resume(tmp_path, tiny_config, p, steps, every):
    configs = sweep_configs(dict(tiny_config, steps=steps, p=p))
    uninterrupted = train_batched(configs)
    path = tmp_path / "checkpoint.npz"

    def stop(step, *rest):
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_batched(configs, progress=stop, progress_every=1, checkpoint_path=path, checkpoint_every=every)
    for resumed, expected in zip(train_batched(configs, checkpoint_path=path, checkpoint_every=every), uninterrupted):
        assert_bit_identical(resumed, expected)


# ---------------------------------------------------------------- evaluation from statistics

@pytest.mark.parametrize("p", [0.01, 0.05, 0.4, 1.0])
@pytest.mark.parametrize("model, task", [("mlp", "clean"), ("mlp", "mixed"), ("mlp", "residual"),
                                         ("residual", "residual"), ("residual", "mixed")])
def test_per_sample_losses_from_statistics_equal_the_plain_ones(model, task, p):
    rng = np.random.default_rng(8)
    n = 30
    params = (residual.init_params(n, 80, 7, rng, rng) if model == "residual" else mlp.init_params(n, 7, rng))
    M, sigma = (rng.standard_normal((n, n)), -0.07) if task == "mixed" else (None, 0.0)
    batch = data.sample_batch(500, n, p, rng, np.float64)
    plain = evaluate.sample_losses(params, batch, task, M, sigma)
    fast = fast_evaluate.sample_losses(fast_evaluate.prepare(params, task, M, sigma), batch)
    assert fast.shape == plain.shape
    np.testing.assert_allclose(fast, plain, rtol=1e-10, atol=1e-13 * plain.max())


# ---------------------------------------------------------------- BLAS threads

BATCHED = """
import sys, numpy as np
from cc_numpy.core.fast import train_batched
runs = train_batched([dict(sigma=s, steps=8, batch_size=1024) for s in (0.01, 0.03)]
                     + [dict(model="mlp", task="clean", steps=8, batch_size=1024)])
np.savez(sys.argv[1], **{f"{k}_{i}": v for i, run in enumerate(runs) for k, v in run["params"].items()})
"""


@pytest.mark.slow
def test_batched_runs_give_the_same_bits_with_one_or_two_blas_threads(tmp_path):
    results = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        path = tmp_path / f"{threads}.npz"
        subprocess.run([sys.executable, "-c", BATCHED, str(path)], env=env, check=True, timeout=120)
        with np.load(path) as archive:
            results.append({k: archive[k] for k in archive.files})
    assert sorted(results[0]) == sorted(results[1])
    for key in results[0]:
        assert np.array_equal(results[0][key], results[1][key]), key
