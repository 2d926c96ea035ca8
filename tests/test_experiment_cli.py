"""Tests for the experiment commands of the command line: reproduce, the per-figure commands, snmf."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# reproduce is imported at collection on purpose (noqa: unused): its stream default binds now, see
# test_experiment_commands_report_progress_on_the_current_stderr.
from cc_numpy.core import evaluate, validate
from cc_numpy import reproduce  # noqa: F401
from cc_numpy.experiments import EXPERIMENTS, Results, command_name
from cc_numpy.pipeline import jobs
from cc_numpy.pipeline.scale import TEST, make_scale, seeds
from cc_numpy.pipeline.jobs import job_key
from cc_numpy.reproduce import estimate_size
from cc_numpy.analyses import small_p  # noqa: F401
from cc_numpy.core.data import mixing_matrix, random_streams
from cc_numpy.core.runs import load_run
from cc_numpy.core.storage import load_json, load_npz
from cli_support import assert_user_error, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def assert_png(path):
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


# ---------------------------------------------------------------- reproduce and the per-figure commands

@pytest.mark.slow
def test_reproduce_only_naive_offset_as_a_subprocess(tmp_path):
    out = tmp_path / "base"
    done = subprocess.run([sys.executable, "-m", "cc_numpy", "reproduce", "--only", "naive-offset", "--out", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "1 experiments, 0 trainings" in done.stderr
    assert os.listdir(out / "cache") == []                     # nothing was trained
    assert_png(out / "figures" / "naive_offset.png")
    assert os.listdir(out / "figures") == ["naive_offset.png"] and os.listdir(out / "numbers") == ["naive_offset.json"]
    report = (out / "REPORT.md").read_text(encoding="utf-8")
    assert "Scale: **paper**" in report
    assert all(row["statement"].replace("|", "\\|") in report for row in EXPERIMENTS["naive_offset"].CLAIMS)


def test_sigma_sweep_command_at_the_test_scale(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, _, err = run_cli(["sigma-sweep", "--scale", "test", "--out", str(out), "--workers", "1"], capsys)
    assert code == 0, err
    assert_png(out / "figures" / "sigma_sweep.png")
    assert os.listdir(out / "figures") == ["sigma_sweep.png"] and os.listdir(out / "numbers") == ["sigma_sweep.json"]
    module = EXPERIMENTS["sigma_sweep"]
    sweep_jobs = module.jobs(TEST, seeds(TEST))
    assert sorted(os.listdir(out / "cache")) == sorted(jobs.job_key(job) + ".npz" for job in sweep_jobs)
    numbers = load_json(out / "numbers" / "sigma_sweep.json")

    def never(*args):
        raise AssertionError("the cached sweep was trained again")

    cached = jobs.run_jobs(sweep_jobs, cache=jobs.JobCache(out / "cache"), progress=never)
    expected = module.numbers(Results({jobs.job_key(j): r for j, r in zip(sweep_jobs, cached)}), TEST, seeds(TEST))
    assert numbers.pop("_run") == {"scale_name": "test", "full_scale": False, "seeds": seeds(TEST)}
    assert json.dumps(numbers, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert module.CLAIMS[1]["statement"] in (out / "REPORT.md").read_text(encoding="utf-8")


def test_experiment_commands_report_progress_on_the_current_stderr(tmp_path, capsys):
    """The progress lines go to sys.stderr as it is when the command runs (here: pytest's capsys)."""
    code, _, err = run_cli(["sigma-sweep", "--scale", "test", "--steps", "2", "--sigma-points", "2",
                            "--out", str(tmp_path / "sweep"), "--workers", "1"], capsys)
    assert code == 0, err
    assert "[4/4 trainings]" in err and "1 worker(s)" in err and "analysed sigma_sweep" in err


def test_a_per_figure_command_applies_the_scale_flags(tmp_path, capsys):
    out = tmp_path / "sweep"
    code, _, err = run_cli(["sigma-sweep", "--scale", "test", "--steps", "3", "--sigma-points", "2", "--seeds", "2",
                            "--out", str(out), "--workers", "1", "--first-seed", "2"], capsys)
    assert code == 0, err
    scale = make_scale("test", steps=3, sigma_points=2, seeds=2)
    expected = EXPERIMENTS["sigma_sweep"].jobs(scale, [2, 3])
    assert sorted(os.listdir(out / "cache")) == sorted(jobs.job_key(job) + ".npz" for job in expected)
    assert load_json(out / "numbers" / "sigma_sweep.json")["sigma"] == [0.0, scale["sigma_max"]]
    assert "seeds 2, 3" in (out / "REPORT.md").read_text(encoding="utf-8")


def test_every_experiment_has_a_command_of_its_name(capsys):
    for name in EXPERIMENTS:
        code, out, _ = run_cli([command_name(name), "--help"], capsys)
        assert code == 0 and "--seeds" in out


# ---------------------------------------------------------------- snmf, then evaluate

@pytest.fixture
def snmf_run(tmp_path, capsys):
    out = tmp_path / "snmf"
    code, stdout, err = run_cli(["snmf", "--sigma", "0.01", "--iterations", "50", "--out", str(out)], capsys)
    assert code == 0, err
    return out, stdout


def test_snmf_writes_a_run_with_non_negative_input_weights(snmf_run):
    out, stdout = snmf_run
    assert sorted(os.listdir(out)) == ["metrics.json", "weights.npz"]
    weights = load_npz(out / "weights.npz")
    assert set(weights) == {"W_in", "W_out", "M", "sigma"}
    W_in, W_out, M = weights["W_in"], weights["W_out"], weights["M"]
    assert W_in.shape == (50, 100) and W_out.shape == (100, 50) and M.shape == (100, 100)
    assert np.all(W_in >= 0) and np.any(W_in > 0)
    assert float(weights["sigma"]) == 0.01
    np.testing.assert_array_equal(M, mixing_matrix("asymmetric", 100, random_streams(0)["matrix"]))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 50 and metrics["target"] == "ours" and metrics["config"]["task"] == "mixed"
    exact = small_p.small_p_loss(W_in, W_out, M, 0.01)
    assert metrics["small_p_loss_over_p"] == pytest.approx(exact, rel=1e-12)
    assert metrics["clean_label_small_p_loss_over_p"] == pytest.approx(small_p.small_p_loss(W_in, W_out), rel=1e-12)
    assert metrics["naive_small_p_loss_over_p"] == pytest.approx(1 / 12)
    assert f"{exact:.5f}" in stdout and "wrote" in stdout


def test_the_authors_target_gives_another_factorisation(snmf_run, tmp_path, capsys):
    out, _ = snmf_run
    other = tmp_path / "authors"
    code, _, err = run_cli(["snmf", "--sigma", "0.01", "--iterations", "50", "--target", "authors",
                            "--out", str(other)], capsys)
    assert code == 0, err
    assert not np.array_equal(load_npz(out / "weights.npz")["W_out"], load_npz(other / "weights.npz")["W_out"])
    assert json.loads((other / "metrics.json").read_text())["target"] == "authors"


def test_evaluate_works_on_an_snmf_run(snmf_run, capsys):
    out, _ = snmf_run
    code, stdout, err = run_cli(["evaluate", str(out), "--p", "0.01", "--samples", "2000"], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert "task mixed" in lines[0] and len(lines) == 2
    row = lines[1].split()
    params, M, sigma, _ = load_run(out)
    expected = evaluate.loss_over_p(params, 0.01, random_streams(0)["eval"], task="mixed", M=M, sigma=sigma,
                                    n_samples=2000)
    assert float(row[0]) == pytest.approx(0.01)
    assert row[1] == f"{expected['loss_over_p']:.5f}" and row[2] == f"{expected['stderr']:.5f}"
    assert int(row[3]) == 2000


# ---------------------------------------------------------------- bad flags

@pytest.mark.parametrize("argv, message", [
    (["reproduce", "--workers", "0"], "must be a whole number >= 1"),
    (["reproduce", "--only", "bogus"], "invalid choice"),
    (["reproduce", "--first-seed", "-1"], "must be a whole number >= 0"),
    (["reproduce", "--seeds", "0"], "must be a whole number >= 1"),
    (["sigma-sweep", "--workers", "0"], "must be a whole number >= 1"),
    (["sigma-sweep", "--scale", "bogus"], "invalid choice"),
    (["sigma-sweep", "--steps", "0"], "must be a whole number >= 1"),
    (["sigma-sweep", "--target-stderr", "nan"], "must be a finite number"),
    (["low-rank", "--workers", "two"], "--workers"),
    (["snmf", "--target", "bogus"], "invalid choice"),
    (["snmf", "--sigma", "inf"], "must be a finite number"),
    (["snmf", "--iterations", "0"], "must be a whole number >= 1"),
    (["snmf", "--mixing", "gaussian"], "invalid choice"),
    (["reproduce", "--scale", "test", "--first-seed", str(2 ** 40)], "2**32"),
])
def test_bad_flags_exit_2_with_a_message(argv, message, tmp_path, capsys):
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_user_error(code, err, message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["sigma-sweep", "--scale", "test", "--target-stderr", "0"], "--target-stderr"),
    (["snmf", "--n", "20", "--iterations", "5"], "d-mlp"),
])
def test_bad_settings_exit_2_with_a_message(argv, message, tmp_path, capsys):
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_user_error(code, err, message)
    assert not (tmp_path / "out" / "weights.npz").exists() and not (tmp_path / "out" / "REPORT.md").exists()


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "--seeds", "1e9"], "lower --seeds (at most"),                    # what memory can hold
    (["sigma-sweep", "--sigma-points", "1e9"], "lower --sigma-points (at most"),
    (["snmf-sweep", "--scale", "test", "--sigma-points", "1e9"], "lower --sigma-points"),
    (["naive-offset", "--scale", "test", "--seeds", "1e9"], "lower --seeds"),
    (["eigen", "--seeds", "100000", "--steps", "1"], "lower --seeds"),             # eigen has its own steps
    (["seeds", "--scale", "test", "--steps", "1e9"], "lower --steps"),
    (["seeds", "--scale", "test", "--eval-points", "1e9"], "lower --eval-points"),
    (["seeds", "--scale", "test", "--workers", "200"], "--workers"),
])
def test_what_memory_cannot_hold_is_refused_naming_the_flag(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(validate, "physical_memory", lambda: 16 * 10 ** 9)   # the same verdict on any machine

    def no_training(*args, **kwargs):
        raise AssertionError("a refused run must not train")
    monkeypatch.setattr(reproduce, "run_jobs", no_training)
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_user_error(code, err, message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("names", [[name] for name in EXPERIMENTS] + [list(EXPERIMENTS)],
                         ids=list(EXPERIMENTS) + ["all"])
def test_the_size_estimate_counts_at_least_every_training_an_experiment_plans(names):
    for base, sizes in (("test", dict(seeds=2, sigma_points=25)), ("quick", dict(sigma_points=5)),
                        ("test", dict(seeds=4, sigma_points=2)), ("paper", {})):
        scale = make_scale(base, **sizes)
        planned = {job_key(job) for name in names for job in EXPERIMENTS[name].jobs(scale, list(range(scale["seeds"])))}
        assert estimate_size(scale, names)[1] == len(planned), (base, sizes)          # counted job by job
    scale = make_scale("test", seeds=17, sigma_points=30)                             # extrapolated: an estimate
    planned = {job_key(job) for name in names for job in EXPERIMENTS[name].jobs(scale, list(range(17)))}
    assert 0.9 * len(planned) <= estimate_size(scale, names)[1] <= 1.5 * len(planned) + 2


def test_an_output_file_that_is_a_folder_stops_a_pipeline_before_any_training(tmp_path, capsys):
    (tmp_path / "out" / "numbers" / "sigma_sweep.json").mkdir(parents=True)
    code, _, err = run_cli(["sigma-sweep", "--scale", "test", "--out", str(tmp_path / "out")], capsys)
    assert_user_error(code, err, "sigma_sweep.json")
    assert not any((tmp_path / "out" / "cache").glob("*.npz"))


def test_experiment_help_lists_the_scale_flags(capsys):
    code, out, _ = run_cli(["sigma-sweep", "--help"], capsys)
    assert code == 0
    assert all(flag in out for flag in ("--scale", "--steps", "--sigma-points", "--workers", "--out", "--seed"))
    code, out, _ = run_cli(["reproduce", "--help"], capsys)
    assert code == 0 and all(flag in out for flag in ("--only", "--quick", "--seeds", "--first-seed"))


def test_paper_only_runs_the_experiments_of_the_paper_figures(tmp_path, capsys, monkeypatch):
    from cc_numpy import reproduce as reproduce_module
    from cc_numpy.experiments import paper_experiments

    calls = []
    monkeypatch.setattr(reproduce_module, "reproduce", lambda out, **kwargs: calls.append(kwargs))
    code, _, err = run_cli(["reproduce", "--paper-only", "--scale", "test", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert calls[0]["only"] == paper_experiments()
    assert "width_sweep" in EXPERIMENTS and "width_sweep" not in paper_experiments()
    assert len(paper_experiments()) == 10
    code, _, err = run_cli(["reproduce", "--paper-only", "--only", "eigen", "--out", str(tmp_path / "o2")], capsys)
    assert_user_error(code, err, "--paper-only")
