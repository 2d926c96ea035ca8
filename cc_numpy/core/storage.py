"""Atomic reading and writing of results: ``.npz`` (never pickle) and JSON.

A file is written to a temporary name in the same folder, flushed to disk and
then renamed over the target (``os.replace`` is atomic on POSIX and Windows), so
an interrupted run leaves either the old file or the new one, never half of one.

Reading checks structure and values: :func:`load_npz` refuses anything that is
not an ``.npz`` archive (or holds pickled objects), :func:`stored_array` one
array of it (real, finite, the right shape), :func:`load_json` a file that is
not JSON of the expected kind. Every error is a :class:`CorruptFileError` that
names the file (and the key). :func:`check_writable` tries a folder before any
long work is done, so a run never finishes and then fails to save.
"""

import contextlib
import errno
import hashlib
import io
import json
import os
import secrets
import stat
import zipfile

import numpy as np


class CorruptFileError(ValueError):
    """A results or checkpoint file that is missing keys, holds bad values or cannot be read."""


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")                     # a zip with members / an empty zip
_PICKLE_MAGIC = b"\x80"                                         # pickle protocol 2 and later


def _open_new(folder, prefix, suffix, names):
    """Create a new file ``folder/prefix<random>suffix`` (mode 0666 less the umask) and return its descriptor.

    Its name is appended to ``names`` *before* the file exists, so that a caller's ``finally``
    can remove it whatever moment an interrupt arrives (``tempfile.mkstemp`` names it only after).
    """
    for _ in range(100):
        names.append(os.path.join(folder, f"{prefix}{secrets.token_hex(4)}{suffix}"))
        try:
            return os.open(names[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            names.pop()
    raise FileExistsError(errno.EEXIST, f"no free temporary name in {folder}")


def _remove_existing(names):
    """Remove whichever of ``names`` exist (cleaning up after a failure: an OSError here is not the news)."""
    for name in names:
        with contextlib.suppress(OSError):
            os.remove(name)


def write_atomic(path, write):
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file in the same folder, which
    then replaces ``path``; on any failure or interrupt the temporary file is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = []
    try:
        os.makedirs(folder, exist_ok=True)
        with os.fdopen(_open_new(folder, ".tmp-", os.path.basename(path), temporary), "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary[-1], path)
        temporary.clear()                                       # (a Ctrl-C just before: its name is gone anyway)
    except OSError as error:                                    # name the target, never the temporary file
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from None
    finally:
        _remove_existing(temporary)


def check_writable(folder):
    """Create ``folder`` if needed and prove a file can be written there (a probe file, then removed).

    Raises OSError naming the folder otherwise; call it before long work whose results go there.
    """
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OSError(f"cannot write into {folder}: it exists and is not a folder")
    probe, created = [], _missing_folders(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        os.close(_open_new(folder, ".probe-", "", probe))
        os.remove(probe[-1])                                    # a folder that keeps what is put in it is refused
        probe.clear()
    except OSError as error:
        _remove_existing(probe)                                 # first: a folder holding the probe cannot go
        for made in reversed(created):                          # a refused folder leaves nothing behind
            with contextlib.suppress(OSError):
                os.rmdir(made)
        raise OSError(error.errno, f"cannot write into {folder}: {error.strerror or error}") from None
    finally:
        _remove_existing(probe)
    return folder


def _missing_folders(folder):
    """The folders ``os.makedirs(folder)`` would create, outermost first."""
    missing, path = [], os.path.abspath(folder)
    while path and not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


def check_writable_file(path):
    """:func:`check_writable` for the folder of a file about to be written (or replaced).

    The path must not be a folder, and a file already there must be replaceable: in a shared
    folder with the sticky bit (such as /tmp) only its owner may replace it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OSError(f"cannot write {path}: it is a folder, a file name is needed")
    folder = check_writable(os.path.dirname(os.path.abspath(path)))
    if os.path.lexists(path) and hasattr(os, "geteuid"):
        folder_stat, user = os.stat(folder), os.geteuid()
        if folder_stat.st_mode & stat.S_ISVTX and user not in (0, folder_stat.st_uid, os.lstat(path).st_uid):
            raise OSError(errno.EPERM, f"cannot replace {path}: another user's file in a shared (sticky) folder")
    return folder


def check_writable_files(folder, names):
    """:func:`check_writable_file` for each of ``names`` in ``folder``; returns the folder."""
    for name in names:
        check_writable_file(os.path.join(folder, name))
    return os.fspath(folder)


def save_npz(path, arrays):
    """Write a dict of arrays (and scalars) to ``path`` atomically, uncompressed; object arrays are refused.

    Returns the SHA-256 (hex) of exactly the bytes written.
    """
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"array {key!r} holds Python objects; only numeric and string arrays are stored")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    write_atomic(path, lambda handle: handle.write(data))
    return hashlib.sha256(data).hexdigest()


def load_npz(path, required=()):
    """Read an ``.npz`` into a dict of arrays; raise CorruptFileError if unreadable or keys are missing."""
    return load_npz_and_sha256(path, required)[0]


def load_npz_and_sha256(path, required=()):
    """:func:`load_npz`, and the SHA-256 (hex) of exactly the bytes the arrays were read from."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with open(path, "rb") as file:
            data = file.read()                                  # one read: the arrays and the hash agree
        with io.BytesIO(data) as handle:
            head = handle.read(4)
            if not head.startswith(_ZIP_MAGIC):
                kind = "pickled Python objects, which are never loaded" if head.startswith(_PICKLE_MAGIC) else \
                    "something else (an .npz file is a zip archive of .npy arrays)"
                raise CorruptFileError(f"{path} is not an .npz file: it holds {kind}")
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as archive:
                for key in archive.files:                       # a damaged header must not allocate petabytes
                    _check_declared_size(archive.zip, key, path)
                arrays = {k: archive[k] for k in archive.files}
    except CorruptFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, RuntimeError, NotImplementedError) as error:
        reason = "an array holds pickled Python objects, which are never loaded" if "pickle" in str(error) \
            else f"{type(error).__name__}: {error}"
        raise CorruptFileError(f"{path} is not a readable .npz file ({reason})") from error
    strays = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
    if strays:
        raise CorruptFileError(f"{path} is not a readable .npz file ({strays} are not .npy arrays)")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path} lacks the arrays {missing}; it has {sorted(arrays)}")
    return arrays, hashlib.sha256(data).hexdigest()


def _check_declared_size(archive, key, path):
    """Refuse a member whose .npy header declares more bytes than the member holds (CorruptFileError)."""
    member = archive.getinfo(key + ".npy")
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > member.file_size:
        raise CorruptFileError(f"{path}: the array {key!r} declares shape {shape} ({declared} bytes) but holds "
                               f"only {member.file_size} bytes (a damaged file)")


def stored_array(arrays, key, path, shape=None, finite=True):
    """``arrays[key]`` (from :func:`load_npz` of ``path``) as float64, checked; CorruptFileError otherwise.

    ``shape`` is a tuple of ints or None (any length on that axis), ``()`` for a scalar; ``finite``
    refuses NaN and infinity. Booleans, complex numbers, strings and missing keys are refused.
    """
    if key not in arrays:
        raise CorruptFileError(f"{path} lacks the array {key!r}; it has {sorted(arrays)}")
    value = arrays[key]
    if value.dtype.kind not in "fiu":
        raise CorruptFileError(f"{path}: {key!r} must hold real numbers, got dtype {value.dtype}")
    if shape is not None and (value.ndim != len(shape)
                              or any(s is not None and s != t for s, t in zip(shape, value.shape))):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise CorruptFileError(f"{path}: {key!r} must have shape {want}, got {value.shape}")
    value = value.astype(np.float64)
    if finite and not np.all(np.isfinite(value)):
        raise CorruptFileError(f"{path}: {key!r} holds NaN or infinite values")
    return value


def save_text(path, text):
    """Write a string (UTF-8) to ``path`` atomically."""
    write_atomic(path, lambda handle: handle.write(text.encode()))


def save_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n"
    write_atomic(path, lambda handle: handle.write(text.encode()))


def load_json(path, expect=None):
    """Read JSON; raise CorruptFileError if it cannot be parsed or (with ``expect``, e.g. dict) is another kind."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise CorruptFileError(f"{path} is not valid JSON ({error})") from error
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "an object {…}", list: "a list […]"}.get(expect, expect.__name__)
        raise CorruptFileError(f"{path} must hold {kind}, got JSON {type(value).__name__}")
    return value


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
