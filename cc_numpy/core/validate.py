"""Input checks shared by every public function.

Each checker either returns the (possibly converted) value or raises an error
whose message says what was given and what is allowed: ``TypeError`` for the
wrong kind of object (a list where an array is expected, a float where an int
is), ``ValueError`` for a value out of range. The command line turns
``ValueError`` into a one-line ``error:`` and exit code 2; it only ever passes
values of the right type, so a ``TypeError`` there is a bug and keeps its
traceback.
"""

import numbers
import os

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_rng(rng, name="rng"):
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise TypeError."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_int(value, name, minimum=1):
    """Return ``value`` as an int >= ``minimum``; bools and non-integers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_float(value, name, low=-np.inf, high=np.inf, low_open=False, high_open=False):
    """Return ``value`` as a finite float inside the given interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    allowed = f"{left}{low:g}, {high:g}{right}"
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, in {allowed}; got {value}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ValueError(f"{name} must be in {allowed}, got {value:g}")
    return value


def check_probability(p, name="p"):
    """A feature-activity probability: a finite float in (0, 1]."""
    return check_float(p, name, 0.0, 1.0, low_open=True)


def check_choice(value, name, allowed):
    """Return ``value`` if it is one of ``allowed`` (a tuple of strings)."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value


def check_dtype(dtype):
    """Return a NumPy float type from 'float32' / 'float64' (or the types themselves)."""
    if isinstance(dtype, str):
        check_choice(dtype, "dtype", tuple(DTYPES))
        return DTYPES[dtype]
    if dtype in (np.float32, np.float64):
        return dtype
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def check_array(a, name, shape=None, ndim=None):
    """Return ``a`` as a finite real ndarray with the given shape (None = any size).

    ``shape`` is a tuple whose entries are ints or None (any length on that axis).
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if shape is not None:
        ok = a.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, a.shape))
        if not ok:
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def check_square(M, name="M"):
    """Return ``M`` as a finite, non-empty, square float64 (n, n) array."""
    check_array(M, name, ndim=2)
    if M.shape[0] != M.shape[1] or M.size == 0:
        raise ValueError(f"{name} must be square (n, n) and non-empty, got shape {M.shape}")
    return np.asarray(M, dtype=np.float64)


def check_mlp_weights(W_in, W_out):
    """Return W_in (d_mlp, n) and W_out (n, d_mlp) as float64 arrays, or raise if they do not fit together."""
    check_matrix(W_in, "W_in")
    d_mlp, n = W_in.shape
    check_array(W_out, "W_out", ndim=2)
    if W_out.shape != (n, d_mlp):
        raise ValueError(f"W_out must have shape (n, d_mlp) = ({n}, {d_mlp}) to match W_in of shape "
                         f"(d_mlp, n) = {W_in.shape}, got {W_out.shape}")
    return np.asarray(W_in, dtype=np.float64), np.asarray(W_out, dtype=np.float64)


def check_matrix(A, name):
    """Return ``A`` as a finite, non-empty, 2-D float64 array."""
    check_array(A, name, ndim=2)
    if A.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {A.shape}")
    return np.asarray(A, dtype=np.float64)


def check_mixing(M, sigma, n):
    """Validate the label mixing (M, σ) for n features; return ``(M as float64 or None, σ)``.

    M None means clean labels, which needs σ = 0.
    """
    sigma = check_float(sigma, "sigma")
    if M is None:
        if sigma != 0.0:
            raise ValueError(f"sigma={sigma} was given but M is None; pass an (n, n) = ({n}, {n}) "
                             "mixing matrix M, or sigma=0.0 for clean labels")
        return None, sigma
    M = check_square(M)
    if M.shape != (n, n):
        raise ValueError(f"M must have shape (n, n) = ({n}, {n}), got {M.shape}")
    return M, sigma


def check_enough_active(p, slots, name="p", what="a batch", minimum=1.0):
    """Refuse a p so small that ``slots`` Bernoulli(p) entries hold fewer than ``minimum`` actives on average.

    ``slots`` is the number of entries drawn (e.g. batch_size · n); ``what`` names them in the message.
    """
    expected = p * slots
    if expected < minimum:
        raise ValueError(f"{name} = {p:g} is too small for {what}: {slots:g} entries would hold {expected:.3g} "
                         f"active features on average (at least {minimum:g} needed); allowed: "
                         f"{name} in [{minimum / slots:.3g}, 1]")
    return p


def physical_memory():
    """Bytes of physical memory, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


MEMORY_FRACTION = 0.5     # refuse a job whose estimate exceeds this share of physical memory


def check_memory(parts, what="this run"):
    """Refuse before allocating when the estimated bytes exceed ``MEMORY_FRACTION`` of physical memory.

    ``parts`` maps a name (a flag, e.g. '--steps') to the bytes it is estimated to cost; the message
    names the largest part.
    """
    total = sum(parts.values())
    available = physical_memory()
    if available is None or total <= MEMORY_FRACTION * available:
        return total
    name, largest = max(parts.items(), key=lambda item: item[1])
    raise ValueError(f"{what} would need about {format_bytes(total)}, more than {MEMORY_FRACTION:.0%} of this "
                     f"machine's {format_bytes(available)} of memory, {format_bytes(largest)} of it for {name}: lower {name}")


def format_bytes(count):
    """A byte count for a message: '1.26 GB'."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.3g} {unit}"
        count /= 1000
    return f"{count:.3g} EB"
