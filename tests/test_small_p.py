"""Tests for cc_numpy.analyses.small_p: the exact p → 0 limit of L/p and its tools."""

import numpy as np
import pytest

from cc_numpy.analyses.small_p import (
    monte_carlo_small_p_loss,
    one_active_batch,
    optimise_small_p,
    optimise_small_p_continued,
    small_p_loss,
    small_p_loss_and_grad,
    small_p_lower_bound,
)


def naive_weights(n, d_mlp):
    """Neuron j reads feature j and writes output j, for j < d_mlp."""
    W_in = np.zeros((d_mlp, n))                      # (d_mlp, n)
    W_in[:, :d_mlp] = np.eye(d_mlp)
    W_out = W_in.T.copy()                            # (n, d_mlp)
    return W_in, W_out


def naive_loss_closed_form(n, d_mlp, M, sigma):
    """(n − d_mlp)/(6n) + σ/(3n) Σ_{i ≥ d_mlp} M_ii + σ² ‖M‖²_F/(3n) (0-based i)."""
    return ((n - d_mlp) / (6 * n)
            + sigma / (3 * n) * np.trace(M[d_mlp:, d_mlp:])
            + sigma**2 * np.sum(M**2) / (3 * n))


def random_weights(rng, n, d_mlp, margin=0.0):
    """Gaussian weights; entries of W_in pushed at least `margin` away from 0."""
    W_in = rng.normal(size=(d_mlp, n))
    W_in = np.sign(W_in) * (np.abs(W_in) + margin)
    W_out = rng.normal(size=(n, d_mlp))
    return W_in, W_out


# ---------------------------------------------------------------- exact values

def test_naive_model_clean_labels_is_one_twelfth():
    W_in, W_out = naive_weights(100, 50)
    assert abs(small_p_loss(W_in, W_out) - 1.0 / 12.0) < 1e-12
    # Explicit M = 0 and M given with sigma = 0 are the same clean labels.
    assert abs(small_p_loss(W_in, W_out, np.zeros((100, 100)), 0.03) - 1.0 / 12.0) < 1e-12
    assert abs(small_p_loss(W_in, W_out, np.ones((100, 100)), 0.0) - 1.0 / 12.0) < 1e-12


@pytest.mark.parametrize("n, d_mlp, sigma", [(100, 50, 0.03), (100, 50, -0.05), (9, 4, 0.7)])
def test_naive_model_mixed_labels_matches_closed_form(n, d_mlp, sigma):
    M = np.random.default_rng(1).normal(size=(n, n))
    W_in, W_out = naive_weights(n, d_mlp)
    expected = naive_loss_closed_form(n, d_mlp, M, sigma)
    assert small_p_loss(W_in, W_out, M, sigma) == pytest.approx(expected, rel=1e-12)
    # The mixing term matters: it is not the clean value.
    assert abs(expected - (n - d_mlp) / (6 * n)) > 1e-3


def test_per_row_error_is_v_squared_times_column_norm():
    """Step 2 of the derivation, exactly, on a one-active batch."""
    rng = np.random.default_rng(2)
    n, d_mlp, sigma = 7, 3, 0.4
    W_in, W_out = random_weights(rng, n, d_mlp)
    M = rng.normal(size=(n, n))
    x = one_active_batch(n, 5, rng)                                  # (35, n)
    err = np.maximum(x @ W_in.T, 0) @ W_out.T - (np.maximum(x, 0) + sigma * x @ M.T)
    A_pos = W_out @ np.maximum(W_in, 0) - np.eye(n) - sigma * M      # columns a⁺_i
    A_neg = W_out @ np.maximum(-W_in, 0) + sigma * M                 # columns a⁻_i
    i = np.arange(x.shape[0]) % n
    v = x[np.arange(x.shape[0]), i]
    col_sq = np.where(v > 0, np.sum(A_pos**2, axis=0)[i], np.sum(A_neg**2, axis=0)[i])
    np.testing.assert_allclose(np.sum(err**2, axis=1), v**2 * col_sq, rtol=1e-12, atol=1e-14)
    # And the loss is (1/6n) Σ_i (‖a⁺_i‖² + ‖a⁻_i‖²).
    expected = (np.sum(A_pos**2) + np.sum(A_neg**2)) / (6 * n)
    assert small_p_loss(W_in, W_out, M, sigma) == pytest.approx(expected, rel=1e-12)


def test_exact_loss_agrees_with_monte_carlo_on_mixed_labels():
    rng = np.random.default_rng(3)
    n, d_mlp, sigma = 8, 4, 0.3
    W_in, W_out = random_weights(rng, n, d_mlp)
    M = rng.normal(size=(n, n))
    exact = small_p_loss(W_in, W_out, M, sigma)
    estimate, standard_error = monte_carlo_small_p_loss(W_in, W_out, M, sigma, 200_000, rng)
    assert 0 < standard_error < 0.02 * exact
    assert abs(estimate - exact) < 4 * standard_error


def test_monte_carlo_is_zero_for_a_perfect_model():
    # d_mlp = 2n, W_in = [I; −I], W_out = [I + σM, −σM]: ŷ = ReLU(x) + σM(ReLU(x) − ReLU(−x)) = y.
    rng = np.random.default_rng(4)
    n, sigma = 5, 0.2
    M = rng.normal(size=(n, n))
    W_in = np.vstack([np.eye(n), -np.eye(n)])                       # (2n, n)
    W_out = np.hstack([np.eye(n) + sigma * M, -sigma * M])           # (n, 2n)
    assert small_p_loss(W_in, W_out, M, sigma) == pytest.approx(0.0, abs=1e-28)
    estimate, standard_error = monte_carlo_small_p_loss(W_in, W_out, M, sigma, 1000, rng)
    assert estimate == pytest.approx(0.0, abs=1e-26) and standard_error < 1e-26


# ---------------------------------------------------------------- gradient

def test_gradient_matches_centred_finite_differences():
    rng = np.random.default_rng(5)
    n, d_mlp, sigma = 8, 4, 0.3
    W_in, W_out = random_weights(rng, n, d_mlp, margin=0.05)   # |W_in| ≥ 0.05 ≫ h: no kink crossed
    M = rng.normal(size=(n, n))
    _, grads = small_p_loss_and_grad(W_in, W_out, M, sigma)
    h = 1e-6
    for name, W in (("W_in", W_in), ("W_out", W_out)):
        g_fd = np.zeros_like(W)
        for idx in np.ndindex(W.shape):                      # every entry
            W_plus, W_minus = W.copy(), W.copy()
            W_plus[idx] += h
            W_minus[idx] -= h
            args_plus = (W_plus, W_out) if name == "W_in" else (W_in, W_plus)
            args_minus = (W_minus, W_out) if name == "W_in" else (W_in, W_minus)
            g_fd[idx] = (small_p_loss(*args_plus, M, sigma)
                         - small_p_loss(*args_minus, M, sigma)) / (2 * h)
        g = grads[name]
        assert g.shape == W.shape and g.dtype == np.float64
        rel = np.linalg.norm(g_fd - g) / (np.linalg.norm(g_fd) + np.linalg.norm(g))
        assert rel < 1e-7, (name, rel)
        assert np.max(np.abs(g_fd - g)) < 1e-7 * np.linalg.norm(g), name


def test_gradient_relu_derivative_is_zero_at_zero():
    rng = np.random.default_rng(6)
    W_in, W_out = random_weights(rng, 6, 3, margin=0.1)
    W_in[1, 2] = 0.0
    M = rng.normal(size=(6, 6))
    loss, grads = small_p_loss_and_grad(W_in, W_out, M, 0.5)
    assert grads["W_in"][1, 2] == 0.0
    assert np.all(grads["W_in"][W_in != 0] != 0.0)
    assert loss == small_p_loss(W_in, W_out, M, 0.5)


# ---------------------------------------------------------------- lower bound & optimiser

def test_lower_bound_clean_equals_naive_and_bounds_random_weights():
    rng = np.random.default_rng(7)
    n, d_mlp = 8, 3
    W_in, W_out = naive_weights(n, d_mlp)
    assert small_p_lower_bound(n, d_mlp) == pytest.approx(small_p_loss(W_in, W_out), rel=1e-14)
    assert small_p_lower_bound(n, n) == 0.0
    M = rng.normal(size=(n, n))
    bound = small_p_lower_bound(n, d_mlp, M, 0.4)
    assert bound > 0
    for _ in range(50):
        W_in, W_out = random_weights(rng, n, d_mlp)
        assert small_p_loss(W_in, W_out, M, 0.4) >= bound
        assert small_p_loss(W_in, W_out) >= small_p_lower_bound(n, d_mlp)


def test_optimiser_cannot_beat_naive_on_clean_labels():
    n, d_mlp = 8, 4
    naive = small_p_loss(*naive_weights(n, d_mlp))
    result = optimise_small_p(n, d_mlp, rng=np.random.default_rng(8), n_restarts=3, maxiter=2000)
    assert result["W_in"].shape == (d_mlp, n) and result["W_out"].shape == (n, d_mlp)
    assert result["losses_per_restart"].shape == (3,)
    assert result["loss"] == np.min(result["losses_per_restart"])
    assert result["loss"] == pytest.approx(small_p_loss(result["W_in"], result["W_out"]), rel=1e-12)
    # The optimiser reaches the naive optimum, and (Eckart–Young) cannot go below it.
    assert 0.0 <= result["lower_bound"] - 1e-12 <= result["loss"] <= naive + 1e-9


def test_optimiser_with_mixing_beats_naive_and_respects_bound():
    rng = np.random.default_rng(9)
    n, d_mlp, sigma = 8, 4, 0.1
    M = rng.normal(size=(n, n))
    naive = small_p_loss(*naive_weights(n, d_mlp), M, sigma)
    result = optimise_small_p(n, d_mlp, M, sigma, rng=rng, n_restarts=3, maxiter=2000)
    assert result["lower_bound"] <= result["loss"] < naive
    assert result["loss"] == pytest.approx(
        small_p_loss(result["W_in"], result["W_out"], M, sigma), rel=1e-12)


def test_warm_start_is_the_first_start():
    """From a minimum found before, L-BFGS starts there: one iteration cannot undo it, a random start would."""
    rng = np.random.default_rng(11)
    n, d_mlp, sigma = 8, 4, 0.2
    M = rng.normal(size=(n, n))
    found = optimise_small_p(n, d_mlp, M, sigma, rng=np.random.default_rng(1), n_restarts=1, maxiter=2000)
    cold = optimise_small_p(n, d_mlp, M, sigma, rng=np.random.default_rng(2), n_restarts=1, maxiter=1)
    warm = optimise_small_p(n, d_mlp, M, sigma, rng=np.random.default_rng(2), n_restarts=1, maxiter=1,
                            warm_start=(found["W_in"], found["W_out"]))
    assert warm["loss"] <= found["loss"] < cold["loss"]
    # with more starts, the others are the random starts the rng would have drawn first
    both = optimise_small_p(n, d_mlp, M, sigma, rng=np.random.default_rng(2), n_restarts=2, maxiter=1,
                            warm_start=(found["W_in"], found["W_out"]))
    np.testing.assert_array_equal(both["losses_per_restart"], [warm["loss"], cold["loss"]])
    before = found["W_in"].copy()
    optimise_small_p(n, d_mlp, M, sigma, rng=np.random.default_rng(2), n_restarts=1, maxiter=50,
                     warm_start=(found["W_in"], found["W_out"]))
    np.testing.assert_array_equal(found["W_in"], before)                       # the start is not changed in place


def test_continued_optimum_follows_one_minimum_up_from_weak_mixing(optimiser_calls):
    """t·σ for t in the path, each L-BFGS from the one before, then σ with the rng's own random restarts."""
    from cc_numpy.analyses import small_p

    rng = np.random.default_rng(12)
    n, d_mlp, sigma = 12, 4, 0.3
    M = rng.normal(size=(n, n))
    calls = optimiser_calls
    stream = np.random.default_rng(5)
    state = stream.bit_generator.state
    found = small_p.optimise_small_p_continued(n, d_mlp, M, sigma, stream, n_restarts=3, maxiter=200)
    assert stream.bit_generator.state == state                                # the rng is not advanced
    assert [args[3] for args, _, _ in calls] == [t * sigma for t in small_p.CONTINUATION_PATH] + [sigma]
    assert [(kw["n_restarts"], kw["maxiter"]) for _, kw, _ in calls] == [(1, 40)] * 3 + [(3, 200)]
    assert calls[0][1]["warm_start"] is None
    for (_, kwargs, _), (_, _, before) in zip(calls[1:], calls[:-1]):
        assert kwargs["warm_start"][0] is before["W_in"] and kwargs["warm_start"][1] is before["W_out"]
    assert found is calls[-1][2]
    plain = optimise_small_p(n, d_mlp, M, sigma, np.random.default_rng(5), n_restarts=2, maxiter=200)
    np.testing.assert_array_equal(found["losses_per_restart"][1:], plain["losses_per_restart"])


@pytest.mark.parametrize("path, error", [((0.5, 0.25), ValueError), ((0.0, 0.5), ValueError), ((0.5, 1.0), ValueError),
                                         ((0.5, 0.5), ValueError), ((), ValueError), ("0.5", TypeError),
                                         ((True,), TypeError), (0.5, TypeError), (("0.5",), TypeError)])
def test_continuation_path_must_be_increasing_fractions(path, error):
    with pytest.raises(error, match="path"):
        optimise_small_p_continued(6, 3, np.eye(6), 0.1, np.random.default_rng(0), path=path)


def test_continuation_checks_its_inputs_before_any_work(optimiser_calls):
    from cc_numpy.analyses import small_p

    with pytest.raises(ValueError, match="n_restarts"):
        small_p.optimise_small_p_continued(6, 3, np.eye(6), 0.1, np.random.default_rng(0), n_restarts=0)
    assert optimiser_calls == []


def test_continuation_takes_numpy_fractions_and_needs_M():
    rng = np.random.default_rng(0)
    found = optimise_small_p_continued(6, 3, np.eye(6), 0.1, rng, n_restarts=1, maxiter=5,
                                       path=np.array([0.25, 0.5], dtype=np.float32))
    assert np.isfinite(found["loss"])
    for M, sigma, error, name in ((None, 0.1, ValueError, "M"), (np.eye(6), "0.1", TypeError, "sigma"),
                                  (np.eye(5), 0.1, ValueError, "M")):
        with pytest.raises(error, match=name):
            optimise_small_p_continued(6, 3, M, sigma, rng)


# ---------------------------------------------------------------- batches

def test_one_active_batch_cycles_features_with_uniform_values():
    n, per_feature = 6, 500
    x = one_active_batch(n, per_feature, np.random.default_rng(10))
    assert x.shape == (n * per_feature, n) and x.dtype == np.float64
    assert np.all(np.count_nonzero(x, axis=1) == 1)
    np.testing.assert_array_equal(np.argmax(np.abs(x), axis=1), np.arange(n * per_feature) % n)
    values = x.sum(axis=1)
    assert np.all(np.abs(values) <= 1.0)
    assert abs(np.mean(values)) < 0.1 and abs(np.mean(values**2) - 1 / 3) < 0.05


# ---------------------------------------------------------------- validation

def test_bad_inputs_raise_errors_naming_the_argument():
    rng = np.random.default_rng(0)
    W_in, W_out = random_weights(rng, 6, 3)
    M = rng.normal(size=(6, 6))
    bad = W_in.copy()
    bad[0, 0] = np.nan
    cases = [
        (lambda: small_p_loss(W_in, W_out.T), ValueError, "W_out"),
        (lambda: small_p_loss(W_in[0], W_out), ValueError, "W_in"),
        (lambda: small_p_loss(bad, W_out), ValueError, "W_in"),
        (lambda: small_p_loss(W_in.astype(complex), W_out), TypeError, "W_in"),
        (lambda: small_p_loss(W_in.tolist(), W_out), TypeError, "W_in"),      # a list is refused, as everywhere
        (lambda: small_p_loss_and_grad(W_in, W_out, M[:5], 0.1), ValueError, "M"),
        (lambda: small_p_loss(W_in, W_out, M, np.inf), ValueError, "sigma"),
        (lambda: small_p_loss(W_in, W_out, M, "0.1"), TypeError, "sigma"),
        (lambda: small_p_loss(W_in, W_out, None, 0.1), ValueError, "M"),
        (lambda: monte_carlo_small_p_loss(W_in, W_out, M, 0.1, 1, rng), ValueError, "n_samples"),
        (lambda: monte_carlo_small_p_loss(W_in, W_out, M, 0.1, 10.0, rng), TypeError, "n_samples"),
        (lambda: monte_carlo_small_p_loss(W_in, W_out, M, 0.1, 100, 0), TypeError, "rng"),
        (lambda: one_active_batch(6, 10, np.random.RandomState(0)), TypeError, "rng"),
        (lambda: one_active_batch(6, 0, rng), ValueError, "n_per_feature"),
        (lambda: optimise_small_p(6, 3), TypeError, "rng"),
        (lambda: optimise_small_p(6, 3, rng=rng, n_restarts=0), ValueError, "n_restarts"),
        (lambda: optimise_small_p(6, 3, np.eye(5), 0.1, rng=rng), ValueError, "M"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=W_in), TypeError, "warm_start"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=(W_in, W_out, W_out)), ValueError, "warm_start"),
        (lambda: optimise_small_p(6, 4, rng=rng, warm_start=(W_in, W_out)), ValueError, "warm_start"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=(W_in, W_out.T)), ValueError, "warm_start"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=(bad, W_out)), ValueError, "warm_start"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=(W_in.tolist(), W_out)), TypeError, "warm_start"),
        (lambda: optimise_small_p(6, 3, rng=rng, warm_start=(W_in * 1e200, W_out * 1e200)), ValueError, "warm_start"),
    ]
    for call, error, name in cases:
        with pytest.raises(error) as caught:
            call()
        assert name in str(caught.value)
