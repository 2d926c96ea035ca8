r"""The sparse limit p → 0 of the simplified CC model, in closed form.

Model and labels (column-vector notation, as in the tutorial):

    ŷ = W_out ReLU(W_in x),      W_in: d_mlp × n,  W_out: n × d_mlp
    y = ReLU(x) + σ M x,         M: n × n  (M = None or σ = 0: clean labels)

Each of the n features is active with probability p, an active feature is
uniform in [-1, 1]. L is the mean over batch and features of (ŷ − y)², and
the metric is L/p.

Derivation of lim_{p→0} L/p
---------------------------
1. Zero active features: x = 0 gives ŷ = 0 (no biases) and y = 0, so no error.
   Exactly one active feature has probability n p (1 − p)^{n−1} = n p + O(p²);
   two or more have probability O(p²). So only the one-active inputs survive
   in L/p as p → 0, and given one is active, its index i is uniform on 1..n.

2. Feature i active with value v, x = v e_i, and w_i = column i of W_in,
   m_i = column i of M. ReLU is positively homogeneous, ReLU(c z) = c ReLU(z)
   for c ≥ 0, so

   v > 0:  ŷ − y = v W_out ReLU(w_i) − v e_i − σ v m_i   = v · a⁺_i,
           a⁺_i = W_out ReLU(w_i) − e_i − σ m_i
   v < 0:  ŷ − y = |v| W_out ReLU(−w_i) − 0 + σ |v| m_i  = |v| · a⁻_i,
           a⁻_i = W_out ReLU(−w_i) + σ m_i

   (for v < 0, ReLU(v e_i) = 0 and σ M v e_i = −σ |v| m_i).

3. For v ~ U[-1, 1], E[v² 1{v > 0}] = ∫₀¹ v² · ½ dv = 1/6, and the same for
   v < 0. Hence E_v ‖ŷ − y‖² = (1/6)(‖a⁺_i‖² + ‖a⁻_i‖²).

4. L = E‖ŷ − y‖² / n. Summing over which feature is active:

       L = Σ_i p (1/6)(‖a⁺_i‖² + ‖a⁻_i‖²) / n + O(p²),

       lim_{p→0} L/p = (1/(6n)) Σ_i (‖a⁺_i‖² + ‖a⁻_i‖²)
                     = (1/(6n)) (‖W_out H⁺ − (I + σM)‖²_F + ‖W_out H⁻ + σM‖²_F),

   with H⁺ = ReLU(W_in) and H⁻ = ReLU(−W_in) taken elementwise (d_mlp × n);
   the columns of W_out H⁺ − I − σM are the a⁺_i.

   The same number is n × (mean squared error on exactly-one-active inputs
   with the active index uniform), which is how monte_carlo_small_p_loss
   estimates it; with n = 100 it is the authors' "MSE / 0.01" evaluation.

Checks
------
* Naive model (d_mlp ≤ n; neuron j reads and writes feature j for j ≤ d_mlp):
  a⁺_i = −σ m_i, a⁻_i = σ m_i for represented features, a⁺_i = −e_i − σ m_i,
  a⁻_i = σ m_i for the others, so

      L/p → (n − d_mlp)/(6n) + σ/(3n) Σ_{i > d_mlp} M_ii + σ² ‖M‖²_F/(3n).

  Clean labels, n = 100, d_mlp = 50: 50/600 = 1/12. With M iid N(0, 1),
  E‖M‖²_F = n², and the expectation is 1/12 + σ² n/3. 

* Lower bound (small_p_lower_bound). W_out H⁺ and W_out H⁻ have rank at most
  d_mlp, so by Eckart–Young–Mirsky, for ANY W_in and W_out,

      ‖W_out H⁺ − (I + σM)‖²_F ≥ Σ_{k > d_mlp} s_k(I + σM)²,
      ‖W_out H⁻ + σM‖²_F      ≥ Σ_{k > d_mlp} s_k(σM)²,

  with s_k the singular values in descending order. On clean labels every
  s_k(I) = 1, so L/p ≥ (n − d_mlp)/(6n): the naive model is an exact
  minimiser, and no MLP of this form can beat 1/12 (n = 100, d_mlp = 50) in
  the sparse limit. One feature is active at a time, so the network acts on
  the 2n signed one-hot inputs like a linear map of rank ≤ d_mlp; fitting the
  identity on n of them leaves n − d_mlp unit singular values uncovered. With
  mixing the bound is loose (it ignores H± ≥ 0 and their disjoint supports),
  but it is still a valid floor for optimise_small_p.

Functions here: small_p_loss, small_p_loss_and_grad (exact limit and its
gradient), small_p_lower_bound, one_active_batch, monte_carlo_small_p_loss
(sampled check of the limit), optimise_small_p (L-BFGS-B from random
starts, or first from given weights) and optimise_small_p_continued (the same,
first following one minimum up from weak mixing).
"""

import copy
import numbers

import numpy as np
import scipy.optimize

from ..core.runtime import single_blas_thread
from ..core.validate import check_int, check_mixing, check_mlp_weights, check_rng


def naive_clean_loss_over_p(n, d_mlp):
    """(n − d_mlp)/(6n): L/p of the naive model on clean labels at every p (1/12 for n = 100, d_mlp = 50).

    Each of the n − d_mlp unrepresented outputs misses E[ReLU(x)²] = 1/6 per active feature.
    """
    return max(n - d_mlp, 0) / (6.0 * n)

__all__ = [
    "small_p_loss",
    "small_p_loss_and_grad",
    "small_p_lower_bound",
    "small_p_joint_lower_bound",
    "one_active_batch",
    "monte_carlo_small_p_loss",
    "optimise_small_p",
    "optimise_small_p_continued",
]

# Rows per chunk in monte_carlo_small_p_loss: (chunk, n) float64 blocks stay small.
_MC_CHUNK_ROWS = 1 << 15


def _sigma_M(M, sigma, n):
    """Validate (M, σ) for n features through validate.check_mixing; return σM (n, n), or None if clean."""
    M, sigma = check_mixing(M, sigma, n)
    return None if M is None or sigma == 0.0 else sigma * M       # σM, (n, n)


# --------------------------------------------------------------------------
# Exact small-p loss: forward / backward
# --------------------------------------------------------------------------

def _small_p_forward(W_in, W_out, sigma_M):
    """Exact lim_{p→0} L/p on validated float64 inputs.

    Inputs:  W_in (d_mlp, n), W_out (n, d_mlp), sigma_M (n, n) or None.
    Returns: loss (float), cache = (W_in, W_out, H_pos, H_neg, A_pos, A_neg).
    """
    n = W_in.shape[1]
    H_pos = np.maximum(W_in, 0.0)                    # H⁺ = ReLU(W_in),  (d_mlp, n)
    H_neg = np.maximum(-W_in, 0.0)                   # H⁻ = ReLU(−W_in), (d_mlp, n)
    A_pos = W_out @ H_pos                            # (n, d_mlp) @ (d_mlp, n) -> (n, n)
    A_pos[np.diag_indices(n)] -= 1.0                 # a⁺_i = W_out ReLU(w_i) − e_i ...
    A_neg = W_out @ H_neg                            # a⁻_i = W_out ReLU(−w_i) ..., (n, n)
    if sigma_M is not None:
        A_pos -= sigma_M                             # ... − σ m_i
        A_neg += sigma_M                             # ... + σ m_i
    loss = (np.sum(A_pos**2) + np.sum(A_neg**2)) / (6.0 * n)  # (1/6n) Σ_i ‖a⁺_i‖² + ‖a⁻_i‖²
    return float(loss), (W_in, W_out, H_pos, H_neg, A_pos, A_neg)


def _small_p_backward(cache):
    """Gradient of the exact small-p loss from the forward cache.

    Returns dW_in (d_mlp, n), dW_out (n, d_mlp). ReLU'(0) is taken as 0.
    """
    W_in, W_out, H_pos, H_neg, A_pos, A_neg = cache
    n = W_in.shape[1]
    scale = 2.0 / (6.0 * n)                          # d/dA of ‖A‖²/(6n) = 2A/(6n)
    dA_pos = scale * A_pos                           # (n, n)
    dA_neg = scale * A_neg                           # (n, n)
    dW_out = dA_pos @ H_pos.T + dA_neg @ H_neg.T     # (n, n) @ (n, d_mlp) -> (n, d_mlp)
    dH_pos = W_out.T @ dA_pos                        # (d_mlp, n) @ (n, n) -> (d_mlp, n)
    dH_neg = W_out.T @ dA_neg                        # (d_mlp, n)
    # H⁺ = ReLU(W_in): ∂/∂W_in = 1[W_in > 0];  H⁻ = ReLU(−W_in): ∂/∂W_in = −1[W_in < 0]
    dW_in = np.where(W_in > 0.0, dH_pos, 0.0) - np.where(W_in < 0.0, dH_neg, 0.0)
    return dW_in, dW_out


def small_p_loss(W_in, W_out, M=None, sigma=0.0):
    """Exact sparse limit lim_{p→0} L/p of the MLP ŷ = W_out ReLU(W_in x).

    Labels y = ReLU(x) + σ M x; see the module docstring for the derivation
    L/p → (1/(6n)) (‖W_out ReLU(W_in) − I − σM‖²_F + ‖W_out ReLU(−W_in) + σM‖²_F).

    Parameters
    ----------
    W_in : array (d_mlp, n)
    W_out : array (n, d_mlp)
    M : array (n, n) or None
        Mixing matrix; None means clean labels (then sigma must be 0).
    sigma : float
        Mixing magnitude σ.

    Returns
    -------
    float : the limit of L/p (≥ 0).
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    sigma_M = _sigma_M(M, sigma, W_in.shape[1])
    loss, _ = _small_p_forward(W_in, W_out, sigma_M)
    return loss


def small_p_loss_and_grad(W_in, W_out, M=None, sigma=0.0):
    """Exact small-p limit of L/p and its analytic gradient.

    Parameters as in `small_p_loss`: W_in (d_mlp, n), W_out (n, d_mlp),
    M (n, n) or None, sigma float.

    Returns
    -------
    loss : float
    grads : dict with "W_in" (d_mlp, n) and "W_out" (n, d_mlp), float64.
        The ReLU derivative is taken as 0 at 0 (the loss has kinks where an
        entry of W_in is exactly 0).
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    sigma_M = _sigma_M(M, sigma, W_in.shape[1])
    loss, cache = _small_p_forward(W_in, W_out, sigma_M)
    dW_in, dW_out = _small_p_backward(cache)
    return loss, {"W_in": dW_in, "W_out": dW_out}


def small_p_lower_bound(n, d_mlp, M=None, sigma=0.0):
    """Eckart–Young floor on lim_{p→0} L/p over all W_in, W_out.

    bound = (1/(6n)) (Σ_{k > d_mlp} s_k(I + σM)² + Σ_{k > d_mlp} s_k(σM)²),
    s_k the singular values in descending order (module docstring). Clean
    labels give (n − d_mlp)/(6n) for d_mlp ≤ n, which the naive model attains.

    Parameters
    ----------
    n, d_mlp : int ≥ 1
    M : array (n, n) or None
    sigma : float

    Returns
    -------
    float
    """
    return _eckart_young_floor(n, d_mlp, M, sigma, lambda sigma_M: [np.eye(n) + sigma_M, sigma_M])


def small_p_joint_lower_bound(n, d_mlp, M=None, sigma=0.0):
    """Joint Eckart–Young floor on lim_{p→0} L/p over all W_in, W_out (≥ small_p_lower_bound).

    1. 6n L/p = ‖W_out H⁺ − (I + σM)‖²_F + ‖W_out H⁻ − (−σM)‖²_F = ‖W_out [H⁺ H⁻] − Z‖²_F, Z = [I + σM, −σM].
    2. W_out [H⁺ H⁻] (n × 2n) = W_out (n × d_mlp) times [H⁺ H⁻] (d_mlp × 2n) has rank ≤ d_mlp.
    3. Eckart–Young on Z: L/p ≥ (1/(6n)) Σ_{k > d_mlp} s_k(Z)² ≥ small_p_lower_bound (one rank-d_mlp
       map fitting both blocks is also a rank-d_mlp map for each block, so its minimum is not smaller).

    s_k are the singular values of Z in descending order (there are n of them,
    so the bound is 0 for d_mlp ≥ n). Clean labels give (n − d_mlp)/(6n), the
    same as small_p_lower_bound. Like it, the bound ignores H± ≥ 0 and their
    disjoint supports, so it is a valid floor, not in general attained.

    Parameters
    ----------
    n, d_mlp : int ≥ 1
    M : array (n, n) or None
    sigma : float

    Returns
    -------
    float
    """
    return _eckart_young_floor(n, d_mlp, M, sigma, lambda sigma_M: [np.hstack([np.eye(n) + sigma_M, -sigma_M])])


def _eckart_young_floor(n, d_mlp, M, sigma, targets):
    """(1/(6n)) Σ over ``targets(σM)`` of Σ_{k > d_mlp} s_k(target)²; clean labels: (n − d_mlp)/(6n)."""
    n, d_mlp = check_int(n, "n"), check_int(d_mlp, "d_mlp")
    sigma_M = _sigma_M(M, sigma, n)
    if sigma_M is None:
        return naive_clean_loss_over_p(n, d_mlp)     # s_k(I) = s_k([I 0]) = 1 for all k: the naive model's loss
    tail = sum(np.sum(np.linalg.svd(target, compute_uv=False)[d_mlp:] ** 2) for target in targets(sigma_M))
    return float(tail / (6.0 * n))                   # s_k in descending order


# --------------------------------------------------------------------------
# Sampled check: exactly-one-active inputs
# --------------------------------------------------------------------------

def _one_active_rows(feature_index, n, rng):
    """Rows e_i · v with i = feature_index[b], v ~ U[-1, 1]; returns (B, n) float64."""
    batch_size = feature_index.shape[0]
    values = rng.uniform(-1.0, 1.0, size=batch_size)                 # (B,)
    x = np.zeros((batch_size, n), dtype=np.float64)                  # (B, n)
    x[np.arange(batch_size), feature_index] = values
    return x


def one_active_batch(n, n_per_feature, rng):
    """Inputs with exactly one active feature, each feature equally often.

    Row r has feature r % n active (indices cycle 0, 1, …, n−1, 0, 1, …), so
    every feature appears exactly n_per_feature times; its value is
    U[-1, 1], drawn independently per row. All other entries are 0.

    Parameters
    ----------
    n : int ≥ 1, number of features.
    n_per_feature : int ≥ 1, rows per feature.
    rng : numpy.random.Generator

    Returns
    -------
    x : array (n * n_per_feature, n), float64
    """
    n, n_per_feature = check_int(n, "n"), check_int(n_per_feature, "n_per_feature")
    check_rng(rng)
    feature_index = np.arange(n * n_per_feature) % n                 # (B,), cycling
    return _one_active_rows(feature_index, n, rng)


def monte_carlo_small_p_loss(W_in, W_out, M, sigma, n_samples, rng):
    """Monte-Carlo estimate of lim_{p→0} L/p, with its standard error.

    Draws n_samples inputs with exactly one active feature, the index
    uniform iid on 0..n−1 (not cycled, so that the samples are iid and the
    usual standard error applies) and the value U[-1, 1]. Per sample,
    ℓ_b = n · mean_o (ŷ_o − y_o)² = ‖ŷ − y‖²; the estimate is the mean of ℓ_b
    (= n × the mean squared error on these inputs), which converges to the
    same limit small_p_loss computes exactly.

    Parameters
    ----------
    W_in : array (d_mlp, n)
    W_out : array (n, d_mlp)
    M : array (n, n) or None (None means clean labels; sigma must be 0)
    sigma : float
    n_samples : int ≥ 2
    rng : numpy.random.Generator

    Returns
    -------
    estimate : float
    standard_error : float, std(ℓ_b, ddof=1) / sqrt(n_samples)
    """
    W_in, W_out = check_mlp_weights(W_in, W_out)
    n = W_in.shape[1]
    sigma_M = _sigma_M(M, sigma, n)
    n_samples = check_int(n_samples, "n_samples", minimum=2)       # no standard error from fewer
    check_rng(rng)

    per_sample = np.empty(n_samples, dtype=np.float64)               # ℓ_b, (N,)
    for start in range(0, n_samples, _MC_CHUNK_ROWS):
        stop = min(start + _MC_CHUNK_ROWS, n_samples)
        feature_index = rng.integers(0, n, size=stop - start)        # (B,), uniform iid
        x = _one_active_rows(feature_index, n, rng)                  # (B, n)
        y_hat = np.maximum(x @ W_in.T, 0.0) @ W_out.T   # ŷ = W_out ReLU(W_in x): (B, n)@(n, d_mlp)@(d_mlp, n) -> (B, n)
        y = np.maximum(x, 0.0)                           # y = ReLU(x) ...
        if sigma_M is not None:
            y = y + x @ sigma_M.T                        # ... + σ M x: (B, n) @ (n, n) -> (B, n)
        per_sample[start:stop] = n * np.mean((y_hat - y) ** 2, axis=1)  # n · MSE per sample
    estimate = float(np.mean(per_sample))
    standard_error = float(np.std(per_sample, ddof=1) / np.sqrt(n_samples))
    return estimate, standard_error


# --------------------------------------------------------------------------
# Optimiser
# --------------------------------------------------------------------------

@single_blas_thread()                       # thousands of small products: a second BLAS thread only slows them
def optimise_small_p(n, d_mlp, M=None, sigma=0.0, rng=None, n_restarts=4, maxiter=5000, warm_start=None):
    """Minimise the exact small-p loss with L-BFGS-B from random starts (or from given weights first).

    Each restart draws W_in (d_mlp, n) uniform in ±√(6/d_mlp) and W_out
    (n, d_mlp) uniform in ±√(6/n) (the authors' initialisation) and runs
    scipy.optimize.minimize(method="L-BFGS-B", jac=True) on
    small_p_loss_and_grad. The loss is piecewise smooth (kinks where an entry
    of W_in crosses 0); L-BFGS-B copes in practice. The best restart is kept.

    The loss has many local minima, and random starts can stop well above
    what other routes reach. ``warm_start`` replaces the first random start
    by given weights: the optimum found at a nearby σ, for instance, so that
    a sweep over σ follows one minimum as σ grows (continuation; used by the
    best-from-M experiment).

    On clean labels the global minimum is (n − d_mlp)/(6n) (the naive loss;
    1/12 for n = 100, d_mlp = 50): see small_p_lower_bound.

    Parameters
    ----------
    n, d_mlp : int ≥ 1
    M : array (n, n) or None
    sigma : float
    rng : numpy.random.Generator (required)
    n_restarts : int ≥ 1, starts in all (warm_start, if given, is the first)
    maxiter : int ≥ 1, L-BFGS-B iterations per restart
    warm_start : optional (W_in (d_mlp, n), W_out (n, d_mlp)), the first start;
        the other n_restarts − 1 are random (the rng draws no weights for it)

    Returns
    -------
    dict with
        "W_in" : (d_mlp, n) best W_in
        "W_out" : (n, d_mlp) best W_out
        "loss" : float, best lim_{p→0} L/p found
        "losses_per_restart" : (n_restarts,) float64, final loss of each restart
        "n_iterations_per_restart" : (n_restarts,) int, L-BFGS-B iterations used
        "lower_bound" : float, small_p_lower_bound(n, d_mlp, M, sigma)
    """
    n, d_mlp = check_int(n, "n"), check_int(d_mlp, "d_mlp")
    sigma_M = _sigma_M(M, sigma, n)
    check_rng(rng)
    n_restarts, maxiter = check_int(n_restarts, "n_restarts"), check_int(maxiter, "maxiter")
    starts = [] if warm_start is None else [_check_warm_start(warm_start, n, d_mlp, sigma_M)]

    n_in = d_mlp * n

    def loss_and_flat_grad(theta):                   # theta: (d_mlp·n + n·d_mlp,)
        W_in = theta[:n_in].reshape(d_mlp, n)
        W_out = theta[n_in:].reshape(n, d_mlp)
        loss, cache = _small_p_forward(W_in, W_out, sigma_M)
        dW_in, dW_out = _small_p_backward(cache)
        return loss, np.concatenate([dW_in.ravel(), dW_out.ravel()])

    losses = np.empty(n_restarts, dtype=np.float64)
    iterations = np.empty(n_restarts, dtype=np.int64)
    best_loss, best_theta = np.inf, None
    for restart in range(n_restarts):
        if restart < len(starts):
            W_in0, W_out0 = starts[restart]
        else:
            W_in0 = rng.uniform(-np.sqrt(6.0 / d_mlp), np.sqrt(6.0 / d_mlp), size=(d_mlp, n))
            W_out0 = rng.uniform(-np.sqrt(6.0 / n), np.sqrt(6.0 / n), size=(n, d_mlp))
        theta0 = np.concatenate([W_in0.ravel(), W_out0.ravel()])
        result = scipy.optimize.minimize(
            loss_and_flat_grad, theta0, jac=True, method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxfun": 4 * maxiter},
        )
        losses[restart] = result.fun
        iterations[restart] = result.nit
        if result.fun < best_loss:
            best_loss, best_theta = float(result.fun), result.x

    return {
        "W_in": best_theta[:n_in].reshape(d_mlp, n).copy(),
        "W_out": best_theta[n_in:].reshape(n, d_mlp).copy(),
        "loss": best_loss,
        "losses_per_restart": losses,
        "n_iterations_per_restart": iterations,
        "lower_bound": small_p_lower_bound(n, d_mlp, M, sigma),
    }


CONTINUATION_PATH = (0.25, 0.5, 0.75)    # fractions of σ on the way: optimise_small_p_continued


@single_blas_thread()
def optimise_small_p_continued(n, d_mlp, M, sigma, rng, n_restarts=4, maxiter=5000, path=CONTINUATION_PATH):
    """optimise_small_p at σ, with a first start that followed one minimum up from weak mixing.

    The exact loss has many local minima, and random starts stop in poor ones once σM is
    strong. Here L-BFGS-B first runs at t·σ for each fraction t of ``path`` (one start each,
    max(1, maxiter // 5) iterations), each started from the one before (the first from a
    random start); the last one is then the first of the ``n_restarts`` starts at σ
    (``warm_start``).

    Every call draws its random starts from its own copy of ``rng``, which is not advanced:
    the random restarts at σ are the first n_restarts − 1 of ``optimise_small_p(..., rng)``
    (the first of them begins where the path did, at weights it then optimises at σ).

    Parameters as in optimise_small_p, but M (n, n) is required; path : one or more
    increasing fractions of σ in (0, 1). Returns optimise_small_p's dict at σ.
    """
    n, d_mlp = check_int(n, "n"), check_int(d_mlp, "d_mlp")
    if M is None:
        raise ValueError("M is required: optimise_small_p_continued follows σM up from weak mixing "
                         "(for clean labels use optimise_small_p)")
    M, sigma = check_mixing(M, sigma, n)
    check_rng(rng)
    n_restarts, maxiter = check_int(n_restarts, "n_restarts"), check_int(maxiter, "maxiter")
    path = _check_path(path)
    start = None
    for fraction in path:                                                   # a fifth of the iterations on the way
        found = optimise_small_p(n, d_mlp, M, fraction * sigma, copy.deepcopy(rng), n_restarts=1,
                                 maxiter=max(1, maxiter // 5), warm_start=start)
        start = (found["W_in"], found["W_out"])
    return optimise_small_p(n, d_mlp, M, sigma, copy.deepcopy(rng), n_restarts=n_restarts, maxiter=maxiter,
                            warm_start=start)


def _check_path(path):
    """``path`` as a tuple of floats, increasing, in (0, 1), at least one; else TypeError or ValueError naming path."""
    if isinstance(path, (str, bytes)) or not np.iterable(path):
        raise TypeError(f"path must be a sequence of fractions of sigma in (0, 1), got {type(path).__name__}")
    values = list(path)
    if any(isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real) for t in values):
        raise TypeError(f"path must hold real numbers (fractions of sigma in (0, 1)), got {values!r}")
    values = [float(t) for t in values]
    if not values or not all(0.0 < t < 1.0 for t in values) or values != sorted(set(values)):
        raise ValueError(f"path must be one or more increasing fractions of sigma in (0, 1), got {values!r}")
    return tuple(values)


def _check_warm_start(warm_start, n, d_mlp, sigma_M):
    """(W_in, W_out) as float64 arrays of shapes (d_mlp, n) and (n, d_mlp) with a finite loss, or an error naming warm_start."""
    if not isinstance(warm_start, (tuple, list)):
        raise TypeError(f"warm_start must be a pair (W_in, W_out), got {type(warm_start).__name__}")
    if len(warm_start) != 2:
        raise ValueError(f"warm_start must be a pair (W_in, W_out), got {len(warm_start)} item(s)")
    try:
        W_in, W_out = check_mlp_weights(*warm_start)
    except (TypeError, ValueError) as error:
        raise type(error)(f"warm_start: {error}") from None
    if W_in.shape != (d_mlp, n):
        raise ValueError(f"warm_start: W_in must have shape (d_mlp, n) = ({d_mlp}, {n}), got {W_in.shape}")
    with np.errstate(over="ignore", invalid="ignore"):                       # an overflow is what we test for
        loss = _small_p_forward(W_in, W_out, sigma_M)[0]
    if not np.isfinite(loss):
        raise ValueError("warm_start: its small-p loss is not finite (weights too large); start from smaller weights")
    return W_in, W_out
