"""Process-level settings that make the small-matrix training loop fast.

Two facts about this workload (measured when the plain loop was the only engine):

* Every step of the plain loop allocates (B, n) temporaries of about 0.5 MB (the fast
  engine's per-chunk arrays are of that order too). glibc's ``malloc``
  hands blocks above its mmap threshold back to the operating system on
  ``free``, so each step page-faults the same memory in again: about 40 % of
  the run time at the paper's settings. :func:`keep_freed_memory` raises the
  thresholds with ``mallopt`` so freed blocks stay in the heap (Linux/glibc
  only; elsewhere it does nothing and returns False).
* The matrices are small (≤ 1000 × 100). Two BLAS threads help one training
  process a little, but two worker processes with two threads each on two cores
  slow each other several-fold. And a product's last bits depend on how many
  threads split it, so one config would give different weights on differently
  loaded machines. :func:`single_blas_thread` therefore pins the OpenBLAS that
  NumPy and SciPy load to one thread for the duration of a training or an
  evaluation (through OpenBLAS's own ``*_set_num_threads``), whatever
  ``OPENBLAS_NUM_THREADS`` says; parallelism comes from worker processes and
  from training many models per pass, never from BLAS threads. Where no OpenBLAS
  is found (MKL, Accelerate) it does nothing: set ``OMP_NUM_THREADS=1`` /
  ``MKL_NUM_THREADS=1`` yourself for identical bits there.
"""

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3        # mallopt parameters from glibc's malloc.h


def single_thread_blas_env(threads=1, environ=None):
    """Set the BLAS thread count in ``environ`` (default os.environ) unless the user already has.

    Effective only before NumPy is imported in this process (or for child processes).
    """
    environ = os.environ if environ is None else environ
    for name in BLAS_THREAD_VARIABLES:
        environ.setdefault(name, str(threads))
    return environ


@contextlib.contextmanager
def child_blas_threads(threads=1):
    """:func:`single_thread_blas_env` on ``os.environ`` for the processes started in the block;
    afterwards the variables it added are removed again (the user's own are never touched)."""
    added = [name for name in BLAS_THREAD_VARIABLES if name not in os.environ]
    try:
        single_thread_blas_env(threads)
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def keep_freed_memory(threshold_bytes=256 * 1024 * 1024):
    """Ask glibc to keep freed blocks below ``threshold_bytes`` in the heap. Returns True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes))
    ok_trim = mallopt(_M_TRIM_THRESHOLD, int(threshold_bytes) * 2)
    return bool(ok_mmap and ok_trim)



_OPENBLAS_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                     ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                     ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                     ("openblas_set_num_threads", "openblas_get_num_threads"))


@functools.lru_cache(maxsize=1)
def _openblas_controls():
    """(set, get) function pairs of every OpenBLAS library loaded in this process."""
    import numpy  # noqa: F401,I001  (loads NumPy's OpenBLAS)
    import scipy.linalg  # noqa: F401  (loads SciPy's, which may be another copy)

    paths = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(path).lower() and os.path.isfile(path):
                    paths.add(path)
    except OSError:                                             # not Linux: nothing to pin
        return ()
    controls = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                controls.append((setter, getter))
                break
    return tuple(controls)


@contextlib.contextmanager
def single_blas_thread():
    """Run the enclosed code with every loaded OpenBLAS on one thread; restore the counts after.

    Results then depend on the inputs only, never on ``OPENBLAS_NUM_THREADS`` or the machine's load.
    """
    controls = _openblas_controls()
    before = [getter() for _, getter in controls]
    for setter, _ in controls:
        setter(1)
    try:
        yield
    finally:
        for (setter, _), count in zip(controls, before):
            setter(count)


def set_blas_threads(count):
    """Set every loaded OpenBLAS to ``count`` threads (what OPENBLAS_NUM_THREADS does at start-up)."""
    for setter, _ in _openblas_controls():
        setter(int(count))


def blas_thread_counts():
    """The thread count of every loaded OpenBLAS (for tests and the benchmarks)."""
    return [getter() for _, getter in _openblas_controls()]
