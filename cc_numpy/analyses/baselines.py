r"""Baselines for the simplified CC model: naive, naive + offset, SNMF-built MLP.

Notation (column vectors, as in the tutorial):

    ŷ = W_out ReLU(W_in x),      W_in: d_mlp × n,  W_out: n × d_mlp
    y = ReLU(x) + σ M x          M: n × n  (clean labels: σ = 0)

Each of the n features is active independently with probability p; an active
feature is uniform in [-1, 1]. L is the mean over samples and the n outputs of
(ŷ − y)², and the metric is L/p. For one feature x ~ (active w.p. p, U[-1, 1]):

    E[x] = 0,   E[x²] = p/3,   E[ReLU(x)] = p/4,   E[ReLU(x)²] = p/6,
    E[ReLU(x) x] = E[ReLU(x)²] = p/6.

(U[-1, 1] has density ½: ∫₀¹ v/2 dv = 1/4, ∫₀¹ v²/2 dv = 1/6, ∫₋₁¹ v²/2 dv = 1/3.)

1. Naive baseline
-----------------
Neuron j reads feature j and writes output j for j = 1 … d_mlp:
W_in = [I_d | 0] (d_mlp × n), W_out = W_inᵀ (n × d_mlp). So ŷ_o = ReLU(x_o) for
o ≤ d_mlp and ŷ_o = 0 for the n − d_mlp unrepresented outputs. The error is

    e_o = ŷ_o − y_o = −1[o > d_mlp] ReLU(x_o) − σ (M x)_o.

Because the features are independent with mean 0,
E[ReLU(x_o) (Mx)_o] = Σ_i M_oi E[ReLU(x_o) x_i] = M_oo p/6 and
E[(Mx)_o²] = Σ_i M_oi² p/3, so

    E[e_o²] = 1[o > d_mlp] (p/6 + 2σ M_oo p/6) + σ² p/3 Σ_i M_oi²,

    L/p = (n − d_mlp)/(6n) + σ/(3n) Σ_{o > d_mlp} M_oo + σ² ‖M‖²_F/(3n)

at EVERY p (no term is quadratic in p: the naive model is linear in each
feature separately, so features never interact). Clean labels, n = 100,
d_mlp = 50: 50/600 = 1/12. This agrees with the p → 0 limit in small_p.py.

2. Naive + offset
-----------------
The naive model plus a constant weight b from every neuron to each of the
n − d_mlp unrepresented outputs (W_out[o, :] = b for o > d_mlp), clean labels.
Represented outputs stay exact. Every neuron's activation is ReLU(x_j) ≥ 0, so
an unrepresented output predicts ŷ_o = b S with

    S = Σ_{j ≤ d_mlp} ReLU(x_j),   E[S] = d_mlp p/4,
    E[S²] = Var S + (E S)² = d_mlp (p/6 − p²/16) + d_mlp² p²/16
          = d_mlp p/6 + d_mlp (d_mlp − 1) p²/16.

x_o (o > d_mlp) is independent of S, so per unrepresented output

    E[(b S − ReLU(x_o))²] = b² E[S²] − 2b E[S] E[ReLU(x_o)] + E[ReLU(x_o)²]
                          = b² E[S²] − b d_mlp p²/8 + p/6,

and L is the mean over all n outputs (the represented ones contribute 0):

    L/p = ((n − d_mlp)/n) · [ b² (d_mlp/6 + d_mlp (d_mlp − 1) p/16) − b d_mlp p/8 + 1/6 ].

A parabola in b; its minimiser and minimum are

    b* = (d_mlp p/8) / (2 (d_mlp/6 + d_mlp (d_mlp − 1) p/16)) = p / (8/3 + (d_mlp − 1) p),
    L/p(b*) = ((n − d_mlp)/n) · (1/6 − d_mlp p b*/16).

n = 100, d_mlp = 50: b* = 0.0194, L/p = 0.0531 at p = 1; b* = 0.0132,
L/p = 0.0813 at p = 0.1; b* = 0.0032, L/p = 0.08328 at p = 0.01 (≈ naive:
the gain d_mlp p b*/16 ≈ 3 d_mlp p²/128 vanishes as p → 0, while the b² d_mlp/6
cost of firing the offset on every single active feature does not).

3. The SNMF-built MLP
---------------------
From small_p.py, the exact sparse limit is

    lim_{p→0} L/p = (1/(6n)) ( ‖W_out ReLU(W_in) − (I + σM)‖²_F + ‖W_out ReLU(−W_in) + σM‖²_F ).

Column i says it all: with only feature i active at value v,
for v > 0 the output must be v (e_i + σ m_i) (m_i = column i of M) and the net
gives v W_out ReLU(w_i) (w_i = column i of W_in); for v < 0 the output must be
−|v| σ m_i and the net gives |v| W_out ReLU(−w_i). So column by column the
positive side asks for W_out ReLU(W_in) ≈ I + σM.

If W_in ≥ 0 then ReLU(W_in) = W_in and ReLU(−W_in) = 0: the negative side
outputs nothing and costs σ² ‖M‖²_F whatever the weights, and the loss becomes

    lim_{p→0} L/p = (1/(6n)) ( ‖(I + σM) − W_out W_in‖²_F + σ² ‖M‖²_F ),   W_in ≥ 0,

which is exactly the semi-NMF problem X ≈ F Gᵀ with X = I + σM (n × n, any
sign), F = W_out (n × d_mlp, any sign) and Gᵀ = W_in ≥ 0 (snmf.py). The
non-negative input factor is natural because (a) it removes the ReLU from the
loss, leaving a plain low-rank fit; (b) the negative half of every input can
only ever fit the small −σM (the identity lives on the positive side), so
a neuron that responds to negative inputs spends capacity on it; and (c) it
is what keeps the fit honest: with W_in of mixed sign, W_out W_in would no
longer be what the network computes. The SNMF objective J = ‖X − W_out W_in‖²
then gives the exact small-p loss (J + σ²‖M‖²_F)/(6n) of the built MLP.

Which matrix to fit. The labels are y = ReLU(x) + σ M x in the column
convention, so the target is I + σM ("ours"). The authors' code is
row-vector (y = ReLU(x) + σ x M, ŷ = ReLU(x w_in) w_out) and fitted
w_in w_out ≈ I + σM there, which in our convention is W_out W_in ≈ (I + σM)ᵀ =
I + σMᵀ ("authors"), while their labels still mixed with the same M as the
model was trained on. ``snmf_baseline`` always scores the built MLP against the
TRUE labels ReLU(x) + σMx, whichever target was fitted. For symmetric M the two
targets coincide. For asymmetric M write M = S + A (S symmetric, A
antisymmetric): I + σMᵀ = I + σS − σA, so the authors' fit captures the
antisymmetric half with the wrong sign; the part of σA it reconstructs adds
to the error instead of removing it.
"""

import numpy as np

from . import snmf
from .small_p import naive_clean_loss_over_p, small_p_loss
from ..core.validate import (check_array, check_choice, check_dtype, check_float, check_int, check_mixing,
                              check_probability, check_rng, check_square)

__all__ = [
    "TARGETS",
    "naive_params",
    "naive_loss_over_p",
    "offset_params",
    "offset_loss_over_p",
    "optimal_offset",
    "snmf_target",
    "snmf_baseline",
    "snmf_sweep",
]

TARGETS = ("ours", "authors")

# Defaults for the SNMF fit at n = 100, rank 50: the multiplicative updates
# creep (relative decrease ≈ 1e-7 per step after a few thousand iterations,
# so tol rarely fires); max_iter is the real stopping rule.
_DEFAULT_MAX_ITER = 5000
_DEFAULT_TOL = 1e-10


def _check_sizes(n, d_mlp, strict=False):
    """n, d_mlp as ints with 1 ≤ d_mlp ≤ n (d_mlp < n if strict: the offset needs unrepresented outputs)."""
    n, d_mlp = check_int(n, "n"), check_int(d_mlp, "d_mlp")
    if d_mlp > n or (strict and d_mlp == n):
        relation = "<" if strict else "<="
        raise ValueError(f"d_mlp must be {relation} n = {n} (one neuron per represented feature"
                         + ("; the offset needs unrepresented outputs" if strict else "") + f"), got {d_mlp}")
    return n, d_mlp


# --------------------------------------------------------------------------
# 1. Naive baseline
# --------------------------------------------------------------------------

def naive_params(n=100, d_mlp=50, dtype=np.float64):
    """The naive model: neuron j reads and writes feature j, j = 1 … d_mlp.

    Parameters
    ----------
    n : int ≥ 1, number of features.
    d_mlp : int, 1 ≤ d_mlp ≤ n, number of neurons.
    dtype : float32 or float64 (or their names).

    Returns
    -------
    {"W_in": (d_mlp, n), "W_out": (n, d_mlp)} with W_in = [I | 0], W_out = W_inᵀ.
    """
    n, d_mlp = _check_sizes(n, d_mlp)
    dtype = check_dtype(dtype)
    W_in = np.zeros((d_mlp, n), dtype=dtype)                    # (d_mlp, n)
    W_in[:, :d_mlp] = np.eye(d_mlp, dtype=dtype)                # neuron j ← feature j
    W_out = W_in.T.copy()                                       # (n, d_mlp), output j ← neuron j
    return {"W_in": W_in, "W_out": W_out}


def naive_loss_over_p(n=100, d_mlp=50, M=None, sigma=0.0):
    """Exact L/p of the naive model, the same at every p (module docstring, part 1).

        L/p = (n − d_mlp)/(6n) + σ/(3n) Σ_{o > d_mlp} M_oo + σ² ‖M‖²_F/(3n)

    Clean labels (M None or σ = 0): (n − d_mlp)/(6n), 1/12 for the paper.

    Parameters
    ----------
    n, d_mlp : ints with 1 ≤ d_mlp ≤ n.
    M : (n, n) unscaled mixing matrix, or None for clean labels.
    sigma : float, the mixing strength σ (must be 0 when M is None).

    Returns
    -------
    float
    """
    n, d_mlp = _check_sizes(n, d_mlp)
    M, sigma = check_mixing(M, sigma, n)
    clean = naive_clean_loss_over_p(n, d_mlp)                   # (n − d_mlp) · (p/6) / (n p)
    if M is None:
        return clean
    cross = sigma / (3.0 * n) * float(np.trace(M[d_mlp:, d_mlp:]))   # 2σ M_oo (p/6) / (n p), o > d_mlp
    mixing = sigma**2 * float(np.sum(M * M)) / (3.0 * n)              # σ² Σ_oi M_oi² (p/3) / (n p)
    return clean + cross + mixing


# --------------------------------------------------------------------------
# 2. Naive + offset
# --------------------------------------------------------------------------

def offset_params(b, n=100, d_mlp=50, dtype=np.float64):
    """The naive model plus weight b from every neuron to each unrepresented output.

    Parameters
    ----------
    b : finite float, the offset weight.
    n, d_mlp : ints with 1 ≤ d_mlp < n.
    dtype : float32 or float64.

    Returns
    -------
    {"W_in": (d_mlp, n), "W_out": (n, d_mlp)}; W_out[o, :] = b for o ≥ d_mlp (0-based).
    """
    b = check_float(b, "b")
    n, d_mlp = _check_sizes(n, d_mlp, strict=True)
    params = naive_params(n, d_mlp, dtype)
    params["W_out"][d_mlp:, :] = b                              # (n − d_mlp, d_mlp) block of b
    return params


def offset_loss_over_p(b, p, n=100, d_mlp=50):
    """Exact L/p of the naive + offset model on clean labels (module docstring, part 2).

        L/p = ((n − d)/n) · [ b² (d/6 + d (d − 1) p/16) − b d p/8 + 1/6 ],   d = d_mlp

    Parameters
    ----------
    b : finite float, the offset weight (b = 0 is the naive model).
    p : float in (0, 1], the feature probability.
    n, d_mlp : ints with 1 ≤ d_mlp < n.

    Returns
    -------
    float
    """
    b, p = check_float(b, "b"), check_probability(p)
    n, d_mlp = _check_sizes(n, d_mlp, strict=True)
    second_moment_S = d_mlp * p / 6.0 + d_mlp * (d_mlp - 1) * p**2 / 16.0   # E[S²]
    mean_S_times_mean_relu = d_mlp * p / 4.0 * (p / 4.0)                    # E[S] E[ReLU(x_o)]
    per_output = b**2 * second_moment_S - 2.0 * b * mean_S_times_mean_relu + p / 6.0
    return (n - d_mlp) / n * per_output / p                                 # mean over n outputs, / p


def optimal_offset(p, n=100, d_mlp=50):
    """The offset b* minimising offset_loss_over_p at this p, and L/p there.

        b* = p / (8/3 + (d − 1) p),    L/p(b*) = ((n − d)/n) (1/6 − d p b*/16)

    Parameters
    ----------
    p : float in (0, 1].
    n, d_mlp : ints with 1 ≤ d_mlp < n.

    Returns
    -------
    (b_star, loss_over_p) : two floats.
    """
    p = check_probability(p)
    n, d_mlp = _check_sizes(n, d_mlp, strict=True)
    b_star = p / (8.0 / 3.0 + (d_mlp - 1) * p)                  # vertex of the parabola in b
    loss = (n - d_mlp) / n * (1.0 / 6.0 - d_mlp * p * b_star / 16.0)
    return float(b_star), float(loss)


# --------------------------------------------------------------------------
# 3. The SNMF-built MLP
# --------------------------------------------------------------------------

def snmf_target(M, sigma, target="ours"):
    """The matrix the SNMF baseline fits with W_out W_in.

    Parameters
    ----------
    M : (n, n) unscaled mixing matrix.
    sigma : finite float σ.
    target : "ours" → I + σM (what the column-convention labels ask for);
        "authors" → I + σMᵀ (what the authors' row-vector code fitted,
        written in our convention).

    Returns
    -------
    X : (n, n) float64.
    """
    M = check_square(M)
    sigma = check_float(sigma, "sigma")
    check_choice(target, "target", TARGETS)
    mixing = M if target == "ours" else M.T
    return np.eye(M.shape[0]) + sigma * mixing                  # I + σM  or  I + σMᵀ


def snmf_baseline(M, sigma, rng, d_mlp=50, target="ours", max_iter=_DEFAULT_MAX_ITER,
                  tol=_DEFAULT_TOL, G_init=None):
    """Build an MLP from the mixing matrix alone by semi-NMF, and score it.

    Fits X ≈ F Gᵀ with X = snmf_target(M, σ, target), G ≥ 0, rank d_mlp
    (snmf.semi_nmf), and sets W_out = F, W_in = Gᵀ. The score is the exact
    lim_{p→0} L/p (small_p.small_p_loss) against the TRUE labels
    ReLU(x) + σMx, whichever target was fitted.

    Parameters
    ----------
    M : (n, n) unscaled mixing matrix (any finite real matrix; zeros for clean).
    sigma : finite float σ (σ = 0 fits X = I).
    rng : numpy.random.Generator, draws the initial G when G_init is None.
    d_mlp : int, 1 ≤ d_mlp ≤ n, the rank (number of neurons).
    target : "ours" (I + σM) or "authors" (I + σMᵀ).
    max_iter : int ≥ 1. At n = 100, rank 50 the updates converge slowly and
        tol rarely fires, so this is the effective stopping rule.
    tol : float ≥ 0, relative-decrease threshold passed to semi_nmf.
    G_init : optional (n, d_mlp) strictly positive start for G.

    Returns
    -------
    dict with
        "W_in" : (d_mlp, n) float64, ≥ 0
        "W_out" : (n, d_mlp) float64
        "target" : (n, n) the fitted matrix X
        "snmf" : the semi_nmf result (F, G, objective_history, n_iter, converged)
        "objective" : float, ‖X − W_out W_in‖²_F
        "eckart_young_objective" : float, Σ_{k > d_mlp} s_k(X)², the floor on
            "objective" for any rank-d_mlp fit
        "small_p_loss_over_p" : float, exact lim_{p→0} L/p on the true labels
        "sigma", "target_name", "d_mlp" : the settings
    """
    M = check_square(M)
    sigma = check_float(sigma, "sigma")
    check_rng(rng)
    n, d_mlp = _check_sizes(M.shape[0], d_mlp)
    check_choice(target, "target", TARGETS)
    max_iter = check_int(max_iter, "max_iter")                  # tol and G_init: semi_nmf checks them
    if abs(sigma) * np.linalg.norm(M) >= np.sqrt(np.finfo(np.float64).max):
        raise ValueError(f"sigma = {sigma:g} is too large: ‖σM‖²_F overflows float64")

    X = snmf_target(M, sigma, target)                           # (n, n)
    result = snmf.semi_nmf(X, d_mlp, rng, max_iter=max_iter, tol=tol, G_init=G_init)
    W_out = result["F"]                                         # (n, d_mlp), any sign
    W_in = result["G"].T.copy()                                 # (d_mlp, n), ≥ 0
    singular_values = np.linalg.svd(X, compute_uv=False)        # (n,), descending
    return {
        "W_in": W_in,
        "W_out": W_out,
        "target": X,
        "snmf": result,
        "objective": float(result["objective_history"][-1]),
        "eckart_young_objective": float(np.sum(singular_values[d_mlp:] ** 2)),
        # (1/6n)(‖W_out ReLU(W_in) − I − σM‖² + ‖W_out ReLU(−W_in) + σM‖²), true labels
        "small_p_loss_over_p": small_p_loss(W_in, W_out, M, sigma),
        "sigma": sigma,
        "target_name": target,
        "d_mlp": d_mlp,
    }


def snmf_sweep(M, sigmas, rng, d_mlp=50, target="ours", max_iter=_DEFAULT_MAX_ITER,
               tol=_DEFAULT_TOL):
    """The SNMF baseline's exact small-p L/p for each σ in a list.

    One strictly positive initial G is drawn from ``rng`` (snmf.init_G) and
    reused for every σ, so that only σ changes along the sweep.

    Parameters
    ----------
    M : (n, n) unscaled mixing matrix.
    sigmas : 1-D ndarray of finite floats, non-empty.
    rng : numpy.random.Generator.
    d_mlp, target, max_iter, tol : as in snmf_baseline.

    Returns
    -------
    dict of (len(sigmas),) arrays: "sigma", "small_p_loss_over_p",
    "objective", "eckart_young_objective", "n_iter".
    """
    M = check_square(M)
    sigmas = check_array(sigmas, "sigmas", ndim=1).astype(np.float64)
    if sigmas.size == 0:
        raise ValueError("sigmas must not be empty")
    check_rng(rng)
    _check_sizes(M.shape[0], d_mlp)                             # the rest: snmf_baseline checks each call

    G_init = snmf.init_G(M, d_mlp, rng)                         # (n, d_mlp), entries in [0.2, 1.2)
    rows = [snmf_baseline(M, float(sigma), rng, d_mlp, target, max_iter, tol, G_init=G_init)
            for sigma in sigmas]
    return {
        "sigma": sigmas,
        "small_p_loss_over_p": np.array([row["small_p_loss_over_p"] for row in rows]),
        "objective": np.array([row["objective"] for row in rows]),
        "eckart_young_objective": np.array([row["eckart_young_objective"] for row in rows]),
        "n_iter": np.array([row["snmf"]["n_iter"] for row in rows]),
    }
