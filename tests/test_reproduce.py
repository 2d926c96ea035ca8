"""Tests for the experiment pipeline: the experiment registry, cc_numpy.reproduce and REPORT.md.

One test-scale reproduction of every experiment (module fixture ``full_run``, two workers) is shared by the
report and figure tests; the cache and resume tests copy its folder or run small subsets.
"""

import io
import json
import os
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cc_numpy import reproduce
from cc_numpy.core.storage import load_json, load_npz
from cc_numpy.experiments import EXPERIMENTS, REQUIRED, Results, analysis_units, combine_seeds, command_name, resolve
from cc_numpy.pipeline import jobs
from cc_numpy.pipeline.scale import TEST, make_scale, seeds

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = seeds(TEST)


def unique_keys(names, scale=TEST):
    """Keys of every training the experiments ``names`` need, ancestors included."""
    keys = set()
    for name in names:
        for job in EXPERIMENTS[name].jobs(scale, seeds(scale)):
            while job is not None:
                keys.add(jobs.job_key(job))
                job = job["init_from"]
    return keys


def assert_png(path):
    assert os.path.isfile(path), path
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_MAGIC and os.path.getsize(path) > 1000, path


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Every experiment at the test scale, two workers: (out folder, returned numbers, stream text)."""
    out = tmp_path_factory.mktemp("reproduce") / "out"
    stream = io.StringIO()
    numbers = reproduce.reproduce(str(out), scale="test", workers=2, stream=stream)
    assert plt.get_fignums() == []
    return out, numbers, stream.getvalue()


# ---------------------------------------------------------------- the registry

def test_every_experiment_module_has_everything_and_a_command_of_its_own_name():
    assert len(EXPERIMENTS) >= 10
    for name, module in EXPERIMENTS.items():
        assert all(hasattr(module, attribute) for attribute in REQUIRED), name
        assert resolve(command_name(name)) == resolve(name) == name
    orders = [module.ORDER for module in EXPERIMENTS.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


def test_an_unknown_experiment_is_refused_naming_the_choices():
    with pytest.raises(ValueError) as raised:
        resolve("bogus")
    assert all(command_name(name) in str(raised.value) for name in EXPERIMENTS)


def test_numbers_look_results_up_by_job_not_by_position():
    """Shuffling the results mapping's insertion order changes nothing: results are found by key."""
    module = EXPERIMENTS["sigma_sweep"]
    scale = make_scale("test", steps=5, sigma_points=2)
    job_list = module.jobs(scale, [0])
    results = jobs.run_jobs(job_list)
    by_key = {jobs.job_key(j): r for j, r in zip(job_list, results)}
    forward = module.numbers(Results(by_key), scale, [0])
    backward = module.numbers(Results(dict(reversed(list(by_key.items())))), scale, [0])
    assert json.dumps(forward) == json.dumps(backward)
    first = module.jobs(scale, [0])[0]
    assert by_key[jobs.job_key(first)] is Results(by_key)[first]


def test_shared_trainings_are_one_job():
    scale = TEST
    sweep = {jobs.job_key(job) for job in EXPERIMENTS["sigma_sweep"].jobs(scale, SEEDS)}
    snmf = {jobs.job_key(job) for job in EXPERIMENTS["snmf_sweep"].jobs(scale, SEEDS)}
    assert snmf <= sweep
    mixing = {jobs.job_key(job) for job in EXPERIMENTS["mixing_types"].jobs(scale, SEEDS)}
    shared = {jobs.job_key(job) for job in EXPERIMENTS["seeds"].jobs(scale, SEEDS)} & mixing
    assert shared, "the seeds figure reuses the mixing-types models of the same seed"


def test_more_seeds_means_more_independent_trainings():
    one, three = make_scale("test", seeds=1), make_scale("test", seeds=3)
    module = EXPERIMENTS["sigma_sweep"]
    keys_one = {jobs.job_key(job) for job in module.jobs(one, seeds(one))}
    keys_three = {jobs.job_key(job) for job in module.jobs(three, seeds(three))}
    assert keys_one < keys_three and len(keys_three) == 3 * len(keys_one)
    assert {job["config"]["seed"] for job in module.jobs(three, seeds(three))} == {0, 1, 2}


# ---------------------------------------------------------------- the full run

@pytest.mark.slow
def test_full_run_writes_every_figure_numbers_file_and_the_report(full_run):
    out, numbers, _ = full_run
    assert sorted(numbers) == sorted(EXPERIMENTS)
    assert sorted(os.listdir(out / "figures")) == sorted(f"{name}.png" for name in EXPERIMENTS)   # no temp files
    assert sorted(os.listdir(out / "numbers")) == sorted(f"{name}.json" for name in EXPERIMENTS)
    for name in EXPERIMENTS:
        assert_png(out / "figures" / f"{name}.png")
        assert load_json(out / "numbers" / f"{name}.json") == json.loads(json.dumps(numbers[name]))
    text = (out / "REPORT.md").read_text(encoding="utf-8")
    assert "## 1. The paper's claims" in text and "## 2. Our measurements and checks" in text
    claims_part = text.split("## 2.")[0]
    for name, module in EXPERIMENTS.items():
        for row in module.CLAIMS:
            assert row["statement"].replace("|", "\\|") in claims_part
        for row in module.CHECKS:
            assert row["statement"].replace("|", "\\|") in text.split("## 2.")[1]
    assert "needs paper scale" in text and "PAPER_NOTES" not in text
    assert json.dumps(TEST, indent=1) in text


@pytest.mark.slow
def test_full_run_writes_where_its_time_went(full_run, capsys):
    import runpy

    out, _, _ = full_run
    timings = load_json(out / "timings.json")
    assert sorted(timings["analysis_seconds"]) == sorted(EXPERIMENTS)
    assert len(timings["computed"]) == len(unique_keys(EXPERIMENTS))
    assert all(0 <= job["train_seconds"] <= job["seconds"] for job in timings["computed"])
    bench = runpy.run_path(str(Path(__file__).resolve().parent.parent / "benchmarks" / "reproduction_share.py"))
    parts = bench["shares"](timings)
    assert sum(fraction for _, fraction in parts.values()) == pytest.approx(1.0)
    assert bench["main"]([str(out)]) == 0 and "analysis" in capsys.readouterr().out


@pytest.mark.slow
def test_full_run_trains_each_shared_job_once(full_run):
    out, _, stream = full_run
    keys = unique_keys(EXPERIMENTS)
    assert sorted(os.listdir(out / "cache")) == sorted(f"{key}.npz" for key in keys)
    assert f"{len(keys)} trainings, {len(keys)} not yet in the cache" in stream


@pytest.mark.slow
def test_a_second_run_reuses_the_cache_and_gives_the_same_report_rows(full_run, tmp_path, monkeypatch):
    out, _, _ = full_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    monkeypatch.setattr(jobs, "run_job", lambda *a, **k: pytest.fail("a cached training was recomputed"))
    stream = io.StringIO()
    reproduce.reproduce(str(copy), scale="test", workers=1, stream=stream)
    assert f"{len(unique_keys(EXPERIMENTS))} trainings, 0 not yet in the cache" in stream.getvalue()
    rows = lambda path: path.read_text(encoding="utf-8").split("## Settings")[0].splitlines()[3:]  # noqa: E731
    assert rows(copy / "REPORT.md") == rows(out / "REPORT.md")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_run_resumes_where_it_stopped(full_run, tmp_path, monkeypatch, workers):
    reference, _, _ = full_run
    out = tmp_path / "out"
    names, stop_after = ["finetune", "sigma_sweep"], 2
    original = reproduce.Progress.__call__

    def interrupting(self, done, total, job, seconds):
        original(self, done, total, job, seconds)
        if done == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(reproduce.Progress, "__call__", interrupting)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(str(out), scale="test", only=names, workers=workers, stream=io.StringIO())
    finished = set(os.listdir(out / "cache"))
    assert len(finished) >= stop_after                          # each finished training is in the cache
    assert not (out / "REPORT.md").exists() and not (out / "numbers").exists()
    monkeypatch.setattr(reproduce.Progress, "__call__", original)
    stream = io.StringIO()
    reproduce.reproduce(str(out), scale="test", only=names, workers=1, stream=stream)
    keys = unique_keys(names)
    assert f"{len(keys)} trainings, {len(keys) - len(finished)} not yet in the cache" in stream.getvalue()
    assert sorted(os.listdir(out / "figures")) == ["finetune.png", "sigma_sweep.png"]
    for name in sorted(os.listdir(out / "cache")):              # bit for bit the uninterrupted run's results
        resumed, uninterrupted = load_npz(out / "cache" / name), load_npz(reference / "cache" / name)
        for key in ("W_in", "W_out", "history", "eval_loss_over_p"):
            assert np.array_equal(resumed[key], uninterrupted[key]), (name, key)
    for name in names:
        assert (out / "numbers" / f"{name}.json").read_text() == (reference / "numbers" / f"{name}.json").read_text()


def test_only_one_experiment_runs_just_that_one_and_accepts_both_spellings(tmp_path):
    stream = io.StringIO()
    numbers = reproduce.reproduce(str(tmp_path), scale="test", only="naive-offset", workers=2, stream=stream)
    assert list(numbers) == ["naive_offset"]
    assert os.listdir(tmp_path / "figures") == ["naive_offset.png"]
    assert os.listdir(tmp_path / "numbers") == ["naive_offset.json"]
    text = (tmp_path / "REPORT.md").read_text(encoding="utf-8")
    assert all(row["statement"].replace("|", "\\|") in text for row in EXPERIMENTS["naive_offset"].CLAIMS)


def test_a_numbers_file_of_another_version_is_named_and_skipped(tmp_path):
    (tmp_path / "numbers").mkdir(parents=True)
    (tmp_path / "numbers" / "sigma_sweep.json").write_text('{"sigma": [0.0]}')     # the wrong structure
    stream = io.StringIO()
    reproduce.reproduce(str(tmp_path), scale="test", only="naive_offset", workers=1, stream=stream)
    assert "sigma_sweep.json" in stream.getvalue()
    assert "σ sweep" not in (tmp_path / "REPORT.md").read_text(encoding="utf-8").split("## 2.")[0]


@pytest.mark.parametrize("kwargs, error", [
    ({"only": "bogus"}, ValueError), ({"only": ["naive_offset", "bogus"]}, ValueError),
    ({"workers": 0}, ValueError), ({"scale": "huge"}, ValueError), ({"first_seed": -1}, ValueError),
])
def test_bad_input_raises_before_writing_anything(tmp_path, kwargs, error):
    out = tmp_path / "out"
    with pytest.raises(error):
        reproduce.reproduce(str(out), **dict({"scale": "test", "only": "naive_offset"}, **kwargs),
                            stream=io.StringIO())
    assert not out.exists()


@pytest.mark.parametrize("name", [name for name, module in EXPERIMENTS.items() if hasattr(module, "PER_SEED")])
def test_an_experiment_analysed_seed_by_seed_has_the_numbers_of_all_seeds_at_once(name):
    scale, chosen = make_scale("test"), [0, 1]
    module = EXPERIMENTS[name]
    needed = module.jobs(scale, chosen)
    results = Results({jobs.job_key(job): result for job, result in zip(needed, jobs.run_jobs(needed))})
    units = analysis_units(name, scale, chosen)
    assert [unit_seeds for _, unit_seeds in units] == [[0], [1]]
    per_seed = [module.numbers(Results({jobs.job_key(job): results[job] for job in jobs.ancestors_first(unit_jobs)}),
                               scale, unit_seeds) for unit_jobs, unit_seeds in units]     # each sees its own jobs only
    together = module.numbers(results, scale, chosen)
    assert json.dumps(combine_seeds(name, per_seed, chosen), sort_keys=True) == json.dumps(together, sort_keys=True)
    assert json.dumps(per_seed[0], sort_keys=True) != json.dumps(per_seed[1], sort_keys=True)   # the seeds differ
