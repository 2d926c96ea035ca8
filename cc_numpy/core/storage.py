"""Atomic reading and writing of results: ``.npz`` (never pickle) and JSON.

A file is written to a temporary name in the same folder, flushed to disk and
then renamed over the target (``os.replace`` is atomic on POSIX and Windows), so
an interrupted run leaves either the old file or the new one, never half of one.
"""

import json
import os
import tempfile
import zipfile

import numpy as np


class CorruptFileError(ValueError):
    """A results or checkpoint file that is missing keys or cannot be read."""


def _write_atomic(path, write):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                           # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_npz(path, arrays):
    """Write a dict of arrays (and scalars) to ``path`` atomically, uncompressed; object arrays are refused."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"array {key!r} holds Python objects; only numeric and string arrays are stored")
    _write_atomic(path, lambda handle: np.savez(handle, **arrays))


def load_npz(path, required=()):
    """Read an ``.npz`` into a dict of arrays; raise CorruptFileError if unreadable or keys are missing."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        reason = "it holds pickled Python objects, which are never loaded" if "pickle" in str(error) else str(error)
        raise CorruptFileError(f"{path} is not a readable .npz file ({reason})") from error
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path} lacks the arrays {missing}; it has {sorted(arrays)}")
    return arrays


def save_text(path, text):
    """Write a string (UTF-8) to ``path`` atomically."""
    _write_atomic(path, lambda handle: handle.write(text.encode()))


def save_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n"
    _write_atomic(path, lambda handle: handle.write(text.encode()))


def load_json(path):
    """Read JSON; raise CorruptFileError if it cannot be parsed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptFileError(f"{path} is not valid JSON ({error})") from error


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
