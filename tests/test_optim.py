"""Tests for cc_numpy.core.optim: AdamW as torch.optim.AdamW runs it, and the cosine schedule."""

import math

import numpy as np
import pytest

from cc_numpy.core import optim


def reference_adamw(theta, grads, lrs, weight_decay, beta1, beta2, eps):
    """PyTorch's AdamW for one scalar, in plain Python floats; returns (θ, m, v) after each step."""
    m = v = 0.0
    trajectory = []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        theta = theta * (1.0 - lr * weight_decay)                # decoupled decay first
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        m_hat = m / (1.0 - beta1 ** t)
        v_hat = v / (1.0 - beta2 ** t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)    # ε added to √v̂
        trajectory.append((theta, m, v))
    return trajectory


def test_first_step_without_decay_is_minus_lr_times_sign_of_g():
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal((4, 5))
    g = rng.choice([-1.0, 1.0], size=(4, 5)) * rng.uniform(0.1, 3.0, size=(4, 5))   # |g| ≫ ε
    params = {"W": theta0.copy()}
    state = optim.adamw_init(params, ["W"], lr=0.01, weight_decay=0.0)
    optim.adamw_step(params, {"W": g}, state, 0.01)
    np.testing.assert_allclose(params["W"] - theta0, -0.01 * np.sign(g), rtol=1e-6)
    assert state["step"] == 1


def test_three_steps_match_a_hand_computed_trajectory():
    """Three steps on four scalars with a cosine lr, decay λ = 0.1, and ε large enough to matter."""
    lr, weight_decay, betas, eps, T = 0.05, 0.1, (0.8, 0.95), 1e-3, 3
    theta0 = np.array([0.5, -1.2, 2.0, 0.0])
    grads = [np.array([0.3, -0.002, 1.5, 0.0005]),
             np.array([-0.1, -0.004, 0.2, -0.0005]),
             np.array([0.25, 0.001, -0.7, 0.002])]
    lrs = [optim.cosine_lr(t, T, lr) for t in range(T)]
    params = {"W": theta0.copy()}
    state = optim.adamw_init(params, ["W"], lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    for step in range(T):
        optim.adamw_step(params, {"W": grads[step]}, state, lrs[step])
        for i in range(theta0.size):
            expected = reference_adamw(float(theta0[i]), [float(g[i]) for g in grads[:step + 1]], lrs,
                                       weight_decay, *betas, eps)[-1]
            assert params["W"][i] == pytest.approx(expected[0], rel=1e-12, abs=1e-15)
            assert state["m"]["W"][i] == pytest.approx(expected[1], rel=1e-12, abs=1e-18)
            assert state["v"]["W"][i] == pytest.approx(expected[2], rel=1e-12, abs=1e-18)
    assert state["step"] == T
    # ε inside the bias correction ((√v + ε)/√(1 − β₂^t), another Adam variant) ends elsewhere.
    theta, m, v = float(theta0[1]), 0.0, 0.0
    for t, (g, step_lr) in enumerate(zip([float(g[1]) for g in grads], lrs), start=1):
        theta *= 1.0 - step_lr * weight_decay
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        theta -= step_lr * (m / (1 - betas[0] ** t)) / ((math.sqrt(v) + eps) / math.sqrt(1 - betas[1] ** t))
    assert abs(theta - params["W"][1]) > 1e-4


def test_weight_decay_alone_shrinks_by_one_minus_lr_lambda_each_step():
    lr, weight_decay, T = 0.1, 0.5, 5
    theta0 = np.array([[1.0, -2.0], [3.0, 0.25]])
    params = {"W": theta0.copy()}
    state = optim.adamw_init(params, ["W"], lr=lr, weight_decay=weight_decay)
    expected = theta0.copy()
    for t in range(T):
        lr_t = optim.cosine_lr(t, T, lr)
        optim.adamw_step(params, {"W": np.zeros_like(theta0)}, state, lr_t)
        expected = expected * (1.0 - lr_t * weight_decay)        # θ ← θ (1 − lr_t λ), g = 0
        np.testing.assert_allclose(params["W"], expected, rtol=1e-14)
    assert np.all(np.abs(params["W"]) < np.abs(theta0))


def test_updates_are_in_place_keep_dtype_and_skip_untrained_keys():
    rng = np.random.default_rng(1)
    W_in = rng.standard_normal((3, 4)).astype(np.float32)
    sigma = np.array(0.01, dtype=np.float32)                     # a 0-d trained scalar
    W_E = rng.standard_normal((5, 4))
    params = {"W_in": W_in, "sigma": sigma, "W_E": W_E}
    W_E_before, W_in_before = W_E.copy(), W_in.copy()
    state = optim.adamw_init(params, ["W_in", "sigma"])
    grads = {"W_in": np.ones((3, 4), np.float32), "sigma": np.array(-2.0, np.float32)}
    optim.adamw_step(params, grads, state, 3e-3)
    assert params["W_in"] is W_in and params["sigma"] is sigma
    assert W_in.dtype == np.float32 and sigma.dtype == np.float32 and sigma.shape == ()
    assert not np.array_equal(W_in, W_in_before)
    assert float(sigma) > 0.01                                   # a negative gradient raises σ
    np.testing.assert_array_equal(params["W_E"], W_E_before)    # not in the trained keys


# ---------------------------------------------------------------- cosine schedule

@pytest.mark.parametrize("T", [2, 10, 1000])
def test_cosine_lr_end_points_and_midpoint(T):
    lr = 3e-3
    assert optim.cosine_lr(0, T, lr) == lr
    last = optim.cosine_lr(T - 1, T, lr)
    assert 0 < last <= lr / 2
    assert last == pytest.approx(lr * (1 - math.cos(math.pi / T)) / 2, rel=1e-9)   # 1 + cos(π − π/T)
    if T % 2 == 0:
        assert optim.cosine_lr(T // 2, T, lr) == pytest.approx(lr / 2, rel=1e-12)
    values = [optim.cosine_lr(t, T, lr) for t in range(T)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_cosine_lr_single_step_is_the_full_lr():
    assert optim.cosine_lr(0, 1, 0.5) == 0.5
