"""Tests for cc_numpy.analyses.snmf (semi-NMF of Ding, Li & Jordan 2010)."""

import numpy as np
import pytest

from cc_numpy.analyses.snmf import (
    init_G,
    negative_part,
    positive_part,
    semi_nmf,
    snmf_objective,
    update_F,
    update_G,
)


def _rngs(seed, count):
    """Independent Generators from one seed (data, init, ... kept apart)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _exact_rank5(seed):
    """X (30, 40) = F_true G_trueᵀ with F_true any sign, G_true ≥ 0, rank 5."""
    rng_data, rng_init = _rngs(seed, 2)
    F_true = rng_data.standard_normal((30, 5))                 # (m, r), any sign
    G_true = rng_data.uniform(0.0, 1.0, size=(40, 5))          # (k_cols, r), ≥ 0
    return F_true @ G_true.T, F_true, G_true, rng_init         # (30, 40)


def _identity_plus_mixing(n=100, sigma=0.03, seed=0):
    """X = I + σM with M_ij iid N(0, 1), as in the paper's SNMF baseline."""
    M = np.random.default_rng(seed).standard_normal((n, n))
    return np.eye(n) + sigma * M


def _assert_non_increasing(history):
    history = np.asarray(history)
    increase = np.diff(history)
    assert np.all(increase <= 1e-12 * history[:-1]), (
        f"objective increased; largest relative increase "
        f"{np.max(increase / history[:-1]):.3e}"
    )


# ---------------------------------------------------------------- parts

def test_positive_negative_parts_identities():
    (rng,) = _rngs(1, 1)
    A = rng.standard_normal((7, 5))
    A[0, 0] = 0.0
    A_pos, A_neg = positive_part(A), negative_part(A)
    assert np.all(A_pos >= 0) and np.all(A_neg >= 0)
    np.testing.assert_array_equal(A_pos - A_neg, A)            # A = A⁺ − A⁻
    np.testing.assert_array_equal(A_pos + A_neg, np.abs(A))    # |A| = A⁺ + A⁻
    np.testing.assert_array_equal(A_pos, (np.abs(A) + A) / 2)
    np.testing.assert_array_equal(A_neg, (np.abs(A) - A) / 2)
    assert np.all(A_pos * A_neg == 0)                          # never both non-zero


# ---------------------------------------------------------------- F-step

def test_update_F_matches_lstsq():
    rng_x, rng_g = _rngs(2, 2)
    X = rng_x.standard_normal((12, 9))                         # (m, k_cols)
    G = rng_g.uniform(0.2, 1.2, size=(9, 4))                   # (k_cols, r)
    F = update_F(X, G)                                         # (m, r)
    F_lstsq = np.linalg.lstsq(G, X.T, rcond=None)[0].T         # min ‖Xᵀ − G Fᵀ‖
    assert F.shape == (12, 4)
    np.testing.assert_allclose(F, F_lstsq, rtol=1e-10, atol=1e-12)
    # optimality: the residual is orthogonal to the columns of G
    np.testing.assert_allclose((X - F @ G.T) @ G, 0.0, atol=1e-10)


def test_update_F_singular_gram_falls_back_to_lstsq():
    rng_x, rng_g = _rngs(3, 2)
    X = rng_x.standard_normal((6, 8))
    G = rng_g.uniform(0.2, 1.2, size=(8, 3))
    G[:, 2] = G[:, 0]                                          # GᵀG exactly singular
    F = update_F(X, G)
    assert np.all(np.isfinite(F))
    F_min_norm = np.linalg.lstsq(G, X.T, rcond=None)[0].T
    np.testing.assert_allclose(F, F_min_norm, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- G-step

def test_update_G_non_negative_and_non_increasing_for_fixed_F():
    rng_x, rng_g = _rngs(4, 2)
    X = rng_x.standard_normal((15, 11))
    G = init_G(X, 4, rng_g)
    G[0, 1] = 0.0                                              # a zero entry must stay 0
    F = update_F(X, G)
    objective = snmf_objective(X, F, G)
    for _ in range(20):
        G = update_G(X, F, G)                                  # F held fixed
        new_objective = snmf_objective(X, F, G)
        assert np.all(G >= 0)
        assert new_objective <= objective * (1 + 1e-12)
        objective = new_objective
    assert G[0, 1] == 0.0


def test_update_G_matches_the_paper_formula_entrywise():
    rng_x, rng_f, rng_g = _rngs(10, 3)
    X = rng_x.standard_normal((5, 4))
    F = rng_f.standard_normal((5, 2))
    G = rng_g.uniform(0.2, 1.2, size=(4, 2))
    B, A = X.T @ F, F.T @ F                                    # XᵀF (4, 2), FᵀF (2, 2)
    B_pos, B_neg = (np.abs(B) + B) / 2, (np.abs(B) - B) / 2
    A_pos, A_neg = (np.abs(A) + A) / 2, (np.abs(A) - A) / 2
    expected = np.empty_like(G)
    for i in range(4):                                         # loop form of the update
        for k in range(2):
            up = B_pos[i, k] + sum(G[i, j] * A_neg[j, k] for j in range(2))
            down = B_neg[i, k] + sum(G[i, j] * A_pos[j, k] for j in range(2))
            expected[i, k] = G[i, k] * np.sqrt(up / down)
    np.testing.assert_allclose(update_G(X, F, G), expected, rtol=1e-12)


def test_update_G_fixed_point_at_exact_factorisation():
    X, F_true, G_true, _ = _exact_rank5(5)
    G_new = update_G(X, F_true, G_true)                        # numerator == denominator
    np.testing.assert_allclose(G_new, G_true, rtol=1e-10)


# ---------------------------------------------------------------- semi_nmf

def test_objective_never_increases_random_matrix():
    rng_x, rng_init = _rngs(6, 2)
    X = rng_x.standard_normal((40, 30))
    out = semi_nmf(X, 5, rng_init, max_iter=500, tol=0.0)
    history = out["objective_history"]
    assert history.shape == (out["n_iter"] + 1,)
    assert out["n_iter"] == 500 and not out["converged"]
    assert history[-1] < 0.9 * history[0]                      # it did make progress
    _assert_non_increasing(history)
    assert np.all(out["G"] >= 0)


def test_objective_never_increases_identity_plus_mixing_rank50():
    X = _identity_plus_mixing(n=100, sigma=0.03, seed=7)
    (rng_init,) = _rngs(7, 1)
    out = semi_nmf(X, 50, rng_init, max_iter=300, tol=0.0)
    history = out["objective_history"]
    _assert_non_increasing(history)
    assert out["F"].shape == (100, 50) and out["G"].shape == (100, 50)
    assert np.all(out["G"] >= 0)                               # W_in = Gᵀ ≥ 0
    # no rank-50 factorisation beats the truncated SVD (Eckart–Young)
    singular_values = np.linalg.svd(X, compute_uv=False)
    assert history[-1] >= np.sum(singular_values[50:] ** 2) * (1 - 1e-12)
    np.testing.assert_allclose(
        history[-1], snmf_objective(X, out["F"], out["G"]), rtol=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_exact_rank5_factorisation(seed):
    X, _, _, rng_init = _exact_rank5(seed)
    out = semi_nmf(X, 5, rng_init, max_iter=5000, tol=1e-10)
    F, G = out["F"], out["G"]
    relative_error = np.linalg.norm(X - F @ G.T) / np.linalg.norm(X)
    assert relative_error <= 1e-6, (relative_error, out["n_iter"])
    assert np.all(G >= 0)
    _assert_non_increasing(out["objective_history"][:50])      # early, far from rounding level


def test_deterministic_for_same_seed():
    X, _, _, _ = _exact_rank5(8)
    out_a = semi_nmf(X, 3, np.random.default_rng(123), max_iter=200)
    out_b = semi_nmf(X, 3, np.random.default_rng(123), max_iter=200)
    out_c = semi_nmf(X, 3, np.random.default_rng(124), max_iter=200)
    np.testing.assert_array_equal(out_a["G"], out_b["G"])
    np.testing.assert_array_equal(out_a["F"], out_b["F"])
    np.testing.assert_array_equal(out_a["objective_history"], out_b["objective_history"])
    assert not np.array_equal(out_a["G"], out_c["G"])


def test_stopping_rule_and_G_init():
    rng_x, rng_init = _rngs(9, 2)
    X = rng_x.standard_normal((20, 16))
    G0 = init_G(X, 4, rng_init)
    assert G0.shape == (16, 4) and np.all(G0 >= 0.2) and np.all(G0 < 1.2)
    G0_copy = G0.copy()
    loose = semi_nmf(X, 4, np.random.default_rng(0), tol=1e-3, G_init=G0)
    assert loose["converged"] and loose["n_iter"] < 5000
    history = loose["objective_history"]
    assert (history[-2] - history[-1]) / history[-2] < 1e-3   # the rule that fired
    assert np.all((history[:-2] - history[1:-1]) / history[:-2] >= 1e-3)
    np.testing.assert_array_equal(G0, G0_copy)                 # caller's array untouched
    capped = semi_nmf(X, 4, np.random.default_rng(0), max_iter=3, tol=0.0, G_init=G0)
    assert capped["n_iter"] == 3 and not capped["converged"]
    assert capped["objective_history"].shape == (4,)


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("call, error, name", [
    (lambda X, rng: semi_nmf(X, 0, rng), ValueError, "rank"),
    (lambda X, rng: semi_nmf(X, 5, rng), ValueError, "rank"),
    (lambda X, rng: semi_nmf(X, 2.0, rng), TypeError, "rank"),
    (lambda X, rng: semi_nmf(np.where(X > 1, np.nan, X), 2, rng), ValueError, "X"),
    (lambda X, rng: semi_nmf(np.ones(5), 1, rng), ValueError, "X"),
    (lambda X, rng: semi_nmf(np.ones((0, 3)), 1, rng), ValueError, "X"),
    (lambda X, rng: semi_nmf(X.astype(complex), 2, rng), TypeError, "X"),
    (lambda X, rng: semi_nmf(X.tolist(), 2, rng), TypeError, "X"),          # a list is refused, as everywhere
    (lambda X, rng: semi_nmf(X, 2, 0), TypeError, "rng"),
    (lambda X, rng: semi_nmf(X, 2, np.random.RandomState(0)), TypeError, "rng"),
    (lambda X, rng: semi_nmf(X, 2, rng, G_init=np.ones((6, 2))), ValueError, "G_init"),
    (lambda X, rng: semi_nmf(X, 2, rng, G_init=np.eye(4, 2)), ValueError, "G_init"),  # zeros never move
    (lambda X, rng: semi_nmf(X, 2, rng, max_iter=-1), ValueError, "max_iter"),
    (lambda X, rng: semi_nmf(X, 2, rng, tol=np.nan), ValueError, "tol"),
])
def test_bad_inputs_raise_errors_naming_the_argument(call, error, name):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 4))
    with pytest.raises(error) as caught:
        call(X, rng)
    assert name in str(caught.value)
