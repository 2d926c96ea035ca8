"""Tests for cc_numpy.pipeline.jobs: job keys, the on-disk cache, and serial / parallel / fine-tuning runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cc_numpy.pipeline import jobs
from cc_numpy.core import train

# A training small enough for a few milliseconds: n = 8 features, 4 neurons, 20 steps.
TINY = dict(n=8, d_mlp=4, d=32, steps=20, batch_size=64, p=0.1, seed=5)
EVAL = dict(eval_ps=[0.1, 1.0], min_samples=500, max_samples=500)


def tiny_job(init_from=None, **overrides):
    return jobs.make_job(dict(TINY, **overrides), init_from=init_from, **EVAL)


def fake_result(seed):
    """A result-like dict of arrays (no training needed), different for each seed."""
    rng = np.random.default_rng(seed)
    return {"W_in": rng.normal(size=(4, 8)).astype(np.float32), "W_out": rng.normal(size=(8, 4)).astype(np.float32),
            "sigma": np.array(0.03), "history": rng.random(20), "seconds": np.array(0.5),
            "eval_p": np.array([0.1, 1.0]), "eval_n_samples": np.array([500, 500])}


class Recorder:
    """A progress callback that remembers the keys of the jobs it was told about."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total, job, seconds):
        assert 1 <= done <= total and seconds >= 0
        self.calls.append((done, total, jobs.job_key(job)))

    @property
    def keys(self):
        return [key for _, _, key in self.calls]


def never(done, total, job, seconds):
    raise AssertionError(f"job {jobs.job_key(job)} was computed although it is in the cache")


def assert_same_arrays(a, b, skip=("seconds", "train_seconds")):
    assert sorted(set(a) - set(skip)) == sorted(set(b) - set(skip))
    for key in a:
        if key not in skip:
            assert a[key].dtype == b[key].dtype, key
            assert np.array_equal(a[key], b[key]), key


# ---------------------------------------------------------------- make_job and job_key

def test_job_key_is_stable_and_independent_of_dict_order():
    first = jobs.make_job({"p": 0.1, "steps": 20, "n": 8, "d_mlp": 4}, eval_ps=[0.1])
    second = jobs.make_job({"d_mlp": 4, "n": 8, "steps": 20, "p": 0.1}, eval_ps=[0.1])
    key = jobs.job_key(first)
    assert key == jobs.job_key(second) == jobs.job_key(json.loads(json.dumps(first)))
    assert len(key) == 24 and all(c in "0123456789abcdef" for c in key)


@pytest.mark.parametrize("change", [
    {"p": 0.2}, {"steps": 21}, {"seed": 6}, {"batch_size": 65}, {"n": 9}, {"d_mlp": 5}, {"sigma": 0.031},
    {"mixing": "symmetric"}, {"task": "clean"}, {"lr": 0.002}, {"weight_decay": 0.0}, {"dtype": "float64"},
    {"learn_sigma": True}, {"model": "residual"},
])
def test_job_key_changes_with_every_config_value(change):
    assert jobs.job_key(tiny_job(**change)) != jobs.job_key(tiny_job())


def test_job_key_changes_with_the_evaluation_and_the_parent():
    base = tiny_job()
    others = [jobs.make_job(TINY, eval_ps=[0.1]),
              jobs.make_job(TINY, eval_ps=[0.1, 1.0], min_samples=500, max_samples=600),
              jobs.make_job(TINY, eval_ps=[0.1, 1.0], min_samples=500, max_samples=500, eval_task="clean"),
              jobs.make_job(TINY, eval_ps=[0.1, 1.0], min_samples=500, max_samples=500, target_stderr=1e-3),
              jobs.make_job(TINY),
              tiny_job(init_from=tiny_job(seed=6))]
    keys = {jobs.job_key(job) for job in [base, *others]}
    assert len(keys) == 1 + len(others)


def test_make_job_fills_the_evaluation_defaults():
    job = jobs.make_job(TINY, eval_ps=0.05)
    assert job["init_from"] is None
    assert job["eval"] == dict(jobs.EVAL_DEFAULTS, ps=[0.05], target_stderr=None)    # None: a fixed sample count
    assert jobs.make_job(TINY)["eval"] is None


def test_the_job_holds_the_fully_resolved_config():
    job = jobs.make_job(TINY)
    assert job["config"] == json.loads(json.dumps(train.make_config(**TINY)))
    assert set(job["config"]) >= set(train.DEFAULT_CONFIG)


def test_changing_a_default_changes_the_key_and_forces_a_recomputation(tmp_path, monkeypatch):
    cache = jobs.JobCache(tmp_path / "cache")
    before = tiny_job()
    cache.put(before, fake_result(0))
    assert cache.get(tiny_job()) is not None                     # same defaults: served from the cache
    monkeypatch.setitem(train.DEFAULT_CONFIG, "lr", 2e-3)
    after = tiny_job()                                           # the same overrides, another default lr
    assert after["config"]["lr"] == 2e-3 and jobs.job_key(after) != jobs.job_key(before)
    assert cache.get(after) is None                              # not served: it will be recomputed


def test_a_new_numerics_version_changes_every_key(monkeypatch):
    job = tiny_job()
    key = jobs.job_key(job)
    monkeypatch.setattr(jobs, "NUMERICS_VERSION", jobs.NUMERICS_VERSION + 1)
    assert jobs.job_key(job) != key


def test_numpy_integers_in_the_config_give_the_same_job():
    """make_job accepts steps=np.int64(20) (make_config validates it), so the job must work like steps=20.

    Fails today: make_job stores the caller's values, not make_config's normalised ones, and job_key's
    json.dumps raises "TypeError: Object of type int64 is not JSON serializable" (e.g. for steps or a rank
    taken from np.arange).
    """
    job = jobs.make_job(dict(TINY, steps=np.int64(20), seed=np.int64(5)), eval_ps=[0.1])
    assert jobs.job_key(job) == jobs.job_key(jobs.make_job(TINY, eval_ps=[0.1]))


@pytest.mark.parametrize("config, message", [
    ({"stepz": 10}, "unknown config keys ['stepz']"),
    ({"p": 2.0}, "p must be in"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"mixing": "gaussian"}, "unknown mixing kind"),
])
def test_make_job_validates_the_config(config, message):
    with pytest.raises(ValueError) as error:
        jobs.make_job(dict(TINY, **config))
    assert message in str(error.value)


# ---------------------------------------------------------------- JobCache

def test_cache_put_get_round_trip(tmp_path):
    cache = jobs.JobCache(tmp_path / "cache")
    job, result = tiny_job(), fake_result(0)
    assert cache.get(job) is None
    cache.put(job, result)
    assert os.path.basename(cache.path(job)) == jobs.job_key(job) + ".npz"
    assert os.listdir(tmp_path / "cache") == [jobs.job_key(job) + ".npz"]
    assert_same_arrays(cache.get(job), result, skip=())
    assert cache.get(tiny_job(seed=6)) is None                  # another job: not found, not confused


def test_a_corrupt_cache_file_is_reported_removed_and_recomputed(tmp_path):
    reports = []
    cache = jobs.JobCache(tmp_path, report=reports.append)
    job = tiny_job()
    with open(cache.path(job), "wb") as handle:
        handle.write(b"\x00garbage, not an npz file\xff" * 10)
    assert cache.get(job) is None
    assert len(reports) == 1 and cache.path(job) in reports[0] and "recomputing" in reports[0]
    assert not os.path.exists(cache.path(job))

    with open(cache.path(job), "wb") as handle:                 # again, now through run_jobs
        handle.write(b"garbage")
    recorder = Recorder()
    [result] = jobs.run_jobs([job], cache=cache, progress=recorder)
    assert recorder.keys == [jobs.job_key(job)] and len(reports) == 2
    assert_same_arrays(result, jobs.run_job(job))
    assert_same_arrays(cache.get(job), result, skip=())        # the recomputed result replaced the garbage
    assert len(reports) == 2


def test_a_truncated_cache_file_is_not_trusted(tmp_path):
    reports = []
    cache = jobs.JobCache(tmp_path, report=reports.append)
    job = tiny_job()
    cache.put(job, fake_result(0))
    path = Path(cache.path(job))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert cache.get(job) is None
    assert len(reports) == 1 and not os.path.exists(cache.path(job))


def test_a_foreign_cache_file_is_reported_and_recomputed(tmp_path):
    reports = []
    cache = jobs.JobCache(tmp_path, report=reports.append)
    job, other = tiny_job(), tiny_job(seed=6)
    other_result = jobs.run_job(other)
    cache.put(other, other_result)
    shutil.copy(cache.path(other), cache.path(job))             # the other job's result under this job's key
    assert cache.get(job) is None
    assert len(reports) == 1 and "another job" in reports[0]
    assert not os.path.exists(cache.path(job)) and os.path.exists(cache.path(other))

    shutil.copy(cache.path(other), cache.path(job))
    recorder = Recorder()
    [result] = jobs.run_jobs([job], cache=cache, progress=recorder)
    assert recorder.keys == [jobs.job_key(job)] and len(reports) == 2
    assert not np.array_equal(result["W_in"], other_result["W_in"])
    assert_same_arrays(result, jobs.run_job(job))


def test_a_cache_file_missing_arrays_is_not_trusted(tmp_path):
    reports = []
    cache = jobs.JobCache(tmp_path, report=reports.append)
    job = tiny_job()
    partial = {k: v for k, v in fake_result(0).items() if k != "history"}
    cache.put(job, partial)
    assert cache.get(job) is None
    assert len(reports) == 1 and "history" in reports[0]


# ---------------------------------------------------------------- run_job / run_jobs

def test_run_job_trains_and_evaluates():
    job = tiny_job()
    result = jobs.run_job(job)
    expected = train.train(train.make_config(**TINY))
    assert np.array_equal(result["W_in"], expected["params"]["W_in"])
    assert np.array_equal(result["W_out"], expected["params"]["W_out"])
    assert np.array_equal(result["M"], expected["M"])
    assert np.array_equal(result["history"], expected["history"])
    assert float(result["sigma"]) == 0.03
    assert result["eval_p"].tolist() == [0.1, 1.0] and np.all(result["eval_n_samples"] >= 500)
    assert np.all(result["eval_loss_over_p"] > 0) and np.all(result["eval_stderr"] > 0)
    assert float(result["seconds"]) > 0


def test_the_evaluation_stops_at_max_samples():
    """min_samples = max_samples = 500 (with the default stderr target): at most 500 samples per p.

    Fails today: evaluate.loss_over_p draws whole chunks of chunk_size = 65,536 samples when sampling to a
    target, so the cap is overshot (65,536 samples, not 500).
    """
    result = jobs.run_job(tiny_job())
    assert result["eval_n_samples"].tolist() == [500, 500]


def test_run_jobs_reuses_the_cache(tmp_path):
    cache = jobs.JobCache(tmp_path)
    batch = [tiny_job(), tiny_job(seed=6), tiny_job()]          # a duplicate is trained once
    recorder = Recorder()
    first = jobs.run_jobs(batch, cache=cache, progress=recorder)
    assert len(first) == 3 and len(recorder.calls) == 2
    assert [(done, total) for done, total, _ in recorder.calls] == [(1, 2), (2, 2)]
    assert sorted(os.listdir(tmp_path)) == sorted(jobs.job_key(job) + ".npz" for job in batch[:2])
    second = jobs.run_jobs(batch, cache=cache, progress=never)  # nothing computed
    for a, b in zip(first, second):
        assert_same_arrays(a, b, skip=())


def test_run_jobs_without_a_cache_computes_every_time():
    recorder = Recorder()
    jobs.run_jobs([tiny_job()], progress=recorder)
    jobs.run_jobs([tiny_job()], progress=recorder)
    assert len(recorder.calls) == 2


def test_fine_tuning_trains_the_parent_first_and_starts_from_its_weights(tmp_path):
    parent = tiny_job()
    child = tiny_job(init_from=parent, task="clean")
    cache = jobs.JobCache(tmp_path)
    recorder = Recorder()
    [result] = jobs.run_jobs([child], cache=cache, progress=recorder)
    assert recorder.keys == [jobs.job_key(parent), jobs.job_key(child)]
    parent_result = cache.get(parent)
    assert parent_result is not None

    start = {k: parent_result[k] for k in ("W_in", "W_out")}
    expected = train.train(train.make_config(**dict(TINY, task="clean")), init_params=start)
    assert np.array_equal(result["W_in"], expected["params"]["W_in"])
    assert np.array_equal(result["W_out"], expected["params"]["W_out"])
    assert "M" not in result and float(result["sigma"]) == 0.0
    scratch = jobs.run_job(tiny_job(task="clean"))             # the same job without the parent differs
    assert not np.array_equal(result["W_in"], scratch["W_in"])
    assert_same_arrays(jobs.run_job(child), result)           # run_job alone trains the parent itself

    jobs.run_jobs([child], cache=cache, progress=never)        # both now cached
    os.remove(cache.path(child))
    recorder = Recorder()
    [again] = jobs.run_jobs([child], cache=cache, progress=recorder)
    assert recorder.keys == [jobs.job_key(child)]              # the cached parent is reused, not retrained
    assert_same_arrays(again, result)


def test_run_jobs_refuses_bad_workers():
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        jobs.run_jobs([tiny_job()], workers=0)
    with pytest.raises(TypeError, match="workers must be an integer"):
        jobs.run_jobs([tiny_job()], workers=1.5)


SERIAL_SCRIPT = """
import json, sys
import numpy as np
from cc_numpy.pipeline import jobs
batch = json.load(open(sys.argv[1]))
results = jobs.run_jobs(batch, workers=1)
arrays = {f"{i}/{k}": v for i, result in enumerate(results) for k, v in result.items()}
np.savez(sys.argv[2], keys=np.array([jobs.job_key(job) for job in batch]), **arrays)
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_parallel_workers_give_the_bits_of_a_serial_run_with_any_blas_threads(tmp_path, threads):
    parent = tiny_job(seed=7)
    batch = [tiny_job(), parent, tiny_job(init_from=parent, task="clean"), tiny_job(model="residual", task="residual")]
    (tmp_path / "jobs.json").write_text(json.dumps(batch))
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    serial = subprocess.Popen([sys.executable, "-c", SERIAL_SCRIPT, str(tmp_path / "jobs.json"),
                               str(tmp_path / "serial.npz")], env=env, stderr=subprocess.PIPE, text=True)
    recorder = Recorder()
    environment = dict(os.environ)
    parallel = jobs.run_jobs(batch, cache=jobs.JobCache(tmp_path / "cache"), workers=2, progress=recorder)
    assert dict(os.environ) == environment                      # the workers' BLAS settings are undone
    _, stderr = serial.communicate(timeout=120)
    assert serial.returncode == 0, stderr
    keys = recorder.keys
    assert sorted(keys) == sorted(jobs.job_key(job) for job in batch)
    assert keys.index(jobs.job_key(parent)) < keys.index(jobs.job_key(batch[2]))
    with np.load(tmp_path / "serial.npz") as archive:
        saved = {k: archive[k] for k in archive.files}
    assert saved.pop("keys").tolist() == [jobs.job_key(job) for job in batch]   # keys agree across processes
    for i, result in enumerate(parallel):
        assert_same_arrays({k.split("/", 1)[1]: v for k, v in saved.items() if k.startswith(f"{i}/")}, result)
    assert "W_E" in parallel[3]


# ---------------------------------------------------------------- follow-ups (an experiment's analysis)

@pytest.mark.parametrize("workers", [1, 2])
def test_follow_ups_run_once_their_jobs_are_done_and_see_them_and_their_ancestors(tmp_path, workers):
    parent = tiny_job(seed=7)
    child, other = tiny_job(init_from=parent, task="clean"), tiny_job()
    values = {}
    results = jobs.run_jobs([other, child], cache=jobs.JobCache(tmp_path / "cache"), workers=workers,
                            then=[([child], sorted, ()), ([other, child], len, ())],
                            then_done=lambda index, value: values.setdefault(index, value))
    assert values == {0: sorted([jobs.job_key(parent), jobs.job_key(child)]), 1: 3}
    assert [r["history"].shape for r in results] == [(20,), (20,)]


def test_follow_ups_run_when_every_job_is_cached(tmp_path):
    cache = jobs.JobCache(tmp_path / "cache")
    jobs.run_jobs([tiny_job()], cache=cache)
    values = []
    jobs.run_jobs([tiny_job()], cache=cache, workers=2, progress=never, then=[([tiny_job()], len, ())] * 2,
                  then_done=lambda index, value: values.append((index, value)))
    assert sorted(values) == [(0, 1), (1, 1)]


def test_a_follow_up_that_needs_an_unknown_job_is_refused():
    with pytest.raises(ValueError, match="not in jobs"):
        jobs.run_jobs([tiny_job()], then=[([tiny_job(seed=99)], len, ())])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_follow_up_lets_the_trainings_and_other_follow_ups_finish_then_raises(tmp_path, workers):
    first, second = tiny_job(), tiny_job(seed=6)
    values = []
    failing = int if workers == 1 else dict.values              # an error; a value that cannot be pickled
    with pytest.raises((TypeError, RuntimeError)):
        jobs.run_jobs([first, second], cache=jobs.JobCache(tmp_path / "cache"), workers=workers,
                      then=[([first], failing, ()), ([second], len, ())],
                      then_done=lambda index, value: values.append((index, value)))
    assert values == [(1, 1)]                                    # the other follow-up ran and was delivered
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(f"{jobs.job_key(j)}.npz" for j in (first, second))


def test_a_worker_that_dies_is_reported_as_such_and_finished_trainings_stay_cached(tmp_path):
    from cli_support import end_this_process

    job = tiny_job()
    with pytest.raises(jobs.WorkerDied, match="worker process died"):
        jobs.run_jobs([job], cache=jobs.JobCache(tmp_path / "cache"), workers=2,
                      then=[([job], end_this_process, (9,))])
    assert os.listdir(tmp_path / "cache") == [f"{jobs.job_key(job)}.npz"]


def test_a_follow_up_runs_while_other_trainings_are_still_going(tmp_path):
    quick, slow = tiny_job(), tiny_job(seed=9, steps=20_000)    # milliseconds against seconds
    events = []
    jobs.run_jobs([quick, slow], cache=jobs.JobCache(tmp_path / "cache"), workers=2,
                  progress=lambda done, total, job, seconds: events.append(("trained", jobs.job_key(job))),
                  then=[([quick], len, ())], then_done=lambda index, value: events.append(("analysed", value)))
    assert events.index(("analysed", 1)) < events.index(("trained", jobs.job_key(slow)))
