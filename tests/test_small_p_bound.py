"""Tests for small_p_joint_lower_bound: the joint Eckart–Young floor on the exact p → 0 loss.

The floor is a theorem (rank ≤ d_mlp of W_out [ReLU(W_in) ReLU(−W_in)] against the
stacked target [I + σM, −σM]); these tests check the implementation of it: its
sign convention, its order against today's separate bound, that no weights found
or drawn beat it, and the cases where it is attained.
"""

import numpy as np
import pytest

from cc_numpy.analyses.small_p import (
    optimise_small_p,
    small_p_joint_lower_bound,
    small_p_loss,
    small_p_lower_bound,
)
from cc_numpy.core.data import mixing_matrix, random_streams

KINDS = ("asymmetric", "symmetric")
SIGMAS = (0.0, 0.01, 0.03, 0.05, 0.1, 0.3, 1.0)
TOL = 1e-12


def _M(kind, n, seed):
    return mixing_matrix(kind, n, random_streams(seed)["matrix"])


def _joint_residual(W_in, W_out, M, sigma):
    """‖W_out [ReLU(W_in) ReLU(−W_in)] − [I + σM, −σM]‖²_F / (6n), the stacked form of the loss."""
    n = W_in.shape[1]
    stacked_H = np.hstack([np.maximum(W_in, 0.0), np.maximum(-W_in, 0.0)])       # (d_mlp, 2n)
    target = np.hstack([np.eye(n) + sigma * M, -sigma * M])                      # (n, 2n)
    return np.sum((W_out @ stacked_H - target) ** 2) / (6.0 * n)


def test_loss_is_the_stacked_residual():
    """The sign convention of the derivation: L/p = ‖W_out [H⁺ H⁻] − [I + σM, −σM]‖²_F / (6n)."""
    rng = np.random.default_rng(0)
    n, d_mlp = 9, 4
    M = _M("asymmetric", n, 1)
    for sigma in (0.0, 0.07, 0.5):
        W_in, W_out = rng.normal(size=(d_mlp, n)), rng.normal(size=(n, d_mlp))
        assert small_p_loss(W_in, W_out, M, sigma) == pytest.approx(_joint_residual(W_in, W_out, M, sigma),
                                                                    rel=1e-12)


def test_bound_is_the_best_rank_d_fit_of_the_stacked_target():
    """The bound equals the residual of the truncated SVD of [I + σM, −σM], over 6n."""
    n, d_mlp, sigma = 10, 3, 0.2
    M = _M("symmetric", n, 2)
    target = np.hstack([np.eye(n) + sigma * M, -sigma * M])
    U, s, Vt = np.linalg.svd(target, full_matrices=False)
    best = (U[:, :d_mlp] * s[:d_mlp]) @ Vt[:d_mlp]
    assert small_p_joint_lower_bound(n, d_mlp, M, sigma) == pytest.approx(
        np.sum((best - target) ** 2) / (6 * n), rel=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n,d_mlp", [(12, 5), (30, 10), (40, 39), (20, 20)])
def test_joint_bound_is_at_least_the_separate_bound(kind, n, d_mlp):
    for seed in range(3):
        M = _M(kind, n, seed)
        for sigma in SIGMAS:
            joint = small_p_joint_lower_bound(n, d_mlp, M, sigma)
            separate = small_p_lower_bound(n, d_mlp, M, sigma)
            assert joint >= separate - TOL, (seed, sigma, joint, separate)


@pytest.mark.parametrize("kind", KINDS)
def test_joint_bound_is_strictly_tighter_with_mixing(kind):
    """Not a theorem, but what it is for: with σ > 0 and a random M it is strictly above the separate bound."""
    n, d_mlp = 30, 12
    M = _M(kind, n, 0)
    for sigma in (0.03, 0.1, 0.3):
        assert small_p_joint_lower_bound(n, d_mlp, M, sigma) > small_p_lower_bound(n, d_mlp, M, sigma) + 1e-6


def test_clean_labels_give_the_naive_floor():
    """σ = 0 (M None or given): both bounds are (n − d_mlp)/(6n), 1/12 at n = 100, d_mlp = 50."""
    M = _M("asymmetric", 100, 0)
    for args in ((), (None, 0.0), (M, 0.0)):
        assert small_p_joint_lower_bound(100, 50, *args) == pytest.approx(1 / 12, rel=1e-12)
        assert small_p_lower_bound(100, 50, *args) == pytest.approx(1 / 12, rel=1e-12)
    for n, d_mlp in ((12, 5), (7, 7), (5, 9)):
        assert small_p_joint_lower_bound(n, d_mlp) == max(n - d_mlp, 0) / (6 * n)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sigma", (0.0, 0.05, 0.2, 0.6))
def test_joint_bound_is_below_every_optimum_found(kind, sigma):
    """Tiny size, a few restarts, small maxiter: every restart's final loss is above the floor."""
    n, d_mlp = 12, 5
    M = _M(kind, n, 3)
    found = optimise_small_p(n, d_mlp, M=M, sigma=sigma, rng=np.random.default_rng(4), n_restarts=3, maxiter=300)
    bound = small_p_joint_lower_bound(n, d_mlp, M, sigma)
    assert bound >= found["lower_bound"] - TOL
    assert np.all(found["losses_per_restart"] >= bound - TOL), (found["losses_per_restart"], bound)
    assert small_p_loss(found["W_in"], found["W_out"], M, sigma) >= bound - TOL


@pytest.mark.parametrize("kind", KINDS)
def test_joint_bound_is_below_random_weights(kind):
    rng = np.random.default_rng(5)
    n, d_mlp = 15, 6
    M = _M(kind, n, 4)
    for sigma in SIGMAS:
        bound = small_p_joint_lower_bound(n, d_mlp, M, sigma)
        for scale in (0.01, 0.3, 1.0):
            W_in = scale * rng.normal(size=(d_mlp, n))
            W_out = scale * rng.normal(size=(n, d_mlp))
            assert small_p_loss(W_in, W_out, M, sigma) >= bound - TOL


def test_attained_by_the_naive_model_on_clean_labels():
    n, d_mlp = 12, 5
    W_in = np.zeros((d_mlp, n))
    W_in[:, :d_mlp] = np.eye(d_mlp)
    assert small_p_loss(W_in, W_in.T.copy()) == pytest.approx(small_p_joint_lower_bound(n, d_mlp), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_attained_with_two_neurons_per_feature(kind):
    """d_mlp ≥ 2n: W_in = [I; −I] (plus dead neurons), W_out = [I + σM, −σM] fits exactly; the bound is 0.

    This is the one construction that attains the floor with mixing, and it checks
    the sign of the −σM block: W_out [H⁺ H⁻] = W_out [[I 0], [0 I]] = [I + σM, −σM].
    """
    n, sigma = 8, 0.3
    M = _M(kind, n, 6)
    for d_mlp in (2 * n, 2 * n + 3):
        W_in = np.zeros((d_mlp, n))
        W_in[:2 * n] = np.vstack([np.eye(n), -np.eye(n)])                         # (d_mlp, n)
        W_out = np.zeros((n, d_mlp))
        W_out[:, :2 * n] = np.hstack([np.eye(n) + sigma * M, -sigma * M])        # (n, d_mlp)
        assert small_p_loss(W_in, W_out, M, sigma) == pytest.approx(0.0, abs=1e-24)
        assert small_p_joint_lower_bound(n, d_mlp, M, sigma) == 0.0
    assert small_p_joint_lower_bound(n, n, M, sigma) == pytest.approx(0.0, abs=1e-24)   # d_mlp ≥ n: T has rank ≤ n


def test_input_checks_match_the_separate_bound():
    with pytest.raises(ValueError):
        small_p_joint_lower_bound(5, 2, None, 0.1)                  # σ without M
    with pytest.raises(ValueError):
        small_p_joint_lower_bound(5, 2, np.eye(4), 0.1)             # wrong shape
    with pytest.raises((ValueError, TypeError)):
        small_p_joint_lower_bound(0, 2)
