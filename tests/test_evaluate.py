"""Tests for cc_numpy.core.evaluate: Monte Carlo L/p, its standard error and the target-stderr mode."""

import numpy as np
import pytest

from cc_numpy.analyses import baselines
from cc_numpy.core import data, evaluate, mlp, residual


def mixed_naive_closed_form(n, d_mlp, M, sigma):
    """L/p of the naive model on y = ReLU(x) + σ M x, at every p.

    Per output o: E[e_o²] = 1[o ≥ d_mlp] p/6 + 2σ 1[o ≥ d_mlp] M_oo p/6 + σ² Σ_i M_oi² p/3,
    using E[ReLU(x)²] = E[ReLU(x) x] = p/6 and E[x²] = p/3 for one feature; features are independent.
    """
    return ((n - d_mlp) / (6 * n) + sigma / (3 * n) * np.trace(M[d_mlp:, d_mlp:])
            + sigma ** 2 * np.sum(M ** 2) / (3 * n))


@pytest.mark.parametrize("p, n_samples", [(0.01, 40_000), (0.1, 20_000), (1.0, 4_000)])
def test_naive_model_on_clean_labels_is_one_twelfth(naive_params, p, n_samples):
    result = evaluate.loss_over_p(naive_params(100, 50), p, np.random.default_rng(0), task="clean",
                                  n_samples=n_samples)
    assert result["p"] == p and result["n_samples"] == n_samples
    assert 0 < result["stderr"] < 0.1 * baselines.naive_loss_over_p()
    assert abs(result["loss_over_p"] - baselines.naive_loss_over_p()) < 4 * result["stderr"]


def test_naive_reference_value_is_half_of_mean_relu_squared():
    grid = np.linspace(-1, 1, 200_001)                           # x ~ U[-1, 1]
    mean_relu_squared = np.mean(np.maximum(grid, 0) ** 2)        # E[ReLU(x)²] ≈ 1/6
    assert baselines.naive_loss_over_p() == pytest.approx(0.5 * mean_relu_squared, rel=1e-4)


def test_naive_model_on_mixed_labels_matches_the_closed_form(naive_params):
    n, d_mlp, sigma, p = 20, 10, 0.1, 0.05
    M = np.random.default_rng(1).standard_normal((n, n))
    expected = mixed_naive_closed_form(n, d_mlp, M, sigma)
    assert expected > 1 / 12 + 0.01                              # the mixing term is visible
    result = evaluate.loss_over_p(naive_params(n, d_mlp), p, np.random.default_rng(2), task="mixed", M=M,
                                  sigma=sigma, n_samples=40_000)
    assert abs(result["loss_over_p"] - expected) < 4 * result["stderr"]
    assert result["stderr"] < 0.05 * expected


@pytest.mark.parametrize("model", ["mlp", "residual"])
def test_loss_over_p_is_the_mean_per_sample_loss_over_p(model):
    """Reproduce the estimate from the same draws with the dense (and, for the residual model, literal) path."""
    n, p, N = 6, 0.2, 3000
    rng = np.random.default_rng(3)
    if model == "residual":
        params = residual.init_params(n, 30, 3, rng, rng)
        task = "residual"
    else:
        params = mlp.init_params(n, 3, rng)
        task = "clean"
    result = evaluate.loss_over_p(params, p, np.random.default_rng(4), task=task, n_samples=N)
    x = data.sample_inputs(N, n, p, np.random.default_rng(4))   # the same draws, zero rows included
    y_hat = residual.forward_literal(params, x)[0] if model == "residual" else mlp.forward(params, x)[0]
    per_sample = np.mean((y_hat - data.make_labels(x, task)) ** 2, axis=1)     # ℓ_b
    assert result["loss_over_p"] == pytest.approx(per_sample.mean() / p, rel=1e-10)
    assert result["stderr"] == pytest.approx(per_sample.std(ddof=1) / np.sqrt(N) / p, rel=1e-8)


def test_chunked_sampling_gives_the_requested_count():
    params = mlp.init_params(5, 2, np.random.default_rng(5))
    result = evaluate.loss_over_p(params, 0.3, np.random.default_rng(6), n_samples=2500, chunk_size=1000)
    assert result["n_samples"] == 2500


def test_stderr_shrinks_like_one_over_root_n(naive_params):
    params = naive_params(20, 10)
    small = evaluate.loss_over_p(params, 0.1, np.random.default_rng(7), n_samples=1_000)
    large = evaluate.loss_over_p(params, 0.1, np.random.default_rng(8), n_samples=16_000)
    ratio = small["stderr"] / large["stderr"]                    # ≈ √16 = 4
    assert 2.5 < ratio < 6


def test_target_stderr_is_reached(naive_params):
    params = naive_params(20, 10)
    target = 0.003
    result = evaluate.loss_over_p(params, 0.1, np.random.default_rng(9), n_samples=500, target_stderr=target,
                                  chunk_size=1000)
    assert result["stderr"] <= target
    assert result["n_samples"] > 1000                            # one chunk was not enough
    assert result["n_samples"] % 1000 == 0
    assert abs(result["loss_over_p"] - 1 / 12) < 4 * result["stderr"]


def test_target_stderr_stops_at_max_samples(naive_params):
    result = evaluate.loss_over_p(naive_params(20, 10), 0.1, np.random.default_rng(10), n_samples=100,
                                  target_stderr=1e-9, max_samples=3000, chunk_size=1000)
    assert result["n_samples"] == 3000
    assert result["stderr"] > 1e-9


def test_residual_model_evaluation_on_its_own_task():
    """W_out = 0: ŷ = W_EᵀW_E x, so the error is −(M x + ReLU x) with M = I − W_EᵀW_E."""
    n, d = 10, 400
    rng = np.random.default_rng(11)
    params = residual.init_params(n, d, 4, rng, rng)
    params["W_out"][...] = 0.0
    M = np.eye(n) - params["W_E"].T @ params["W_E"]
    result = evaluate.loss_over_p(params, 0.05, np.random.default_rng(12), task="residual", n_samples=20_000)
    # The same as the MLP that outputs nothing, on mixed labels ReLU(x) + M x: closed form with d_mlp = 0.
    expected = mixed_naive_closed_form(n, 0, M, 1.0)
    assert abs(result["loss_over_p"] - expected) < 4 * result["stderr"]


def test_float32_params_give_nearly_the_float64_result():
    params = mlp.init_params(8, 4, np.random.default_rng(13))
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    r64 = evaluate.loss_over_p(params, 0.2, np.random.default_rng(14), n_samples=2000)
    r32 = evaluate.loss_over_p(params32, 0.2, np.random.default_rng(14), n_samples=2000)
    assert r32["loss_over_p"] == pytest.approx(r64["loss_over_p"], rel=1e-5)


def test_curve_evaluates_every_p(naive_params):
    ps = [0.05, 0.2, 1.0]
    curve = evaluate.loss_over_p_curve(naive_params(20, 10), ps, np.random.default_rng(15), n_samples=2000)
    assert set(curve) == {"p", "loss_over_p", "stderr", "n_samples"}
    np.testing.assert_array_equal(curve["p"], ps)
    assert curve["loss_over_p"].shape == (3,)
    assert np.all(np.abs(curve["loss_over_p"] - 1 / 12) < 4 * curve["stderr"])
    with pytest.raises(ValueError, match="ps must be a non-empty list"):
        evaluate.loss_over_p_curve(naive_params(20, 10), [], np.random.default_rng(0))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("p", [0, -0.1, 1.5, float("nan")])
def test_bad_p_is_refused(naive_params, p):
    with pytest.raises(ValueError, match="p must be"):
        evaluate.loss_over_p(naive_params(4, 2), p, np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(task="relu"), ValueError, "unknown task 'relu'"),
    (dict(n_samples=0), ValueError, "n_samples must be an integer >= 2"),
    (dict(target_stderr=0.0), ValueError, "target_stderr must be in"),
    (dict(target_stderr=-1e-3), ValueError, "target_stderr must be in"),
    (dict(chunk_size=0), ValueError, "chunk_size must be an integer >= 1"),
    (dict(task="mixed"), ValueError, "needs a mixing matrix"),
])
def test_bad_arguments_are_refused(naive_params, kwargs, error, message):
    with pytest.raises(error, match=message):
        evaluate.loss_over_p(naive_params(4, 2), 0.5, np.random.default_rng(0), **kwargs)


def test_bad_params_and_rng_are_refused(naive_params):
    params = naive_params(4, 2)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        evaluate.loss_over_p(params, 0.5, 0)
    with pytest.raises(ValueError, match="dict with keys"):
        evaluate.loss_over_p({"W_in": params["W_in"]}, 0.5, np.random.default_rng(0))
    bad = dict(params, W_in=params["W_in"].copy())
    bad["W_in"][0, 0] = np.nan
    with pytest.raises(ValueError, match="W_in contains NaN"):
        evaluate.loss_over_p(bad, 0.5, np.random.default_rng(0))
