"""Tests for the command line (cc_numpy.__main__) and the process settings it applies (cc_numpy.core.runtime)."""

import json
import os
import subprocess
import sys

import numpy as np

from cc_numpy.core.data import random_streams
import pytest

from cc_numpy.core import evaluate, runtime, train
from cc_numpy.core.runs import load_run
from cc_numpy.core.storage import load_npz
from cli_support import assert_user_error, run_cli

TINY = ["--n", "8", "--d-mlp", "4", "--d", "32", "--steps", "20", "--batch-size", "64", "--p", "0.1",
        "--seed", "4", "--quiet"]


def tiny_config(**extra):
    return train.make_config(n=8, d_mlp=4, d=32, steps=20, batch_size=64, p=0.1, seed=4, **extra)


@pytest.fixture
def trained_run(tmp_path, capsys):
    """A tiny mixed-task MLP run written by the CLI."""
    out = tmp_path / "run"
    code, _, _ = run_cli(["train", *TINY, "--eval-samples", "0", "--out", str(out)], capsys)
    assert code == 0
    return out


# ---------------------------------------------------------------- train

def test_train_writes_weights_metrics_and_history(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli(["train", *TINY, "--eval-samples", "2000", "--out", str(out)], capsys)
    assert code == 0, stderr
    assert sorted(os.listdir(out)) == ["history.npz", "metrics.json", "weights.npz"]
    weights = load_npz(out / "weights.npz")
    assert set(weights) == {"W_in", "W_out", "M", "sigma"}
    expected = train.train(tiny_config())                        # the same config through the library
    for key in ("W_in", "W_out"):
        np.testing.assert_array_equal(weights[key], expected["params"][key])
    np.testing.assert_array_equal(weights["M"], expected["M"])
    assert float(weights["sigma"]) == expected["sigma"] == 0.03
    history = load_npz(out / "history.npz")
    np.testing.assert_array_equal(history["loss"], expected["history"])
    assert "sigma" not in history
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"] == json.loads(json.dumps(expected["config"]))
    assert metrics["evaluation"]["n_samples"] == 2000 and metrics["evaluation"]["p"] == 0.1
    assert metrics["evaluation"]["loss_over_p"] > 0 and metrics["evaluation"]["stderr"] > 0
    assert f"{metrics['evaluation']['loss_over_p']:.5f}" in stdout
    assert "wrote" in stdout


def test_train_residual_model_writes_the_embedding(tmp_path, capsys):
    out = tmp_path / "res"
    code, _, stderr = run_cli(["train", *TINY, "--model", "residual", "--eval-samples", "500", "--out", str(out)],
                              capsys)
    assert code == 0, stderr
    weights = load_npz(out / "weights.npz")
    assert set(weights) == {"W_E", "W_in", "W_out"}
    assert weights["W_E"].shape == (32, 8) and weights["W_in"].shape == (4, 32)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["task"] == "residual" and metrics["sigma"] == 0.0


def test_train_with_learned_sigma_records_it(tmp_path, capsys):
    out = tmp_path / "sig"
    code, _, stderr = run_cli(["train", *TINY, "--learn-sigma", "--sigma-init", "0.02", "--mixing", "symmetric",
                               "--eval-samples", "0", "--out", str(out)], capsys)
    assert code == 0, stderr
    expected = train.train(tiny_config(learn_sigma=True, sigma_init=0.02, mixing="symmetric"))
    weights, history = load_npz(out / "weights.npz"), load_npz(out / "history.npz")
    assert float(weights["sigma"]) == pytest.approx(expected["sigma"], rel=1e-6)
    np.testing.assert_array_equal(history["sigma"], expected["sigma_history"])
    assert history["sigma"][0] == pytest.approx(0.02, rel=1e-6)
    assert "evaluation" not in json.loads((out / "metrics.json").read_text())


def test_train_with_checkpoints_gives_the_same_weights_and_removes_the_checkpoint(tmp_path, capsys):
    plain, checked = tmp_path / "plain", tmp_path / "checked"
    assert run_cli(["train", *TINY, "--eval-samples", "0", "--out", str(plain)], capsys)[0] == 0
    assert run_cli(["train", *TINY, "--eval-samples", "0", "--checkpoint-every", "5", "--out", str(checked)],
                   capsys)[0] == 0
    assert not (checked / "checkpoint.npz").exists()
    a, b = load_npz(plain / "weights.npz"), load_npz(checked / "weights.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_train_shows_progress_unless_quiet(tmp_path, capsys):
    argv = [a for a in TINY if a != "--quiet"]
    code, _, stderr = run_cli(["train", *argv, "--eval-samples", "0", "--out", str(tmp_path / "r")], capsys)
    assert code == 0
    assert "training mlp on the mixed task" in stderr and "running L/p" in stderr and "20/20" in stderr


def test_train_as_a_subprocess(tmp_path):
    out = tmp_path / "sub"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "cc_numpy", "train", *TINY, "--model", "residual",
                           "--eval-samples", "500", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "Traceback" not in done.stderr
    params, M, sigma, metrics = load_run(out)
    assert set(params) == {"W_E", "W_in", "W_out"} and M is None
    assert metrics["config"]["model"] == "residual" and metrics["evaluation"]["n_samples"] == 500


# ---------------------------------------------------------------- evaluate

def test_evaluate_prints_a_table_of_loss_over_p(trained_run, tmp_path, capsys):
    json_out = tmp_path / "curve.json"
    code, stdout, stderr = run_cli(["evaluate", str(trained_run), "--p", "0.05", "0.5", "--samples", "3000",
                                    "--seed", "7", "--out", str(json_out)], capsys)
    assert code == 0, stderr
    lines = stdout.strip().splitlines()
    assert "L/p" in lines[0] and "stderr" in lines[0] and "task mixed" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 2
    params, M, sigma, _ = load_run(trained_run)
    expected = evaluate.loss_over_p_curve(params, [0.05, 0.5], random_streams(7)["eval"], task="mixed", M=M,
                                          sigma=sigma, n_samples=3000)
    for row, p, value, err in zip(rows, expected["p"], expected["loss_over_p"], expected["stderr"]):
        assert float(row[0]) == pytest.approx(p)
        assert row[1] == f"{value:.5f}" and row[2] == f"{err:.5f}" and int(row[3]) == 3000
    saved = json.loads(json_out.read_text())
    assert saved["task"] == "mixed" and saved["p"] == [0.05, 0.5]


@pytest.mark.parametrize("name", ["weights.npz", "metrics.json", "curve.txt"])
def test_evaluate_never_writes_over_its_run_and_only_json(trained_run, name, capsys):
    before = {path.name: path.read_bytes() for path in trained_run.iterdir()}
    code, _, err = run_cli(["evaluate", str(trained_run), "--p", "0.5", "--samples", "100",
                            "--out", str(trained_run / name)], capsys)
    assert_user_error(code, err, "--out")
    assert {path.name: path.read_bytes() for path in trained_run.iterdir()} == before


def test_evaluate_warns_when_a_run_has_no_metrics(trained_run, capsys):
    os.remove(trained_run / "metrics.json")
    code, _, err = run_cli(["evaluate", str(trained_run), "--p", "0.5", "--samples", "200"], capsys)
    assert code == 0 and "no metrics.json" in err


def test_a_negative_sigma_in_e_notation_is_a_value_not_a_flag(tmp_path, capsys):
    code, _, err = run_cli(["train", *TINY, "--sigma", "-1e-3", "--eval-samples", "0", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["sigma"] == -1e-3


@pytest.mark.parametrize("argv, flag", [
    (["train", "--mod", "mlp"], "--mod"),                                 # no abbreviations: a typo is an error
    (["reproduce", "--quick", "--scale", "paper"], "--quick"),
])
def test_flags_that_would_be_ignored_or_misread_are_refused(argv, flag, tmp_path, capsys):
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "out")], capsys)
    assert_user_error(code, err, flag)
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_a_sample_cap_it_would_ignore(trained_run, capsys):
    code, _, err = run_cli(["evaluate", str(trained_run), "--samples", "500", "--max-samples", "1000"], capsys)
    assert_user_error(code, err, "--max-samples")
    code, _, err = run_cli(["evaluate", str(trained_run), "--samples", "500", "--target-stderr", "0.1",
                            "--max-samples", "100"], capsys)
    assert_user_error(code, err, "--max-samples")


def test_evaluate_reaches_a_target_stderr(trained_run, capsys):
    code, stdout, stderr = run_cli(["evaluate", str(trained_run), "--p", "0.5", "--samples", "100",
                                    "--target-stderr", "0.05"], capsys)
    assert code == 0, stderr
    row = stdout.strip().splitlines()[1].split()
    assert float(row[2]) <= 0.05


def test_evaluate_a_missing_run_is_a_user_error(tmp_path, capsys):
    code, _, err = run_cli(["evaluate", str(tmp_path / "nothing"), "--samples", "10"], capsys)
    assert_user_error(code, err, "no such file")


def test_evaluate_a_corrupt_weights_file_is_a_user_error(trained_run, capsys):
    (trained_run / "weights.npz").write_bytes(b"garbage, not an npz")
    code, _, err = run_cli(["evaluate", str(trained_run), "--samples", "10"], capsys)
    assert_user_error(code, err, "weights.npz")


def test_evaluate_a_truncated_weights_file_as_a_subprocess(trained_run):
    data_bytes = (trained_run / "weights.npz").read_bytes()
    (trained_run / "weights.npz").write_bytes(data_bytes[: len(data_bytes) // 2])
    done = subprocess.run([sys.executable, "-m", "cc_numpy", "evaluate", str(trained_run), "--samples", "10"],
                          capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
                          timeout=120)
    assert_user_error(done.returncode, done.stderr, "weights.npz")


def test_evaluate_a_non_positive_target_stderr_is_a_user_error(trained_run, capsys):
    code, _, err = run_cli(["evaluate", str(trained_run), "--target-stderr", "0"], capsys)
    assert_user_error(code, err, "--target-stderr")


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv, name", [
    (["train", "--p", "0"], "--p"),
    (["train", "--p", "2"], "--p"),
    (["train", "--p", "nan"], "--p"),
    (["train", "--p", "abc"], "--p"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--steps", "1.5"], "--steps"),
    (["train", "--batch-size", "-4"], "--batch-size"),
    (["train", "--n", "2.5"], "--n"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--sigma", "inf"], "--sigma"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--weight-decay", "-0.5"], "--weight-decay"),
    (["train", "--model", "transformer"], "--model"),
    (["train", "--mixing", "gaussian"], "--mixing"),
    (["train", "--task", "relu"], "--task"),
    (["train", "--learning-rate", "0.1"], "--learning-rate"),
    (["evaluate", "somewhere", "--p", "0"], "--p"),
    (["evaluate", "somewhere", "--p", "1.5"], "--p"),
    (["evaluate", "somewhere", "--samples", "1"], "--samples"),      # no standard error from one sample
    (["evaluate", "somewhere", "--target-stderr", "0"], "--target-stderr"),
    (["evaluate"], "run"),
    ([], "COMMAND"),
    (["fit"], "fit"),
])
def test_bad_flags_exit_2_with_one_error_line_naming_the_flag(argv, name, capsys):
    code, _, err = run_cli(argv, capsys)
    assert_user_error(code, err, name)


@pytest.mark.parametrize("extra, name", [
    (["--mixing", "lowrank", "--rank", "20"], "--rank"),            # rank > n
    (["--rank", "3"], "--rank"),                                     # ignored by a full-rank M
    (["--learn-sigma", "--task", "clean"], "--learn-sigma"),
    (["--sigma", "0.1", "--task", "clean"], "--sigma"),              # ignored by the clean task
    (["--sigma", "0.1", "--learn-sigma"], "--sigma"),                # ignored when σ is learned
    (["--sigma-init", "0.1"], "--sigma-init"),                       # ignored unless σ is learned
    (["--mixing", "symmetric", "--model", "residual"], "--mixing"),  # the residual task has no M
    (["--p", "1e-300"], "--p"),                                      # a batch would hold no active feature
    (["--steps", "1e15"], "--steps"),                                # cannot fit in memory
    (["--batch-size", "1e12"], "--batch-size"),
    (["--n", "1000000"], "--n"),
    (["--model", "residual", "--d", "1000000000"], "--d"),
    (["--checkpoint-every", "50"], "--checkpoint-every"),            # never below --steps 20: never written
    (["--lr", "1e6"], "diverged"),
])
def test_bad_training_settings_exit_2_before_any_work(tmp_path, extra, name, capsys):
    code, _, err = run_cli(["train", *TINY, "--eval-samples", "0", "--out", str(tmp_path / "r"), *extra], capsys)
    assert_user_error(code, err, name)
    assert not (tmp_path / "r" / "weights.npz").exists()


def test_train_into_a_path_that_is_a_file_exits_2(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    done = subprocess.run([sys.executable, "-m", "cc_numpy", "train", *TINY, "--eval-samples", "0",
                           "--out", str(target)],
                          capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
                          timeout=120)
    assert_user_error(done.returncode, done.stderr, str(target))


# ---------------------------------------------------------------- help

def help_text(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    return out


def test_train_help_mentions_every_flag(capsys):
    text = help_text("train", capsys)
    flags = ["--" + key.replace("_", "-") for key in train.DEFAULT_CONFIG]       # every config key
    flags += ["--task", "--learn-sigma", "--out", "--eval-samples", "--checkpoint-every", "--quiet"]
    missing = [flag for flag in flags if flag not in text]
    assert missing == []
    assert "(0, 1]" in text and "default: 0.003" in text


def test_evaluate_help_mentions_every_flag(capsys):
    text = help_text("evaluate", capsys)
    missing = [flag for flag in ("run", "--p", "--samples", "--target-stderr", "--seed", "--out") if flag not in text]
    assert missing == []


def test_top_level_help_lists_the_commands(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "train" in out and "evaluate" in out


# ---------------------------------------------------------------- runtime

def test_single_thread_blas_env_sets_only_unset_variables():
    environ = {"OMP_NUM_THREADS": "4"}
    result = runtime.single_thread_blas_env(environ=environ)
    assert result is environ
    assert environ == {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert runtime.single_thread_blas_env(3, environ={})["MKL_NUM_THREADS"] == "3"


def test_keep_freed_memory_reports_whether_it_applied():
    applied = runtime.keep_freed_memory()
    assert isinstance(applied, bool)
    if sys.platform.startswith("linux") and os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        assert applied
