"""Eigen-analysis of a trained simplified MLP against its mixing matrix.

The idea
--------
The simplified model ŷ = W_out ReLU(W_in x) is trained on y = ReLU(x) + σ M x.
With d_mlp = 50 neurons it cannot represent all n = 100 features. The paper's
finding is that the neurons do not pick 50 features: they live in the
subspace spanned by the top-d_mlp eigenvectors of the symmetrised mixing
matrix (M + Mᵀ)/2. Seen through the product W_out W_in (n × n, rank ≤ d_mlp),
each of the first ≈ 45 eigenvectors is mapped (almost) onto a multiple of
itself, and the eigenvectors beyond ≈ 50 are (almost) discarded.

Notation (column vectors)
-------------------------
    n, d_mlp      features, neurons
    W_in          d_mlp × n, row j = neuron j's input weights w_j
    W_out         n × d_mlp, column j = neuron j's output weights
    M             n × n, the unscaled mixing matrix; σ its scale
    S             (M + Mᵀ)/2 = E Λ Eᵀ, the symmetrised mixing matrix
    E             n × n orthonormal, column E_k = k-th eigenvector of S,
                  sorted by descending eigenvalue λ_1 ≥ λ_2 ≥ … ≥ λ_n
    A             W_out W_in, n × n: the model's linear map if every
                  pre-activation were positive

Why A against σM. One active feature x = t e_i, t > 0, gives
ŷ = t W_out ReLU(W_in e_i), the label is t (e_i + σ M e_i): a neuron with
non-negative input weights makes column i of A fit column i of I + σM, so
(W_out W_in)_oi is read against σM_oi (output o, input i; the same index
order as y_o = ReLU(x_o) + σ Σ_i M_oi x_i).

The measurements
----------------
    alignment      cos_k = ⟨E_k, A E_k⟩ / (‖E_k‖ ‖A E_k‖)        (cos_k := 0 when A E_k = 0)
    fractions      input:  ‖E_{:k}ᵀ w_j‖² / ‖w_j‖²   (row j of W_in)
                   output: ‖E_{:k}ᵀ W_out[:, j]‖² / ‖W_out[:, j]‖²
                   totals: ‖E_{:k}ᵀ W_inᵀ‖²_F / ‖W_in‖²_F, likewise for W_out
                   (a random direction puts k/n of its squared norm there)
    projections    W_in E (d_mlp × n) and Eᵀ W_out (n × d_mlp), for heat maps
    line fits      (W_out W_in)_ij ≈ slope · σM_ij + intercept, separately
                   for i ≠ j and for i = j (the diagonal also carries the
                   identity part of I + σM)
    mixing SVD     the singular values of I + σM (the best rank-d_mlp
                   linear approximation, Eckart–Young)

Every function works in float64 (inputs are validated, then converted).
"""

import numpy as np

from ..core.validate import check_array, check_float, check_int, check_mlp_weights, check_square

__all__ = [
    "symmetric_eigenbasis",
    "mixing_svd",
    "eigen_alignment",
    "subspace_fractions",
    "projection_matrices",
    "product_vs_mixing_fit",
    "eigen_summary",
]

# A E_k with norm at most this fraction of ‖A‖_F counts as zero in
# eigen_alignment: for an exact projector, A E_k beyond its rank is ~1e-16,
# pure rounding, and its direction is meaningless.
_ZERO_IMAGE_RTOL = 1e-12

# E must satisfy max |EᵀE − I| ≤ this to count as orthonormal.
_ORTHONORMAL_ATOL = 1e-8

# A fit's x values whose spread is at most this fraction of max |x| count as
# constant (e.g. the zero diagonal of the embedding-like M): slope undefined.
_CONSTANT_RTOL = 1e-12


# ---------------------------------------------------------------- input checks

def _check_basis(E, n):
    """E as a float64 (n, n) array with orthonormal columns."""
    check_array(E, "E", ndim=2)
    if E.shape != (n, n):
        raise ValueError(f"E must have shape (n, n) = ({n}, {n}) to match the weights, got {E.shape}")
    E = np.asarray(E, dtype=np.float64)
    deviation = np.max(np.abs(E.T @ E - np.eye(n)))             # (n, n) @ (n, n) -> (n, n)
    if deviation > _ORTHONORMAL_ATOL:
        raise ValueError(
            f"E must have orthonormal columns (e.g. from symmetric_eigenbasis); "
            f"max |EᵀE − I| = {deviation:.2e} > {_ORTHONORMAL_ATOL:g}")
    return E


def _check_k(k, n, name="k"):
    """k as an int in 1..n."""
    k = check_int(k, name)
    if k > n:
        raise ValueError(f"{name} must be between 1 and n = {n}, got {k}")
    return k


# ---------------------------------------------------------------- bases

def symmetric_eigenbasis(M):
    """Eigenvalues and eigenvectors of the symmetrised mixing matrix (M + Mᵀ)/2.

    Parameters
    ----------
    M : (n, n) ndarray, the unscaled mixing matrix (need not be symmetric).

    Returns
    -------
    eigenvalues : (n,) ndarray, sorted in descending order, λ_1 ≥ … ≥ λ_n.
    E : (n, n) ndarray, orthonormal; column E[:, k] is the eigenvector of λ_{k+1},
        so (M + Mᵀ)/2 = E diag(eigenvalues) Eᵀ.

    Each eigenvector's sign is fixed so that its largest-magnitude entry is
    positive (the ± of ``eigh`` is arbitrary; this makes heat maps reproducible).
    Within a repeated eigenvalue the basis is whatever ``eigh`` returns.
    """
    M = check_square(M)
    S = 0.5 * (M + M.T)                                         # (n, n)   S = (M + Mᵀ)/2
    eigenvalues, E = np.linalg.eigh(S)                          # ascending
    eigenvalues, E = eigenvalues[::-1].copy(), E[:, ::-1].copy()  # descending λ_1 ≥ … ≥ λ_n
    largest = np.argmax(np.abs(E), axis=0)                      # (n,) row of each column's largest |entry|
    signs = np.sign(E[largest, np.arange(E.shape[1])])          # (n,)
    signs[signs == 0] = 1.0
    return eigenvalues, E * signs                               # (n, n) * (n,) -> (n, n)


def mixing_svd(M, sigma):
    """Singular value decomposition of I + σM.

    Parameters
    ----------
    M : (n, n) ndarray, the unscaled mixing matrix.
    sigma : float, σ.

    Returns
    -------
    singular_values : (n,) ndarray, descending.
    U : (n, n) ndarray, left singular vectors (columns).
    Vt : (n, n) ndarray, right singular vectors (rows), so I + σM = U diag(s) Vt.
    """
    M = check_square(M)
    sigma = check_float(sigma, "sigma")
    target = np.eye(M.shape[0]) + sigma * M                     # (n, n)   I + σM
    U, singular_values, Vt = np.linalg.svd(target)
    return singular_values, U, Vt


# ---------------------------------------------------------------- alignment and subspaces

def eigen_alignment(W_in, W_out, E):
    """cos(E_k, W_out W_in E_k) for every column E_k of E.

    Parameters
    ----------
    W_in : (d_mlp, n) ndarray.
    W_out : (n, d_mlp) ndarray.
    E : (n, n) ndarray with orthonormal columns (from :func:`symmetric_eigenbasis`).

    Returns
    -------
    cos : (n,) ndarray in [-1, 1]; cos[k] = ⟨E_k, A E_k⟩ / ‖A E_k‖ with A = W_out W_in.
        Where A E_k = 0 (norm ≤ 1e-12 ‖A‖_F, i.e. zero up to rounding) cos[k] = 0:
        the model discards that eigenvector.
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    E = _check_basis(E, n)
    A = W_out @ W_in                                            # (n, d_mlp) @ (d_mlp, n) -> (n, n)
    images = A @ E                                              # (n, n) @ (n, n) -> (n, n)   column k = A E_k
    image_norms = np.linalg.norm(images, axis=0)                # (n,)   ‖A E_k‖
    basis_norms = np.linalg.norm(E, axis=0)                     # (n,)   ‖E_k‖ (= 1)
    inner = np.sum(E * images, axis=0)                          # (n,)   ⟨E_k, A E_k⟩
    nonzero = image_norms > _ZERO_IMAGE_RTOL * np.linalg.norm(A)
    cos = np.zeros(n)
    cos[nonzero] = inner[nonzero] / (basis_norms[nonzero] * image_norms[nonzero])
    return np.clip(cos, -1.0, 1.0)


def _fractions_inside(vectors, basis):
    """Per-column and total fraction of squared norm inside span(basis).

    vectors (n, m), basis (n, k) orthonormal. Returns ((m,) fractions, total);
    a zero column has fraction 0, and all-zero vectors give total 0.
    """
    inside = np.sum((basis.T @ vectors) ** 2, axis=0)           # (k, n) @ (n, m) -> (k, m) -> (m,)   ‖Bᵀv‖²
    norms = np.sum(vectors ** 2, axis=0)                        # (m,)   ‖v‖²
    fractions = np.zeros(vectors.shape[1])
    nonzero = norms > 0
    fractions[nonzero] = inside[nonzero] / norms[nonzero]
    total_norm = np.sum(norms)
    total = float(np.sum(inside) / total_norm) if total_norm > 0 else 0.0
    return np.clip(fractions, 0.0, 1.0), min(max(total, 0.0), 1.0)


def subspace_fractions(W_in, W_out, E, k=50):
    """How much of each neuron's weights lies in the span of the top-k eigenvectors.

    Parameters
    ----------
    W_in : (d_mlp, n) ndarray.
    W_out : (n, d_mlp) ndarray.
    E : (n, n) ndarray with orthonormal columns, sorted (from :func:`symmetric_eigenbasis`).
    k : int in 1..n, the subspace is span(E[:, :k]).

    Returns
    -------
    dict with
        ``input_fraction`` : (d_mlp,) ‖E[:, :k]ᵀ w_j‖² / ‖w_j‖² for each row w_j of W_in
            (0 for an all-zero row);
        ``output_fraction`` : (d_mlp,) the same for each column of W_out;
        ``input_fraction_total`` : float, ‖E[:, :k]ᵀ W_inᵀ‖²_F / ‖W_in‖²_F (squared-norm weighted);
        ``output_fraction_total`` : float, ‖E[:, :k]ᵀ W_out‖²_F / ‖W_out‖²_F;
        ``random_baseline`` : float, k / n, the expected fraction of a random direction.
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    E = _check_basis(E, n)
    k = _check_k(k, n)
    top = E[:, :k]                                              # (n, k)   E_1 … E_k
    input_fraction, input_total = _fractions_inside(W_in.T, top)      # rows of W_in as columns (n, d_mlp)
    output_fraction, output_total = _fractions_inside(W_out, top)     # columns of W_out (n, d_mlp)
    return {"input_fraction": input_fraction, "output_fraction": output_fraction,
            "input_fraction_total": input_total, "output_fraction_total": output_total,
            "random_baseline": k / n}


def projection_matrices(W_in, W_out, E):
    """Each neuron's weights written in the eigenbasis, for heat maps.

    Parameters
    ----------
    W_in : (d_mlp, n) ndarray.
    W_out : (n, d_mlp) ndarray.
    E : (n, n) ndarray with orthonormal columns (from :func:`symmetric_eigenbasis`).

    Returns
    -------
    dict with
        ``input`` : (d_mlp, n) W_in E; entry (j, k) = ⟨w_j, E_k⟩, neuron j's input weights
            along eigenvector k;
        ``output`` : (n, d_mlp) Eᵀ W_out; entry (k, j) = ⟨E_k, W_out[:, j]⟩.
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    E = _check_basis(E, n)
    return {"input": W_in @ E,                                  # (d_mlp, n) @ (n, n) -> (d_mlp, n)
            "output": E.T @ W_out}                              # (n, n) @ (n, d_mlp) -> (n, d_mlp)


# ---------------------------------------------------------------- W_out W_in against σM

def _line_fit(x, y):
    """Least-squares y ≈ slope · x + intercept and its r².

    x, y : (m,) arrays, m ≥ 2. If x is constant (spread ≤ 1e-12 max |x|) the slope
    is undefined: slope = r² = nan and intercept = mean(y). If y is constant and
    fitted exactly, r² = 1.
    """
    x_mean, y_mean = np.mean(x), np.mean(y)
    dx, dy = x - x_mean, y - y_mean                             # (m,), (m,)
    sxx, sxy, syy = np.dot(dx, dx), np.dot(dx, dy), np.dot(dy, dy)
    spread = np.sqrt(sxx / x.size)
    if sxx == 0 or spread <= _CONSTANT_RTOL * np.max(np.abs(x)):
        return {"slope": float("nan"), "intercept": float(y_mean), "r2": float("nan")}
    slope = sxy / sxx                                           # β = Σ dx dy / Σ dx²
    intercept = y_mean - slope * x_mean                         # α = ȳ − β x̄
    residual = np.sum((y - (slope * x + intercept)) ** 2)       # SS_res
    r2 = 1.0 - residual / syy if syy > 0 else 1.0               # r² = 1 − SS_res / SS_tot
    return {"slope": float(slope), "intercept": float(intercept), "r2": float(r2)}


def product_vs_mixing_fit(W_in, W_out, M, sigma):
    """Line fits of (W_out W_in)_ij against σM_ij, off the diagonal and on it.

    Parameters
    ----------
    W_in : (d_mlp, n) ndarray.
    W_out : (n, d_mlp) ndarray.
    M : (n, n) ndarray, the unscaled mixing matrix (n ≥ 2).
    sigma : float, σ.

    Returns
    -------
    dict with
        ``offdiag`` : {"slope", "intercept", "r2"} (floats), fit over the n(n − 1) entries i ≠ j;
        ``diag`` : {"slope", "intercept", "r2"} (floats), fit over the n entries i = i;
        ``offdiag_x`` : (n(n − 1),) σM_ij, i ≠ j (row-major order);
        ``offdiag_y`` : (n(n − 1),) (W_out W_in)_ij at the same positions;
        ``diag_x`` : (n,) σM_ii;
        ``diag_y`` : (n,) (W_out W_in)_ii.
    A slope is nan when its x values are constant (e.g. the zero diagonal of the
    embedding-like M); the intercept is then the mean of y.
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    M = check_square(M)
    if M.shape != (n, n):
        raise ValueError(f"M must have shape (n, n) = ({n}, {n}) to match the weights, got {M.shape}")
    if n < 2:
        raise ValueError(f"the fits need n >= 2 features (off-diagonal entries), got n = {n}")
    sigma = check_float(sigma, "sigma")
    A = W_out @ W_in                                            # (n, d_mlp) @ (d_mlp, n) -> (n, n)   A_oi: input i → output o
    scaled = sigma * M                                          # (n, n)   σM_oi, same index order
    off = ~np.eye(n, dtype=bool)                                # (n, n) mask i ≠ j
    offdiag_x, offdiag_y = scaled[off], A[off]                  # (n(n−1),), (n(n−1),)
    diag_x, diag_y = np.diag(scaled).copy(), np.diag(A).copy()  # (n,), (n,)
    return {"offdiag": _line_fit(offdiag_x, offdiag_y),         # A_ij ≈ β σM_ij + α, i ≠ j
            "diag": _line_fit(diag_x, diag_y),                  # A_ii ≈ β σM_ii + α
            "offdiag_x": offdiag_x, "offdiag_y": offdiag_y,
            "diag_x": diag_x, "diag_y": diag_y}


# ---------------------------------------------------------------- summary

def eigen_summary(W_in, W_out, M, sigma, k=50, head=40, tail_start=60):
    """The eigen-analysis in one flat dict of plain floats, for reports.

    Parameters
    ----------
    W_in : (d_mlp, n) ndarray.
    W_out : (n, d_mlp) ndarray.
    M : (n, n) ndarray, the unscaled mixing matrix.
    sigma : float, σ.
    k : int in 1..n, the subspace span(E_1 … E_k) for the fractions.
    head : int in 1..n, the alignment is averaged over E_1 … E_head.
    tail_start : int in 0..n − 1, the "tail" is E_{tail_start+1} … E_n (beyond the tail_start-th).

    Returns
    -------
    dict of floats:
        ``cos_mean_head`` : mean cos(E_k, W_out W_in E_k) over the first ``head`` eigenvectors;
        ``cos_min_head`` : their minimum;
        ``cos_max_tail``, ``cos_mean_tail`` : max and mean beyond the ``tail_start``-th;
        ``input_fraction_total``, ``output_fraction_total`` : squared-norm weighted fractions
            of W_in's rows / W_out's columns inside span(E_1 … E_k);
        ``input_fraction_min``, ``output_fraction_min`` : the smallest per-neuron fractions;
        ``random_baseline`` : k / n;
        ``offdiag_slope``, ``offdiag_intercept``, ``offdiag_r2``,
        ``diag_slope``, ``diag_intercept``, ``diag_r2`` : the fits of
            :func:`product_vs_mixing_fit`;
        ``sigma``, ``k``, ``head``, ``tail_start`` : the settings used (as floats).
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    M = check_square(M)
    if M.shape != (n, n):
        raise ValueError(f"M must have shape (n, n) = ({n}, {n}) to match the weights, got {M.shape}")
    k = _check_k(k, n)
    head = _check_k(head, n, "head")
    tail_start = check_int(tail_start, "tail_start", minimum=0)
    if tail_start >= n:
        raise ValueError(f"tail_start must be between 0 and n − 1 = {n - 1}, got {tail_start}")
    sigma = check_float(sigma, "sigma")
    _, E = symmetric_eigenbasis(M)
    cos = eigen_alignment(W_in, W_out, E)                       # (n,)
    fractions = subspace_fractions(W_in, W_out, E, k)
    fits = product_vs_mixing_fit(W_in, W_out, M, sigma)
    return {
        "cos_mean_head": float(np.mean(cos[:head])),
        "cos_min_head": float(np.min(cos[:head])),
        "cos_max_tail": float(np.max(cos[tail_start:])),
        "cos_mean_tail": float(np.mean(cos[tail_start:])),
        "input_fraction_total": fractions["input_fraction_total"],
        "output_fraction_total": fractions["output_fraction_total"],
        "input_fraction_min": float(np.min(fractions["input_fraction"])),
        "output_fraction_min": float(np.min(fractions["output_fraction"])),
        "random_baseline": float(fractions["random_baseline"]),
        "offdiag_slope": fits["offdiag"]["slope"],
        "offdiag_intercept": fits["offdiag"]["intercept"],
        "offdiag_r2": fits["offdiag"]["r2"],
        "diag_slope": fits["diag"]["slope"],
        "diag_intercept": fits["diag"]["intercept"],
        "diag_r2": fits["diag"]["r2"],
        "sigma": sigma,
        "k": float(k),
        "head": float(head),
        "tail_start": float(tail_start),
    }
