"""Tests for cc_numpy.core.storage (atomic .npz / JSON) and cc_numpy.core.runs (a run's files)."""

import gc
import hashlib
import io
import json
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from cc_numpy.core import mlp, residual, runs, storage


class ArrayThatFails:
    """An object whose conversion to an array fails halfway through writing."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("disk full (simulated)")


def stray_files(folder):
    return [name for name in os.listdir(folder) if name.startswith(".tmp")]


# ---------------------------------------------------------------- storage

def test_save_npz_round_trip_leaves_no_temporary_files(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array(3, dtype=np.int64), "c": 0.5,
              "text": json.dumps({"k": 1})}
    path = tmp_path / "sub" / "x.npz"                            # the folder is created
    storage.save_npz(path, arrays)
    assert os.listdir(tmp_path / "sub") == ["x.npz"]
    loaded = storage.load_npz(path, required=("a", "b"))
    assert set(loaded) == set(arrays)
    np.testing.assert_array_equal(loaded["a"], arrays["a"])
    assert loaded["b"].dtype == np.int64 and int(loaded["b"]) == 3
    assert float(loaded["c"]) == 0.5 and json.loads(str(loaded["text"])) == {"k": 1}


def test_save_npz_replaces_an_existing_file(tmp_path):
    path = tmp_path / "x.npz"
    storage.save_npz(path, {"a": np.zeros(2)})
    storage.save_npz(path, {"a": np.ones(3)})
    np.testing.assert_array_equal(storage.load_npz(path)["a"], np.ones(3))
    assert stray_files(tmp_path) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "x.npz"
    storage.save_npz(path, {"a": np.arange(3.0)})
    with pytest.raises(RuntimeError, match="disk full"):
        storage.save_npz(path, {"a": np.zeros(5), "b": ArrayThatFails()})
    np.testing.assert_array_equal(storage.load_npz(path)["a"], np.arange(3.0))
    assert stray_files(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_files_get_the_usual_permissions(tmp_path):
    """An atomically written file should be readable like any other new file (0o666 & ~umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    reference = tmp_path / "plain.txt"
    reference.write_text("x")
    storage.save_npz(tmp_path / "x.npz", {"a": np.zeros(1)})
    storage.save_json(tmp_path / "x.json", {"a": 1})
    expected = stat.S_IMODE(os.stat(reference).st_mode)
    assert expected == 0o666 & ~umask
    for name in ("x.npz", "x.json"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == expected, f"{name} was written with mode {mode:o}, a plain file gets {expected:o}"


def test_load_npz_refuses_missing_keys(tmp_path):
    path = tmp_path / "x.npz"
    storage.save_npz(path, {"a": np.zeros(2)})
    with pytest.raises(storage.CorruptFileError, match=r"lacks the arrays \['b'\]"):
        storage.load_npz(path, required=("a", "b"))


def test_load_npz_refuses_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"definitely not a numpy file")
    with pytest.raises(storage.CorruptFileError) as caught:
        storage.load_npz(path)
    assert str(path) in str(caught.value) and "pickle" not in str(caught.value)   # plain text is not "pickled"
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(storage.CorruptFileError, match="empty.npz"):
        storage.load_npz(empty)


def test_load_npz_refuses_a_truncated_npz_and_closes_it(tmp_path):
    """A half-written .npz (e.g. copied from an interrupted transfer) is refused, without leaking the file."""
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(100.0))
    path = tmp_path / "x.npz"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(storage.CorruptFileError, match="not a readable .npz file"):
            storage.load_npz(path)
        gc.collect()                                             # free the traceback's frames
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == [], f"load_npz left the file open: {leaked}"


def test_load_npz_refuses_pickled_object_arrays(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(storage.CorruptFileError, match="not a readable .npz"):
        storage.load_npz(path)


def test_load_npz_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        storage.load_npz(tmp_path / "nothing.npz")


def test_json_round_trip_with_numpy_values(tmp_path):
    path = tmp_path / "m.json"
    storage.save_json(path, {"x": np.float32(0.5), "v": np.arange(3), "s": "text"})
    assert storage.load_json(path) == {"x": 0.5, "v": [0, 1, 2], "s": "text"}
    assert stray_files(tmp_path) == []
    with pytest.raises(TypeError, match="cannot store"):
        storage.save_json(tmp_path / "bad.json", {"f": object()})
    assert not (tmp_path / "bad.json").exists() and stray_files(tmp_path) == []


def test_load_json_refuses_corrupt_and_missing_files(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(storage.CorruptFileError, match="not valid JSON"):
        storage.load_json(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        storage.load_json(tmp_path / "none.json")


# ---------------------------------------------------------------- runs

def test_mlp_run_round_trip_with_M_and_sigma(tmp_path):
    rng = np.random.default_rng(0)
    params = mlp.init_params(6, 3, rng, dtype="float32")
    params["sigma"] = np.array(-0.02, dtype=np.float32)         # a learned σ is not a weight
    M = rng.standard_normal((6, 6))
    history, sigma_history = rng.random(10), rng.random(10)
    metrics = {"config": {"task": "mixed"}, "loss": np.float64(0.07)}
    weights_path = runs.save_run(tmp_path / "run", params, M, 0.02, metrics, history, sigma_history)
    assert os.path.basename(weights_path) == "weights.npz"
    assert sorted(os.listdir(tmp_path / "run")) == ["history.npz", "metrics.json", "weights.npz"]
    assert set(storage.load_npz(weights_path)) == {"W_in", "W_out", "M", "sigma"}

    loaded, M_loaded, sigma, metrics_loaded = runs.load_run(tmp_path / "run")
    assert set(loaded) == {"W_in", "W_out"}
    for key in ("W_in", "W_out"):
        assert loaded[key].dtype == np.float64
        np.testing.assert_array_equal(loaded[key], params[key].astype(np.float64))
    np.testing.assert_array_equal(M_loaded, M)
    assert sigma == 0.02
    assert metrics_loaded == {"config": {"task": "mixed"}, "loss": 0.07,
                              "weights_sha256": hashlib.sha256(Path(weights_path).read_bytes()).hexdigest()}
    saved_history = storage.load_npz(tmp_path / "run" / "history.npz")
    np.testing.assert_array_equal(saved_history["loss"], history)
    np.testing.assert_array_equal(saved_history["sigma"], sigma_history)
    # The weights file itself is accepted too.
    again = runs.load_run(weights_path)
    np.testing.assert_array_equal(again[0]["W_in"], loaded["W_in"])


def test_residual_run_round_trip_without_M(tmp_path):
    rng = np.random.default_rng(1)
    params = residual.init_params(5, 20, 3, rng, rng)
    runs.save_run(tmp_path, params, history=np.zeros(4))
    loaded, M, sigma, metrics = runs.load_run(tmp_path)
    assert set(loaded) == {"W_E", "W_in", "W_out"}
    for key in loaded:
        np.testing.assert_array_equal(loaded[key], params[key])
    assert M is None and sigma == 0.0 and metrics["config"] == {"task": "residual"}   # always set: the model's usual
    assert "sigma" not in storage.load_npz(tmp_path / "history.npz")


def test_run_without_metrics_file_loads_with_empty_metrics(tmp_path):
    params = mlp.init_params(4, 2, np.random.default_rng(2))
    runs.save_run(tmp_path, params)
    os.remove(tmp_path / "metrics.json")
    assert not (tmp_path / "history.npz").exists()
    assert runs.load_run(tmp_path)[3] == {"config": {"task": "clean"}}


def test_load_run_refuses_inconsistent_weights(tmp_path):
    storage.save_npz(tmp_path / "weights.npz", {"W_in": np.zeros((3, 5)), "W_out": np.zeros((4, 3))})
    with pytest.raises(storage.CorruptFileError, match="W_out"):
        runs.load_run(tmp_path)
    storage.save_npz(tmp_path / "weights.npz", {"W_in": np.full((3, 5), np.nan), "W_out": np.zeros((5, 3))})
    with pytest.raises(storage.CorruptFileError, match="NaN"):
        runs.load_run(tmp_path)


def test_load_run_refuses_M_of_the_wrong_shape_or_without_sigma(tmp_path):
    base = {"W_in": np.zeros((3, 5)), "W_out": np.zeros((5, 3))}
    storage.save_npz(tmp_path / "weights.npz", dict(base, M=np.zeros((4, 4)), sigma=0.1))
    with pytest.raises(storage.CorruptFileError, match="'M'"):
        runs.load_run(tmp_path)
    storage.save_npz(tmp_path / "weights.npz", dict(base, M=np.zeros((5, 5))))
    with pytest.raises(storage.CorruptFileError, match="'sigma'"):
        runs.load_run(tmp_path)


def test_load_run_refuses_missing_weights(tmp_path):
    storage.save_npz(tmp_path / "weights.npz", {"W_in": np.zeros((3, 5))})
    with pytest.raises(storage.CorruptFileError, match=r"lacks the arrays \['W_out'\]"):
        runs.load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        runs.load_run(tmp_path / "elsewhere")


def test_a_run_folder_is_saved_as_a_unit(tmp_path):
    """metrics.json is written last and names its weights: an older run's metrics never pass for a newer run's."""
    rng = np.random.default_rng(0)
    residual = {"W_E": rng.standard_normal((8, 4)), "W_in": rng.standard_normal((3, 8)),
                "W_out": rng.standard_normal((8, 3))}
    folder = tmp_path / "run"
    runs.save_run(folder, residual, metrics={"config": {"task": "residual"}}, history=rng.random(5))
    mlp = {"W_in": rng.standard_normal((3, 4)), "W_out": rng.standard_normal((4, 3))}
    storage.save_npz(folder / "weights.npz", mlp)              # a newer save stopped right after its weights
    with pytest.raises(storage.CorruptFileError, match="other weights"):
        runs.load_run(folder)
    runs.save_run(folder, mlp, metrics={"config": {"task": "clean"}})   # a new run without a history
    assert sorted(os.listdir(folder)) == ["metrics.json", "weights.npz"]   # the old history went with its run
    assert runs.load_run(folder)[3]["config"]["task"] == "clean"
    os.remove(folder / "metrics.json")
    storage.save_npz(folder / "weights.npz", residual)
    assert runs.load_run(folder)[3]["config"]["task"] == "residual"    # no metrics: the model's usual task


def test_output_files_that_cannot_be_replaced_are_refused_before_any_work(tmp_path):
    (tmp_path / "metrics.json").mkdir()
    with pytest.raises(OSError, match="it is a folder"):
        storage.check_writable_files(tmp_path, runs.RUN_FILES)
    assert storage.check_writable_files(tmp_path / "new", runs.RUN_FILES) == str(tmp_path / "new")


def test_an_npz_whose_header_declares_more_than_it_holds_is_corrupt_not_a_memory_error(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 5, 10 ** 5)})
    import zipfile
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("W_in.npy", header.getvalue() + bytes(16))
    with pytest.raises(storage.CorruptFileError, match="declares shape"):
        storage.load_npz(tmp_path / "bomb.npz")


def test_a_save_that_fails_on_its_weights_leaves_the_earlier_run_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    old = {"W_in": rng.standard_normal((3, 4)), "W_out": rng.standard_normal((4, 3))}
    runs.save_run(tmp_path, old, metrics={"config": {"task": "clean", "seed": 7}}, history=rng.random(5))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}

    def full_disk(path, arrays):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runs, "save_npz", full_disk)
    with pytest.raises(OSError):
        runs.save_run(tmp_path, {"W_in": 2 * old["W_in"], "W_out": old["W_out"]}, metrics={"config": {"task": "clean"}})
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    assert runs.load_run(tmp_path)[3]["config"]["seed"] == 7


def test_a_folder_that_cannot_be_written_leaves_no_folders_behind(tmp_path):
    too_long = tmp_path.joinpath(*["b" * 200] * 25)              # each part fits, the whole path does not
    with pytest.raises(OSError, match="cannot write into"):
        storage.check_writable(too_long)
    assert os.listdir(tmp_path) == []


def test_a_save_stopped_after_its_weights_leaves_no_earlier_metrics_beside_them(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    old = {"W_in": rng.standard_normal((3, 4)), "W_out": rng.standard_normal((4, 3))}
    runs.save_run(tmp_path, old, metrics={"config": {"task": "clean", "seed": 7}})

    def interrupted(path, obj):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "save_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.save_run(tmp_path, {"W_in": 2 * old["W_in"], "W_out": old["W_out"]}, metrics={"config": {"task": "clean"}})
    assert sorted(os.listdir(tmp_path)) == ["weights.npz"]       # the new weights, and no metrics that are not theirs
