"""Tests for cc_numpy.analyses.baselines: naive, naive + offset, and the SNMF-built MLP."""

import numpy as np
import pytest

from cc_numpy.core import evaluate
from cc_numpy.analyses import snmf
from cc_numpy.analyses.baselines import (
    naive_loss_over_p,
    naive_params,
    offset_loss_over_p,
    offset_params,
    optimal_offset,
    snmf_baseline,
    snmf_sweep,
    snmf_target,
)
from cc_numpy.analyses.small_p import small_p_loss


def _rngs(seed, count):
    """Independent Generators from one seed (matrix, data, init kept apart)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _within(estimate, stderr, expected, k=4.0):
    return abs(estimate - expected) <= k * stderr


# ---------------------------------------------------------------- naive

def test_naive_params_structure_and_exact_small_p_loss():
    params = naive_params(100, 50)
    W_in, W_out = params["W_in"], params["W_out"]
    assert W_in.shape == (50, 100) and W_out.shape == (100, 50)
    assert np.array_equal(W_in[:, :50], np.eye(50)) and not W_in[:, 50:].any()
    assert np.array_equal(W_out, W_in.T)
    assert small_p_loss(W_in, W_out) == pytest.approx(1.0 / 12.0, abs=1e-14)
    assert naive_loss_over_p(100, 50) == pytest.approx(1.0 / 12.0, abs=1e-15)
    assert naive_params(7, 3, dtype=np.float32)["W_in"].dtype == np.float32


@pytest.mark.parametrize("p, n_samples", [(0.01, 400_000), (0.5, 40_000)])
def test_naive_monte_carlo_matches_one_twelfth(p, n_samples):
    (rng,) = _rngs(1, 1)
    result = evaluate.loss_over_p(naive_params(100, 50), p, rng, task="clean", n_samples=n_samples)
    assert _within(result["loss_over_p"], result["stderr"], 1.0 / 12.0)
    assert result["stderr"] < 0.003                              # the check has teeth


def test_naive_mixed_loss_is_exact_at_every_p():
    n, d_mlp, sigma = 12, 5, 0.2
    rng_matrix, rng_data = _rngs(2, 2)
    M = rng_matrix.standard_normal((n, n))
    params = naive_params(n, d_mlp)
    expected = naive_loss_over_p(n, d_mlp, M, sigma)
    assert expected > naive_loss_over_p(n, d_mlp) + 0.05          # mixing really costs
    assert small_p_loss(params["W_in"], params["W_out"], M, sigma) == pytest.approx(expected, rel=1e-12)
    for p in (0.1, 0.7):
        result = evaluate.loss_over_p(params, p, rng_data, task="mixed", M=M, sigma=sigma,
                                      n_samples=100_000)
        assert _within(result["loss_over_p"], result["stderr"], expected)


# ---------------------------------------------------------------- naive + offset

@pytest.mark.parametrize("p", [1e-4, 0.01, 0.3, 1.0])
def test_zero_offset_is_the_naive_model(p):
    assert offset_loss_over_p(0.0, p, 100, 50) == pytest.approx(naive_loss_over_p(100, 50), rel=1e-13)
    assert offset_loss_over_p(0.0, p, 9, 4) == pytest.approx(naive_loss_over_p(9, 4), rel=1e-13)


def test_offset_params_structure():
    params = offset_params(0.02, 10, 4)
    naive = naive_params(10, 4)
    assert np.array_equal(params["W_in"], naive["W_in"])
    assert np.array_equal(params["W_out"][:4], naive["W_out"][:4])
    assert np.all(params["W_out"][4:] == 0.02)


@pytest.mark.parametrize("p, b", [(1.0, 0.019), (1.0, 0.05), (0.1, 0.013), (0.1, -0.03)])
def test_offset_loss_matches_monte_carlo(p, b):
    (rng,) = _rngs(3, 1)
    expected = offset_loss_over_p(b, p, 100, 50)
    result = evaluate.loss_over_p(offset_params(b, 100, 50), p, rng, task="clean", n_samples=60_000)
    assert _within(result["loss_over_p"], result["stderr"], expected)
    # The test can tell the offset apart from the naive model.
    assert abs(expected - 1.0 / 12.0) > 4 * result["stderr"]


def test_offset_loss_tends_to_the_small_p_limit():
    b = 0.05
    params = offset_params(b, 20, 8)
    limit = small_p_loss(params["W_in"], params["W_out"])          # (n − d)/n (b² d/6 + 1/6)
    assert offset_loss_over_p(b, 1e-9, 20, 8) == pytest.approx(limit, rel=1e-7)


@pytest.mark.parametrize("p, n, d_mlp", [(0.001, 100, 50), (0.01, 100, 50), (0.1, 100, 50),
                                        (1.0, 100, 50), (0.4, 9, 1), (0.4, 9, 8)])
def test_optimal_offset_minimises_the_loss(p, n, d_mlp):
    b_star, loss_star = optimal_offset(p, n, d_mlp)
    assert loss_star == pytest.approx(offset_loss_over_p(b_star, p, n, d_mlp), rel=1e-12)
    grid = np.linspace(-0.2, 0.2, 8001)                            # spacing 5e-5
    losses = np.array([offset_loss_over_p(b, p, n, d_mlp) for b in grid])
    assert losses.min() >= loss_star - 1e-14
    assert abs(grid[np.argmin(losses)] - b_star) <= 5e-5
    assert loss_star <= naive_loss_over_p(n, d_mlp)


def test_optimal_offset_matches_paper_notes():
    """arXiv:2606.14673, Fig. 10 (read off a figure, ±0.002): b* ≈ 0.013 at p = 0.1, ≈ 0.019 at p = 1, L/p ≈ 0.053."""
    b_01, _ = optimal_offset(0.1)
    b_1, loss_1 = optimal_offset(1.0)
    assert abs(b_01 - 0.013) < 0.002 and abs(b_1 - 0.019) < 0.002 and abs(loss_1 - 0.053) < 0.002
    assert abs(optimal_offset(0.01)[1] - 1.0 / 12.0) < 1e-3         # ≈ naive for p ≤ 0.01


# ---------------------------------------------------------------- SNMF-built MLP

def _asymmetric(n, seed):
    return np.random.default_rng(seed).standard_normal((n, n))


def test_snmf_target_both_conventions():
    M = _asymmetric(6, 4)
    assert np.allclose(snmf_target(M, 0.1, "ours"), np.eye(6) + 0.1 * M)
    assert np.allclose(snmf_target(M, 0.1, "authors"), np.eye(6) + 0.1 * M.T)


@pytest.mark.parametrize("target", ["ours", "authors"])
def test_snmf_baseline_is_a_valid_fit_scored_on_true_labels(target):
    n, d_mlp, sigma = 20, 10, 0.1
    M = _asymmetric(n, 5)
    rng_fit, rng_guess = _rngs(6, 2)
    out = snmf_baseline(M, sigma, rng_fit, d_mlp=d_mlp, target=target, max_iter=500)
    W_in, W_out, X = out["W_in"], out["W_out"], out["target"]
    assert W_in.shape == (d_mlp, n) and W_out.shape == (n, d_mlp)
    assert np.all(W_in >= 0)
    assert out["objective"] == pytest.approx(np.sum((X - W_out @ W_in) ** 2), rel=1e-10)
    assert out["objective"] >= out["eckart_young_objective"] * (1 - 1e-12)
    # Better than a random non-negative rank-d_mlp guess, even with its best W_out.
    G_guess = rng_guess.uniform(0.0, 1.0, size=(n, d_mlp))
    guess_objective = snmf.snmf_objective(X, snmf.update_F(X, G_guess), G_guess)
    assert out["objective"] < 0.8 * guess_objective
    # W_in ≥ 0: the v < 0 side outputs nothing, so the exact small-p loss is
    # (‖W_out W_in − I − σM‖² + σ²‖M‖²)/(6n), against the TRUE labels.
    true_error = np.sum((W_out @ W_in - np.eye(n) - sigma * M) ** 2)
    expected = (true_error + sigma**2 * np.sum(M**2)) / (6 * n)
    assert out["small_p_loss_over_p"] == pytest.approx(expected, rel=1e-10)
    if target == "ours":                                           # then true error = SNMF objective
        assert true_error == pytest.approx(out["objective"], rel=1e-10)
    else:                                                          # fitting Mᵀ misses asymmetric M
        assert true_error > out["objective"] * 1.01


def test_snmf_baseline_clean_is_naive():
    n, d_mlp = 20, 10
    (rng,) = _rngs(7, 1)
    out = snmf_baseline(_asymmetric(n, 8), 0.0, rng, d_mlp=d_mlp, max_iter=3000)
    assert out["small_p_loss_over_p"] <= naive_loss_over_p(n, d_mlp) + 1e-3
    assert np.all(out["W_in"] >= 0)
    # Also with M = 0 passed explicitly.
    out_zero = snmf_baseline(np.zeros((n, n)), 0.0, _rngs(7, 1)[0], d_mlp=d_mlp, max_iter=3000)
    assert out_zero["small_p_loss_over_p"] == pytest.approx(out["small_p_loss_over_p"], rel=1e-12)


def test_symmetric_M_gives_the_same_result_for_both_targets():
    n = 16
    upper = np.triu(_asymmetric(n, 9))
    M = upper + np.triu(upper, 1).T
    results = [snmf_baseline(M, 0.05, _rngs(10, 1)[0], d_mlp=6, target=target, max_iter=300)
               for target in ("ours", "authors")]
    assert np.allclose(results[0]["W_in"], results[1]["W_in"])
    assert results[0]["small_p_loss_over_p"] == pytest.approx(results[1]["small_p_loss_over_p"], rel=1e-12)


def test_snmf_sweep_reuses_one_start():
    n, d_mlp, sigmas = 12, 5, np.array([0.0, 0.05, 0.1])
    M = _asymmetric(n, 11)
    sweep = snmf_sweep(M, sigmas, _rngs(12, 1)[0], d_mlp=d_mlp, target="ours", max_iter=200)
    assert np.array_equal(sweep["sigma"], sigmas)
    assert sweep["small_p_loss_over_p"].shape == (3,)
    G_init = snmf.init_G(M, d_mlp, _rngs(12, 1)[0])                # the sweep's start
    single = snmf_baseline(M, 0.05, np.random.default_rng(0), d_mlp=d_mlp, max_iter=200, G_init=G_init)
    assert sweep["small_p_loss_over_p"][1] == pytest.approx(single["small_p_loss_over_p"], rel=1e-12)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, error, name", [
    (lambda: offset_loss_over_p(0.01, 0.0), ValueError, "p"),
    (lambda: offset_loss_over_p(0.01, 1.5), ValueError, "p"),
    (lambda: optimal_offset(-0.1), ValueError, "p"),
    (lambda: offset_loss_over_p(np.nan, 0.1), ValueError, "b"),
    (lambda: offset_params(np.inf), ValueError, "b"),
    (lambda: offset_params("0.1"), TypeError, "b"),
    (lambda: offset_loss_over_p(0.01, 0.1, n=10, d_mlp=10), ValueError, "d_mlp"),
    (lambda: naive_params(10, 11), ValueError, "d_mlp"),
    (lambda: naive_params(10, 0), ValueError, "d_mlp"),
    (lambda: naive_loss_over_p(10, 5, None, 0.1), ValueError, "M"),
    (lambda: naive_loss_over_p(10, 5, np.zeros((9, 9)), 0.1), ValueError, "M"),
    (lambda: snmf_target(np.zeros((3, 4)), 0.1), ValueError, "M"),
    (lambda: snmf_target(np.eye(3), 0.1, target="transpose"), ValueError, "target"),
    (lambda: snmf_target(np.eye(3), np.inf), ValueError, "sigma"),
    (lambda: snmf_baseline(np.eye(4), 0.1, 0, d_mlp=2), TypeError, "rng"),
    (lambda: snmf_baseline(np.eye(4), 0.1, np.random.default_rng(0), d_mlp=5), ValueError, "d_mlp"),
    (lambda: snmf_baseline(np.eye(4), 0.1, np.random.default_rng(0), d_mlp=2, max_iter=0), ValueError, "max_iter"),
    (lambda: snmf_baseline(np.eye(4), 1e200, np.random.default_rng(0), d_mlp=2), ValueError, "sigma"),
    (lambda: snmf_baseline([[1.0]], 0.1, np.random.default_rng(0), d_mlp=1), TypeError, "M"),
    (lambda: snmf_sweep(np.eye(4), np.array([]), np.random.default_rng(0), d_mlp=2), ValueError, "sigmas"),
    (lambda: snmf_sweep(np.eye(4), np.array([0.1, np.nan]), np.random.default_rng(0), d_mlp=2), ValueError,
     "sigmas"),
    (lambda: snmf_sweep(np.eye(4), [0.1], np.random.default_rng(0), d_mlp=2), TypeError, "sigmas"),
])
def test_bad_input_raises_an_error_naming_the_argument(call, error, name):
    with pytest.raises(error) as caught:
        call()
    assert name in str(caught.value)
