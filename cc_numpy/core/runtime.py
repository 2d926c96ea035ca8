"""Process-level settings that make the small-matrix training loop fast.

Two facts about this workload (measured in ``benchmarks/bench_train.py``):

* Every step allocates (B, n) temporaries of about 0.5 MB. glibc's ``malloc``
  hands blocks above its mmap threshold back to the operating system on
  ``free``, so each step page-faults the same memory in again: about 40 % of
  the run time at the paper's settings. :func:`keep_freed_memory` raises the
  thresholds with ``mallopt`` so freed blocks stay in the heap (Linux/glibc
  only; elsewhere it does nothing and returns False).
* The matrices are small (≤ 1000 × 100). Two BLAS threads help one training
  process a little, but two worker processes with two threads each on two cores
  slow each other several-fold. The BLAS thread count can only be set before
  NumPy is first imported, through the environment
  (:func:`single_thread_blas_env`); the parallel reproduction workers do that.
"""

import ctypes
import ctypes.util
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

