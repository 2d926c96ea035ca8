"""Fault injection: damaged files, unwritable or full locations, random flag values and interrupts.

Every outcome must be a result or exactly one ``error:`` line with exit status 2 (130 for Ctrl-C):
never a traceback, never a hang, never a partial file, never a finished run that fails to save.
"""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cc_numpy.core import runs, storage, train
from cc_numpy.pipeline import jobs
from cli_support import assert_user_error, run_cli

TINY = ["--n", "8", "--d-mlp", "4", "--d", "32", "--steps", "20", "--batch-size", "64", "--p", "0.1",
        "--seed", "4", "--quiet"]
TINY_CONFIG = dict(n=8, d_mlp=4, d=32, steps=20, batch_size=64, p=0.1, seed=4)
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def no_partial_files(folder):
    """No temporary file anywhere below ``folder`` and every .npz / .json there loads."""
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            assert not name.startswith((".tmp-", ".probe-")) and ".tmp" not in name, path
            if name.endswith(".npz"):
                storage.load_npz(path)
            elif name.endswith(".json"):
                storage.load_json(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny mixed-task run written by the library (a template: tests damage copies of it)."""
    folder = tmp_path_factory.mktemp("template")
    result = train.train(train.make_config(**TINY_CONFIG))
    runs.save_run(folder, result["params"], result["M"], result["sigma"], {"config": result["config"]},
                  result["history"])
    return folder


@pytest.fixture
def run_copy(run_dir, tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    for name in os.listdir(run_dir):
        (target / name).write_bytes((run_dir / name).read_bytes())
    return target


# ---------------------------------------------------------------- damaged weights.npz / metrics.json

def rewrite_npz(path, change):
    arrays = storage.load_npz(path)
    change(arrays)
    storage.save_npz(path, arrays)


def truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def write_npy(path):
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))


def write_zip_of_text(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("W_in.txt", "1 2 3")


NPZ_DAMAGE = {
    "truncated": (truncate, None),
    "empty": (lambda path: path.write_bytes(b""), None),
    "plain text": (lambda path: path.write_text("W_in = [[1, 2], [3, 4]]\n"), None),
    "random bytes": (lambda path: path.write_bytes(np.random.default_rng(0).bytes(4096)), None),
    "a pickle": (lambda path: path.write_bytes(pickle.dumps({"W_in": [1.0]})), None),
    "an .npy array": (write_npy, None),
    "a zip of text": (write_zip_of_text, None),
    "missing key": (lambda path: rewrite_npz(path, lambda a: a.pop("W_out")), "W_out"),
    "NaN weight": (lambda path: rewrite_npz(path, lambda a: a["W_in"].__setitem__((0, 0), np.nan)), "W_in"),
    "inf weight": (lambda path: rewrite_npz(path, lambda a: a["W_out"].__setitem__((1, 1), np.inf)), "W_out"),
    "complex weight": (lambda path: rewrite_npz(path, lambda a: a.update(W_in=a["W_in"] + 1j)), "W_in"),
    "string weight": (lambda path: rewrite_npz(path, lambda a: a.update(W_in=a["W_in"].astype(str))), "W_in"),
    "bool weight": (lambda path: rewrite_npz(path, lambda a: a.update(W_in=a["W_in"] > 0)), "W_in"),
    "wrong shape": (lambda path: rewrite_npz(path, lambda a: a.update(W_out=a["W_out"][:3])), "W_out"),
    "wrong ndim": (lambda path: rewrite_npz(path, lambda a: a.update(W_in=a["W_in"].ravel())), "W_in"),
    "NaN sigma": (lambda path: rewrite_npz(path, lambda a: a.update(sigma=np.array(np.nan))), "sigma"),
    "vector sigma": (lambda path: rewrite_npz(path, lambda a: a.update(sigma=np.array([0.1, 0.2]))), "sigma"),
    "M without sigma": (lambda path: rewrite_npz(path, lambda a: a.pop("sigma")), "sigma"),
    "M of the wrong shape": (lambda path: rewrite_npz(path, lambda a: a.update(M=a["M"][:4, :4])), "M"),
    "infinite M": (lambda path: rewrite_npz(path, lambda a: a["M"].__setitem__((2, 3), -np.inf)), "M"),
}


@pytest.mark.parametrize("damage", sorted(NPZ_DAMAGE))
def test_a_damaged_weights_file_is_one_error_naming_file_and_key(run_copy, damage, capsys):
    change, key = NPZ_DAMAGE[damage]
    change(run_copy / "weights.npz")
    code, out, err = run_cli(["evaluate", str(run_copy), "--p", "0.1", "--samples", "100"], capsys)
    assert_user_error(code, err, "weights.npz")
    if key is not None:
        assert key in err
    assert out == ""                                            # no table of wrong numbers


METRICS_DAMAGE = {
    "truncated": ('{"config": {"task": "mi', None),
    "not JSON": ("task = mixed", None),
    "binary": ("\udcff\udcfe", None),
    "a list": ("[1, 2, 3]", None),
    "a number": ("3.5", None),
    "config not an object": ('{"config": [1]}', "config"),
    "unknown task": ('{"config": {"task": "regression"}}', "task"),
    "task of the wrong type": ('{"config": {"task": 7}}', "task"),
}


@pytest.mark.parametrize("damage", sorted(METRICS_DAMAGE))
def test_a_damaged_metrics_file_is_one_error_naming_it(run_copy, damage, capsys):
    text, key = METRICS_DAMAGE[damage]
    (run_copy / "metrics.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    code, out, err = run_cli(["evaluate", str(run_copy), "--p", "0.1", "--samples", "100"], capsys)
    assert_user_error(code, err, "metrics.json")
    if key is not None:
        assert key in err
    assert out == ""


def test_a_mixed_task_without_M_names_both_files(run_copy, capsys):
    rewrite_npz(run_copy / "weights.npz", lambda a: [a.pop("M"), a.pop("sigma")])
    metrics = json.loads((run_copy / "metrics.json").read_text())
    del metrics["weights_sha256"]                               # a metrics.json that names no weights
    (run_copy / "metrics.json").write_text(json.dumps(metrics))
    code, _, err = run_cli(["evaluate", str(run_copy), "--p", "0.1", "--samples", "100"], capsys)
    assert_user_error(code, err, "holds no M")
    assert "weights.npz" in err


def test_metrics_written_for_other_weights_are_refused(run_copy, capsys):
    rewrite_npz(run_copy / "weights.npz", lambda a: a.update(W_in=2 * a["W_in"]))
    code, _, err = run_cli(["evaluate", str(run_copy), "--p", "0.1", "--samples", "100"], capsys)
    assert_user_error(code, err, "other weights")


def test_history_npz_is_never_read_so_a_damaged_one_changes_nothing(run_copy, capsys):
    (run_copy / "history.npz").write_bytes(b"garbage")
    code, out, err = run_cli(["evaluate", str(run_copy), "--p", "0.1", "--samples", "100"], capsys)
    assert code == 0, err and "0.1" in out


# ---------------------------------------------------------------- damaged checkpoint.npz

@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    """A checkpoint written at step 10 of the TINY config trained for 20 steps (the library leaves it behind)."""
    path = tmp_path_factory.mktemp("checkpoint") / "checkpoint.npz"
    train.train(train.make_config(**TINY_CONFIG), checkpoint_path=str(path), checkpoint_every=10)
    return path.read_bytes()


CHECKPOINT_DAMAGE = {
    "truncated": (truncate, None),
    "random bytes": (lambda path: path.write_bytes(np.random.default_rng(1).bytes(999)), None),
    "step beyond --steps": (lambda path: rewrite_npz(path, lambda a: a.update(step=np.array(500))), "step"),
    "negative step": (lambda path: rewrite_npz(path, lambda a: a.update(step=np.array(-3))), "step"),
    "fractional step": (lambda path: rewrite_npz(path, lambda a: a.update(step=np.array(2.5))), "step"),
    "missing weights": (lambda path: rewrite_npz(path, lambda a: a.pop("param_W_in")), "param_W_in"),
    "missing AdamW state": (lambda path: rewrite_npz(path, lambda a: a.pop("v_W_out")), "v_W_out"),
    "missing step": (lambda path: rewrite_npz(path, lambda a: a.pop("step")), "step"),
    "NaN history": (lambda path: rewrite_npz(path, lambda a: a["history"].__setitem__(3, np.nan)), "history"),
    "history of the wrong length": (lambda path: rewrite_npz(path, lambda a: a.update(history=a["history"][:5])),
                                    "history"),
    "complex weights": (lambda path: rewrite_npz(path, lambda a: a.update(param_W_in=a["param_W_in"] * 1j)),
                        "param_W_in"),
    "wrong weight shape": (lambda path: rewrite_npz(path, lambda a: a.update(m_W_in=a["m_W_in"].T)), "m_W_in"),
    "config not JSON": (lambda path: rewrite_npz(path, lambda a: a.update(config_json=np.array("{no"))),
                        "config_json"),
    "rng state of another kind": (lambda path: rewrite_npz(path, lambda a: a.update(
        rng_state=np.array(json.dumps({"bit_generator": "MT19937", "state": {}})))), "rng_state"),
}


@pytest.mark.parametrize("damage", sorted(CHECKPOINT_DAMAGE))
def test_a_damaged_checkpoint_is_one_error_before_any_training(tmp_path, checkpoint_bytes, damage, capsys,
                                                                monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    path = out / "checkpoint.npz"
    path.write_bytes(checkpoint_bytes)
    change, key = CHECKPOINT_DAMAGE[damage]
    change(path)
    code, _, err = run_cli(["train", *TINY, "--eval-samples", "0", "--checkpoint-every", "10", "--out", str(out)],
                           capsys)
    assert_user_error(code, err, "checkpoint.npz")
    if key is not None:
        assert key in err
    assert not (out / "weights.npz").exists()


def test_a_checkpoint_of_another_config_is_refused(tmp_path, checkpoint_bytes, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(checkpoint_bytes)
    argv = [a if a != "4" else "5" for a in TINY]                   # another seed
    code, _, err = run_cli(["train", *argv, "--eval-samples", "0", "--checkpoint-every", "10", "--out", str(out)],
                           capsys)
    assert_user_error(code, err, "checkpoint.npz")


def test_a_sound_checkpoint_resumes_to_the_uninterrupted_weights(tmp_path, checkpoint_bytes, capsys):
    out, plain = tmp_path / "run", tmp_path / "plain"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(checkpoint_bytes)
    for folder, extra in ((out, ["--checkpoint-every", "10"]), (plain, [])):
        assert run_cli(["train", *TINY, "--eval-samples", "0", *extra, "--out", str(folder)], capsys)[0] == 0
    resumed, uninterrupted = storage.load_npz(out / "weights.npz"), storage.load_npz(plain / "weights.npz")
    for key in uninterrupted:
        np.testing.assert_array_equal(resumed[key], uninterrupted[key])
    assert not (out / "checkpoint.npz").exists()


# ---------------------------------------------------------------- damaged cache files and numbers/*.json

CACHE_DAMAGE = {
    "truncated": truncate,
    "random bytes": lambda path: path.write_bytes(np.random.default_rng(2).bytes(2048)),
    "missing key": lambda path: rewrite_npz(path, lambda a: a.pop("history")),
    "NaN weights": lambda path: rewrite_npz(path, lambda a: a["W_in"].__setitem__((0, 0), np.nan)),
    "complex weights": lambda path: rewrite_npz(path, lambda a: a.update(W_out=a["W_out"] + 0j)),
    "wrong shape": lambda path: rewrite_npz(path, lambda a: a.update(W_in=a["W_in"][:, :3])),
    "string evaluation": lambda path: rewrite_npz(path, lambda a: a.update(eval_loss_over_p=np.array(["x", "y"]))),
    "another job": lambda path: rewrite_npz(path, lambda a: a.update(job_json=np.array('{"other": 1}'))),
}


@pytest.fixture(scope="module")
def cached_job(tmp_path_factory):
    job = jobs.make_job(TINY_CONFIG, eval_ps=[0.1, 1.0], min_samples=200, max_samples=200)
    folder = tmp_path_factory.mktemp("cache")
    result = jobs.run_jobs([job], cache=jobs.JobCache(folder))[0]
    return job, folder, result


@pytest.mark.parametrize("damage", sorted(CACHE_DAMAGE))
def test_a_damaged_cache_file_is_named_dropped_and_recomputed(tmp_path, cached_job, damage):
    job, template, expected = cached_job
    cache = jobs.JobCache(tmp_path, report=(reports := []).append)
    path = tmp_path / os.path.basename(cache.path(job))
    path.write_bytes((template / path.name).read_bytes())
    CACHE_DAMAGE[damage](path)
    recomputed = jobs.run_jobs([job], cache=cache)[0]
    assert len(reports) == 1 and path.name in reports[0]
    for key in ("W_in", "W_out", "history", "eval_loss_over_p"):
        np.testing.assert_array_equal(recomputed[key], expected[key])
    assert jobs.JobCache(tmp_path).get(job) is not None             # the rewritten file is sound
    no_partial_files(tmp_path)


@pytest.mark.slow
def test_a_damaged_numbers_file_is_named_and_skipped(tmp_path, capsys):
    from cc_numpy.experiments import EXPERIMENTS

    others = [name for name in EXPERIMENTS if name != "sigma_sweep"][:2]
    numbers = tmp_path / "numbers"
    numbers.mkdir()
    (numbers / f"{others[0]}.json").write_text("[1, 2")            # not JSON
    (numbers / f"{others[1]}.json").write_text('{"trained": []}')   # JSON of another shape
    code, _, err = run_cli(["sigma-sweep", "--scale", "test", "--workers", "1", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert all(f"{name}.json" in err for name in others) and "Traceback" not in err
    assert (tmp_path / "REPORT.md").exists()


# ---------------------------------------------------------------- unwritable and full locations

def refuse_writes_under(monkeypatch, folder, error=errno.EACCES):
    """Make every new file under ``folder`` fail as on a read-only (or, with ENOSPC, full) file system."""
    real_open = os.open
    folder = os.path.abspath(folder)

    def open_refusing(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.abspath(path).startswith(folder):
            raise OSError(error, os.strerror(error), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_refusing)


def forbid_work(monkeypatch):
    from cc_numpy import reproduce                                  # imported now, so that it never keeps `fail`

    def fail(*args, **kwargs):
        raise AssertionError("work started although the output cannot be written")

    monkeypatch.setattr(jobs, "run_job", fail)
    monkeypatch.setattr(jobs, "run_jobs", fail)
    monkeypatch.setattr(reproduce, "run_jobs", fail)               # its own name for it
    monkeypatch.setattr(train, "train", fail)


@pytest.mark.parametrize("command", ["train", "evaluate", "snmf", "reproduce", "sigma-sweep"])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, run_dir, command, monkeypatch, capsys):
    out = tmp_path / "locked"
    refuse_writes_under(monkeypatch, out)
    forbid_work(monkeypatch)
    argv = {"train": ["train", *TINY, "--out", str(out)],
            "evaluate": ["evaluate", str(run_dir), "--p", "0.1", "--samples", "100", "--out", str(out / "x.json")],
            "snmf": ["snmf", "--n", "8", "--d-mlp", "4", "--iterations", "5", "--out", str(out)],
            "reproduce": ["reproduce", "--scale", "test", "--only", "sigma-sweep", "--out", str(out)],
            "sigma-sweep": ["sigma-sweep", "--scale", "test", "--out", str(out)]}[command]
    code, out_text, err = run_cli(argv, capsys)
    assert_user_error(code, err, str(out))
    assert ".tmp-" not in err                                      # never the temporary name
    assert out_text == ""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused_before_training(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    forbid_work(monkeypatch)
    try:
        code, _, err = run_cli(["train", *TINY, "--out", str(out)], capsys)
    finally:
        out.chmod(0o700)
    assert_user_error(code, err, str(out))


def test_an_output_path_that_is_a_file_is_refused(tmp_path, capsys, monkeypatch):
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    forbid_work(monkeypatch)
    code, _, err = run_cli(["snmf", "--n", "8", "--d-mlp", "4", "--out", str(target)], capsys)
    assert_user_error(code, err, str(target))


def test_a_full_disk_while_saving_is_one_error_and_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli(["train", *TINY, "--eval-samples", "0", "--out", str(out)], capsys)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert_user_error(code, err, "weights.npz")
    assert ".tmp-" not in err and os.strerror(errno.ENOSPC) in err
    assert sorted(os.listdir(out)) == []                            # nothing half-written


# ---------------------------------------------------------------- a seeded sweep of flag values

SPECIAL = ["0", "-0", "-0.0", "5e-324", "-5e-324", "2.2e-308", "nan", "-nan", "inf", "-inf", "1e300", "-1e300",
           "1e19", "9223372036854775808", "1.5", "-1", "abc", "", "0x10", "1e3"]
FLAG_VALUES = {
    "--p": SPECIAL + ["0.5", "1", "0.01", "1e-10"],
    "--sigma": SPECIAL + ["0.3", "-0.02", "1e5"],
    "--lr": SPECIAL + ["0.01", "1e4"],
    "--weight-decay": SPECIAL + ["0.1", "1e4"],
    "--steps": SPECIAL + ["1", "3", "1e12", "1e15"],
    "--batch-size": SPECIAL + ["1", "2", "1e12", "1e15"],
    "--target-stderr": SPECIAL + ["0.05", "1e-9"],
}


def sweep_cases(count, seed=20260509):
    rng = np.random.default_rng(seed)
    flags = sorted(FLAG_VALUES)
    cases = [(flag, value) for flag in flags for value in ("nan", "-0", "5e-324", "1e300")]  # always these
    while len(cases) < count:
        flag = flags[rng.integers(len(flags))]
        values = FLAG_VALUES[flag]
        cases.append((flag, values[rng.integers(len(values))]))
    return cases


def test_a_sweep_of_flag_values_gives_a_result_or_one_error_line(tmp_path, run_dir, capsys):
    outcomes = {"ok": 0, "error": 0}
    for index, (flag, value) in enumerate(sweep_cases(80)):
        out = tmp_path / f"case{index}"
        if flag == "--target-stderr":
            argv = ["evaluate", str(run_dir), "--p", "0.5", "--samples", "50", "--max-samples", "2000",
                    flag, value, "--out", str(out / "eval.json")]
            written = ["eval.json"]
        else:
            base = [a for a in TINY if a not in ("--steps", "20")] + ["--steps", "3"]
            if flag in ("--p", "--steps", "--batch-size"):
                base = [a for i, a in enumerate(base) if a != flag and (i == 0 or base[i - 1] != flag)]
            extra = ["--task", "mixed"] if flag == "--sigma" else []
            argv = ["train", *base, *extra, "--eval-samples", "0", flag, value, "--out", str(out)]
            written = ["history.npz", "metrics.json", "weights.npz"]
        code, _, err = run_cli(argv, capsys)
        assert "Traceback" not in err, (flag, value, err)
        if code == 0:
            outcomes["ok"] += 1
            assert sorted(os.listdir(out)) == written, (flag, value)
            if flag != "--target-stderr":
                params, _, _, _ = runs.load_run(out)                # finite, sound weights
        else:
            outcomes["error"] += 1
            assert_user_error(code, err, "")
            assert not any((out / name).exists() for name in written), (flag, value)
        if out.exists():
            no_partial_files(out)
    assert outcomes["ok"] > 5 and outcomes["error"] > 40, outcomes


# ---------------------------------------------------------------- statistics that say when they are weak

def test_a_missed_target_stderr_is_reported(run_dir, capsys):
    code, out, err = run_cli(["evaluate", str(run_dir), "--p", "0.5", "--samples", "50", "--max-samples", "500",
                              "--target-stderr", "1e-12"], capsys)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--target-stderr" in warnings[0] and "1e-12" in warnings[0]


def test_a_p_too_small_for_the_samples_is_refused_before_evaluating_any(run_dir, tmp_path, capsys):
    json_out = tmp_path / "curve.json"
    for p in ("1e-300", "1e-18", "1e-12"):
        code, out, err = run_cli(["evaluate", str(run_dir), "--p", "0.5", p, "--samples", "1000",
                                  "--out", str(json_out)], capsys)
        assert_user_error(code, err, "--p")
        assert out == "" and not json_out.exists()


def test_loss_over_p_gives_no_standard_error_from_fewer_than_two_active_samples():
    from cc_numpy.core.evaluate import loss_over_p

    params = {"W_in": np.ones((2, 4)), "W_out": np.ones((4, 2))}
    with pytest.raises(ValueError, match="n_samples"):
        loss_over_p(params, 0.5, np.random.default_rng(0), n_samples=1)
    with pytest.raises(ValueError, match="too small"):
        loss_over_p(params, 1e-300, np.random.default_rng(0), n_samples=1000)   # never loops forever
    row = loss_over_p(params, 0.5, np.random.default_rng(0), n_samples=1000, target_stderr=1e-12, max_samples=2000)
    assert row["target_met"] is False and row["n_samples"] == 2000
    assert loss_over_p(params, 0.5, np.random.default_rng(0), n_samples=100)["target_met"] is None


def test_the_sampler_is_safe_at_any_p():
    from cc_numpy.core.data import sample_batch

    for p in (5e-324, 1e-300, 1e-18, 1e-12):
        batch = sample_batch(10_000, 100, p, np.random.default_rng(0))
        assert batch["x"].shape[0] == batch["row_index"].size <= 1


# ---------------------------------------------------------------- interrupts

@pytest.mark.parametrize("write", ["save_json", "check_writable"])
def test_a_ctrl_c_just_as_a_temporary_file_is_created_leaves_no_file(tmp_path, monkeypatch, write):
    """The moment between creating the file and knowing its name (inside tempfile.mkstemp, once)."""
    real_open = os.open

    def open_then_interrupted(path, flags, *args, **kwargs):
        descriptor = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT and str(tmp_path) in str(path):
            os.close(descriptor)
            raise KeyboardInterrupt
        return descriptor

    monkeypatch.setattr(os, "open", open_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        if write == "save_json":
            storage.save_json(tmp_path / "numbers.json", {"a": 1})
        else:
            storage.check_writable(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_write_that_cannot_replace_its_target_names_it_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "numbers.json").mkdir()                             # a folder where the file should go
    with pytest.raises(OSError, match="cannot write .*numbers.json"):
        storage.save_json(tmp_path / "numbers.json", {"a": 1})
    assert os.listdir(tmp_path) == ["numbers.json"]


def test_a_figure_interrupted_while_saved_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    import matplotlib.figure

    from cc_numpy.pipeline import plotting

    path = str(tmp_path / "figure.png")
    with plotting.figure(path) as axis:
        axis.plot([0, 1], [0, 1])
    before = (tmp_path / "figure.png").read_bytes()

    def interrupted_savefig(self, handle, **kwargs):
        handle.write(b"\x89PNG half of a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", interrupted_savefig)
    with pytest.raises(KeyboardInterrupt):
        with plotting.figure(path) as axis:
            axis.plot([0, 1], [1, 0])
    assert os.listdir(tmp_path) == ["figure.png"]
    assert (tmp_path / "figure.png").read_bytes() == before


@pytest.mark.slow
def test_ctrl_c_in_the_parent_stops_running_workers_at_once(tmp_path):
    """Trainings far longer than the test: SIGINT must terminate the workers, not wait for them."""
    import multiprocessing
    import threading

    slow = [jobs.make_job(dict(TINY_CONFIG, steps=500_000, seed=s)) for s in (10, 11, 12)]
    sent = []

    def workers_started():
        try:
            return len(multiprocessing.active_children()) >= 2
        except RuntimeError:                                        # the set of children changed while counted
            return False

    def interrupt_once_training():                                  # the start itself: the test below
        deadline = time.perf_counter() + 30
        while not workers_started() and time.perf_counter() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_once_training, daemon=True)
    sender.start()
    with pytest.raises(jobs.JobsInterrupted) as caught:
        jobs.run_jobs(slow, cache=jobs.JobCache(tmp_path), workers=2)
    stopped = time.perf_counter()
    sender.join()
    assert "0 of 3 trainings are in the cache" in caught.value.kept
    assert multiprocessing.active_children() == []                 # every worker is gone
    assert stopped - sent[0] < 5                                    # one training alone takes a minute
    no_partial_files(tmp_path)


TWO_WORKERS = """
import multiprocessing, os, signal
from cc_numpy.pipeline import jobs
context = multiprocessing.get_context("spawn")
tasks, outputs = context.Queue(), context.Queue()
processes = [context.Process(target=jobs._worker, args=(tasks, outputs), daemon=True) for _ in range(2)]
jobs._start_workers(processes)
"""
WORKER_MASKS = TWO_WORKERS + """
print("parent", sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
for index in range(2):
    tasks.put((index, signal.pthread_sigmask, (signal.SIG_BLOCK, [])))
for _ in range(2):
    index, status, value = outputs.get(timeout=60)
    print("worker", status, sorted(int(s) for s in value))
jobs._stop(processes, tasks, outputs)
"""


@pytest.mark.slow
def test_workers_start_with_sigint_blocked_and_the_parent_keeps_it(tmp_path):
    """A fresh interpreter, as the command line has: no Ctrl-C can reach a worker before it ignores
    SIGINT, and the parent's main thread can take one at any moment."""
    done = subprocess.run([sys.executable, "-c", WORKER_MASKS], capture_output=True, text=True, env=ENV,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "parent []"                                  # the parent can take a Ctrl-C at any time
    assert lines[1:] == [f"worker ok [{int(signal.SIGINT)}]"] * 2   # the workers never could


@pytest.mark.slow
def test_ctrl_c_while_the_workers_start_stops_at_once_and_leaves_no_worker(tmp_path, monkeypatch):
    import multiprocessing
    import multiprocessing.context
    import threading

    starting, interrupted, started = threading.Event(), threading.Event(), []
    start = multiprocessing.context.SpawnProcess.start

    def slow_start(process):                                        # the second worker's start (the first one
        if started:                                                 # runs) lasts until the Ctrl-C is sent
            starting.set()
            interrupted.wait(30)
        start(process)
        started.append(process)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", slow_start)
    sent = []

    def interrupt_while_starting():
        starting.wait(30)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
        interrupted.set()

    sender = threading.Thread(target=interrupt_while_starting, daemon=True)
    sender.start()
    slow = [jobs.make_job(dict(TINY_CONFIG, steps=500_000, seed=s)) for s in (10, 11, 12)]
    with pytest.raises(jobs.JobsInterrupted):
        jobs.run_jobs(slow, cache=jobs.JobCache(tmp_path), workers=2)
    stopped = time.perf_counter()
    sender.join()
    assert multiprocessing.active_children() == []                 # every worker started is gone
    assert len(started) == 2                                        # (the start under way was finished)
    assert stopped - sent[0] < 5                                    # one training alone takes a minute
    no_partial_files(tmp_path)


INTERRUPTED = ["-m", "cc_numpy", "sigma-sweep", "--scale", "test", "--steps", "400", "--workers", "2"]


def start(out):
    return subprocess.Popen([sys.executable, *INTERRUPTED, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)


def state_and_parent(pid):
    """(state letter, parent pid) of a process from Linux /proc, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()      # after "pid (command)"
    except OSError:
        return None
    return fields[0], int(fields[1])


def alive(pid):
    found = state_and_parent(pid)
    return found is not None and found[0] != "Z"                    # a zombie has ended


def children_of(pid):
    """The pids of the live processes whose parent is ``pid``."""
    found = {int(entry): state_and_parent(entry) for entry in os.listdir("/proc") if entry.isdigit()}
    return [child for child, stat in found.items() if stat is not None and stat[0] != "Z" and stat[1] == pid]


def gone_within(pids, seconds):
    """Wait until none of ``pids`` is alive, at most ``seconds``; returns those still alive."""
    deadline = time.perf_counter() + seconds
    while any(alive(pid) for pid in pids) and time.perf_counter() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


def kill_ours(pids):
    """SIGKILL the processes of ``pids`` that are still a cc_numpy command or worker (after a failed test)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        ours = b"cc_numpy" in command or b"multiprocessing" in command
        if ours and alive(pid):
            os.kill(pid, signal.SIGKILL)


LONG = ["-m", "cc_numpy", "sigma-sweep", "--scale", "test", "--steps", "200000", "--workers", "2"]


def start_long(out):
    """A command whose trainings last minutes; returns it once both workers are training."""
    process = subprocess.Popen([sys.executable, *LONG, "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    deadline = time.perf_counter() + 60
    while len(children_of(process.pid)) < 3 and time.perf_counter() < deadline:   # 2 workers, resource tracker
        time.sleep(0.1)
    time.sleep(2.0)                                                 # past their imports: training
    return process


ORPHANS = TWO_WORKERS + """
print(*[process.pid for process in processes], flush=True)
os._exit(0)                                 # gone before the workers have even imported cc_numpy
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_workers_whose_parent_died_before_they_ran_end_themselves(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", ORPHANS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=ENV)
    workers = [int(pid) for pid in parent.stdout.readline().split()]   # (the workers hold the pipe open)
    parent.stdout.close()
    parent.wait(timeout=60)
    assert len(workers) == 2
    try:
        assert not gone_within(workers, 20)                         # (their imports, on a busy machine)
    except BaseException:
        kill_ours(workers)
        raise


def test_a_worker_start_that_cannot_start_its_thread_fails_at_once(monkeypatch):
    import threading

    real_start = threading.Thread.start

    def no_thread_for_the_workers(thread):
        if thread.name == "cc_numpy worker start":
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", no_thread_for_the_workers)
    outcome, environment = [], dict(os.environ)

    def attempt():
        try:
            jobs._start_workers([])
        except RuntimeError as error:
            outcome.append(error)

    caller = threading.Thread(target=attempt, daemon=True)
    caller.start()
    caller.join(10)
    assert outcome and "can't start new thread" in str(outcome[0])   # raised, not waited on forever
    assert dict(os.environ) == environment                          # the workers' BLAS settings are gone


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("to_group", [True, False])
def test_sigterm_stops_a_command_like_ctrl_c_with_status_143(tmp_path, to_group):
    process = start_long(tmp_path)
    workers = children_of(process.pid)
    try:
        (os.killpg if to_group else os.kill)(process.pid, signal.SIGTERM)
        sent = time.perf_counter()
        _, err = process.communicate(timeout=30)
        assert time.perf_counter() - sent < 5
        assert process.returncode == 143, err
        assert "Traceback" not in err, err
        assert len([line for line in err.splitlines() if line.startswith("interrupted:")]) == 1, err
        time.sleep(1.0)
        assert not [pid for pid in workers if alive(pid)]
        no_partial_files(tmp_path)
    except BaseException:
        kill_ours([process.pid] + workers)                          # nothing outlives a failed test
        raise


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_workers_of_a_killed_command_stop_in_the_middle_of_a_training(tmp_path):
    process = start_long(tmp_path)
    workers = children_of(process.pid)
    try:
        process.kill()                                              # SIGKILL: the parent cannot stop them
        process.communicate(timeout=30)
        assert not gone_within(workers, 20)                         # a training takes minutes (a worker
                                                                    # may still be importing)
    except BaseException:
        kill_ours(workers)
        raise


@pytest.mark.slow
def test_ctrl_c_at_random_points_stops_promptly_keeps_finished_work_and_resumes_to_the_same_results(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, *INTERRUPTED, "--out", str(reference)], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "interrupted"
    rng = np.random.default_rng(7)
    for attempt, delay in enumerate(rng.uniform(0.2, 3.0, size=5)):
        process = start(out)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGINT)                       # as a terminal does: the whole group
        if attempt == 2:
            time.sleep(0.05)
            os.killpg(process.pid, signal.SIGINT)                   # a second Ctrl-C while stopping
        sent = time.perf_counter()
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"hung after Ctrl-C at {delay:.2f} s")
        assert time.perf_counter() - sent < 5
        assert "Traceback" not in err, err
        if process.returncode == 130:
            lines = [line for line in err.splitlines() if line.startswith("interrupted:")]
            assert len(lines) == 1, err
        else:
            assert process.returncode == 0, err                    # finished before the Ctrl-C arrived
        no_partial_files(out)
    done = subprocess.run([sys.executable, *INTERRUPTED, "--out", str(out)], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out / "cache")) == sorted(os.listdir(reference / "cache"))
    for name in os.listdir(reference / "cache"):
        resumed, uninterrupted = storage.load_npz(out / "cache" / name), storage.load_npz(reference / "cache" / name)
        for key in ("W_in", "W_out", "history", "eval_loss_over_p", "eval_stderr"):
            np.testing.assert_array_equal(resumed[key], uninterrupted[key])
    assert (out / "numbers" / "sigma_sweep.json").read_text() == \
        (reference / "numbers" / "sigma_sweep.json").read_text()
