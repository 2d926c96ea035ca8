"""Hand-written gradients against centred finite differences (cc_numpy.core.gradcheck), in float64.

Every point is drawn away from ReLU kinks: it is redrawn while any pre-activation of a
non-empty sample is within KINK of 0, so a step h = 1e-6 never crosses one.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from cc_numpy.core import data, gradcheck, loss, mlp, residual, train
from cc_numpy.core.fast.batch import SharedBatch
from cc_numpy.core.fast.batched import ModelStack

KINK = 1e-3
TOLERANCE = 1e-7


def draw_away_from_kinks(make, pre_activations, rng, attempts=200):
    """Call ``make(rng)`` until every |pre-activation| of the result is at least KINK."""
    for _ in range(attempts):
        drawn = make(rng)
        h = pre_activations(drawn)
        if h.size and np.min(np.abs(h)) >= KINK:
            return drawn
    raise AssertionError("could not draw a point away from the ReLU kinks")


def mlp_point(rng, n=6, d_mlp=4, B=12, p=1.0):
    params = {"W_in": rng.standard_normal((d_mlp, n)), "W_out": rng.standard_normal((n, d_mlp))}
    x = data.sample_inputs(B, n, p, rng)
    return params, x


def mlp_pre_activations(point):
    params, x = point
    rows = np.any(x != 0, axis=1)
    return x[rows] @ params["W_in"].T                            # h of the non-empty samples


def residual_point(rng, n=5, d=40, d_mlp=4, B=10, p=1.0):
    params = residual.init_params(n, d, d_mlp, rng, rng)
    params["W_out"] *= 5.0                                       # make the MLP's share of ŷ sizeable
    x = data.sample_inputs(B, n, p, rng)
    return params, x


def residual_pre_activations(point):
    params, x = point
    rows = np.any(x != 0, axis=1)
    return x[rows] @ params["W_E"].T @ params["W_in"].T         # h = W_in W_E x


# ---------------------------------------------------------------- the MLP

@pytest.mark.parametrize("task", ["clean", "mixed", "residual"])
def test_mlp_gradients_every_entry(task):
    rng = np.random.default_rng(0)
    params, x = draw_away_from_kinks(mlp_point, mlp_pre_activations, rng)
    M = rng.standard_normal((6, 6))
    y = data.make_labels(x, task, M, 0.3)

    def f():
        return loss.mse_loss(mlp.forward(params, x)[0], y)[0]

    y_hat, cache = mlp.forward(params, x)
    _, d_y_hat = loss.mse_loss(y_hat, y)
    grads = mlp.backward(params, cache, d_y_hat)
    errors = gradcheck.check_gradients(f, params, grads, rng, max_entries=1000)
    assert set(errors) == {"W_in", "W_out"}
    for key, error in errors.items():
        assert error < TOLERANCE, f"{key}: relative error {error:.2e}"


def test_mlp_gradients_random_subset_of_a_large_tensor():
    rng = np.random.default_rng(1)
    params, x = draw_away_from_kinks(lambda r: mlp_point(r, n=60, d_mlp=20, B=8, p=0.2),
                                     mlp_pre_activations, rng)
    y = data.make_labels(x, "clean")

    def f():
        return loss.mse_loss(mlp.forward(params, x)[0], y)[0]

    y_hat, cache = mlp.forward(params, x)
    grads = mlp.backward(params, cache, loss.mse_loss(y_hat, y)[1])
    errors = gradcheck.check_gradients(f, params, grads, rng, max_entries=80)   # 80 of 1200 entries
    for key, error in errors.items():
        assert error < TOLERANCE, f"{key}: relative error {error:.2e}"


def test_gradient_check_detects_a_wrong_gradient():
    """The check is not vacuous: a gradient off by a factor, or transposed, fails it."""
    rng = np.random.default_rng(2)
    params, x = draw_away_from_kinks(mlp_point, mlp_pre_activations, rng)
    y = data.make_labels(x, "clean")

    def f():
        return loss.mse_loss(mlp.forward(params, x)[0], y)[0]

    y_hat, cache = mlp.forward(params, x)
    grads = mlp.backward(params, cache, loss.mse_loss(y_hat, y)[1])
    wrong = {"W_in": 1.01 * grads["W_in"], "W_out": grads["W_out"][::-1].copy()}
    errors = gradcheck.check_gradients(f, params, wrong, rng)
    assert errors["W_in"] > 1e-3 and errors["W_out"] > 1e-2


# ---------------------------------------------------------------- the residual model, both paths

@pytest.mark.parametrize("path", ["fast", "literal"])
def test_residual_gradients(path):
    rng = np.random.default_rng(3)
    params, x = draw_away_from_kinks(residual_point, residual_pre_activations, rng)
    y = data.make_labels(x, "residual")
    forward, backward = {"fast": (residual.forward, residual.backward),
                         "literal": (residual.forward_literal, residual.backward_literal)}[path]

    def f():
        return loss.mse_loss(forward(params, x)[0], y)[0]

    y_hat, cache = forward(params, x)
    grads = backward(params, cache, loss.mse_loss(y_hat, y)[1])
    assert set(grads) == {"W_in", "W_out"}                       # W_E is never trained
    # W_in (4 × 40) and W_out (40 × 4): 160 entries each, a random 60 probed.
    errors = gradcheck.check_gradients(f, params, grads, rng, max_entries=60)
    for key, error in errors.items():
        assert error < TOLERANCE, f"{path} {key}: relative error {error:.2e}"


def test_residual_gradients_every_entry_of_a_small_model():
    rng = np.random.default_rng(4)
    params, x = draw_away_from_kinks(lambda r: residual_point(r, n=4, d=9, d_mlp=3, B=8),
                                     residual_pre_activations, rng)
    y = data.make_labels(x, "residual")
    for forward, backward in ((residual.forward, residual.backward),
                              (residual.forward_literal, residual.backward_literal)):
        def f():
            return loss.mse_loss(forward(params, x)[0], y)[0]

        y_hat, cache = forward(params, x)
        grads = backward(params, cache, loss.mse_loss(y_hat, y)[1])
        errors = gradcheck.check_gradients(f, params, grads, rng, max_entries=27)
        for key, error in errors.items():
            assert error < TOLERANCE, f"{forward.__name__} {key}: relative error {error:.2e}"


# ---------------------------------------------------------------- the fast engine: statistics, zero rows dropped

@pytest.mark.parametrize("p", [0.08, 0.3])                     # a sparse and a dense batch (data.DENSE_FROM_P)
@pytest.mark.parametrize("model, task", [("mlp", "mixed"), ("mlp", "residual"), ("residual", "residual"),
                                         ("residual", "mixed")])
def test_fast_engine_gradients_every_tensor(model, task, p):
    """The fast engine's loss is the plain mean over all B samples, and its gradients (learned σ
    included) match centred differences of that loss."""
    learn = task == "mixed"
    for seed in range(200):
        config = train.make_config(model=model, task=task, n=6, d=12, d_mlp=3, p=p, batch_size=40, seed=seed,
                                   dtype="float64", learn_sigma=learn, sigma_init=-0.3)
        stack = ModelStack([config], [None], [None])
        raw = data.sample_batch(40, 6, p, stack.data_rng, np.float64)
        x_kept = raw["x"].toarray() if sp.issparse(raw["x"]) else raw["x"]
        W_in = stack.params["W_in"][0] @ stack.params["W_E"][0] if model == "residual" else stack.params["W_in"][0]
        if np.min(np.abs(x_kept @ W_in.T)) >= KINK:
            break
    else:
        raise AssertionError("could not draw a point away from the ReLU kinks")
    batch = SharedBatch(raw, np.float64)
    assert batch.rows < 40                                 # the all-zero rows were dropped

    def f():
        return float(stack.loss_and_grads(batch, slice(0, 1))[0][0])

    x = data.batch_to_dense(raw)                                 # (B, n), zero rows back in
    plain = {k: v[0] for k, v in stack.params.items() if k != "sigma"}
    forward = residual.forward_literal if model == "residual" else mlp.forward
    y = data.make_labels(x, task, stack.Ms[0], abs(float(stack.params["sigma"][0])))
    assert f() == pytest.approx(loss.mse_loss(forward(plain, x)[0], y)[0], rel=1e-12)
    _, grads = stack.loss_and_grads(batch, slice(0, 1))
    params = {k: stack.params[k] for k in stack.trained}         # (1, ...) stacks, perturbed in place
    assert set(grads) == set(params) == ({"W_in", "W_out", "sigma"} if learn else {"W_in", "W_out"})
    errors = gradcheck.check_gradients(f, params, grads, np.random.default_rng(5), max_entries=60)
    for key, error in errors.items():
        assert error < TOLERANCE, f"{model} {task} {key}: relative error {error:.2e}"


# ---------------------------------------------------------------- ∂L/∂σ, σ entering through the labels

@pytest.mark.parametrize("sigma", [0.4, -0.4, 0.05])
def test_sigma_gradient(sigma):
    rng = np.random.default_rng(6)
    params, x = draw_away_from_kinks(mlp_point, mlp_pre_activations, rng)
    M = rng.standard_normal((6, 6))
    mixed = data.mixing_term(x, M)                               # (B, n) M x
    y_hat, _ = mlp.forward(params, x)
    sigma_array = np.array([sigma])

    def f():                                                     # y = ReLU(x) + |σ| M x
        return loss.mse_loss(y_hat, np.maximum(x, 0) + abs(sigma_array[0]) * mixed)[0]

    _, d_y_hat = loss.mse_loss(y_hat, np.maximum(x, 0) + abs(sigma) * mixed)
    analytic = loss.sigma_grad(d_y_hat, mixed, sigma)
    numerical = gradcheck.numerical_gradient(f, sigma_array)
    assert sigma_array[0] == sigma                               # restored after probing
    assert abs(analytic) > 1e-6
    assert gradcheck.relative_error(numerical, np.array([analytic])) < TOLERANCE
    # The labels depend on |σ| only, so the gradient is odd in σ.
    _, d_mirror = loss.mse_loss(y_hat, np.maximum(x, 0) + abs(-sigma) * mixed)
    assert loss.sigma_grad(d_mirror, mixed, -sigma) == pytest.approx(-analytic, rel=1e-12)


def test_train_step_gradients_including_sigma():
    """train.train_step as the plain loop uses it: labels y_base + |σ| M x, learned σ."""
    config = train.make_config(n=6, d_mlp=3, p=0.3, batch_size=30, dtype="float64", learn_sigma=True,
                               sigma_init=-0.2, seed=0)
    for seed in range(50):
        config["seed"] = seed
        params, M, data_rng = train.build_run(config)
        batch = train.draw_batch(config, M, data_rng, np.float64)
        x = batch["x"][np.any(batch["x"] != 0, axis=1)]         # the samples with an active feature
        h = x @ params["W_in"].T
        if np.min(np.abs(h)) >= KINK:
            break
    else:
        raise AssertionError("could not draw a point away from the ReLU kinks")

    def f():
        return train.train_step("mlp", params, batch, float(params["sigma"]), False)[0]

    _, grads = train.train_step("mlp", params, batch, float(params["sigma"]), True)
    assert set(grads) == {"W_in", "W_out", "sigma"}
    errors = gradcheck.check_gradients(f, params, grads, np.random.default_rng(7))
    for key, error in errors.items():
        assert error < TOLERANCE, f"{key}: relative error {error:.2e}"


# ---------------------------------------------------------------- gradcheck's own guards

def test_relative_error_definition():
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    a, b = np.array([3.0, 4.0]), np.array([0.0, 0.0])
    assert gradcheck.relative_error(a, b) == pytest.approx(1.0)
    assert gradcheck.relative_error(a, -a) == pytest.approx(1.0)
    assert gradcheck.relative_error(a, a) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        gradcheck.relative_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_refuses_float32_and_restores_the_array():
    with pytest.raises(TypeError, match="float64"):
        gradcheck.numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="h must be"):
        gradcheck.numerical_gradient(lambda: 0.0, np.zeros(3), h=0.0)
    w = np.array([1.0, -2.0, 0.5])
    g = gradcheck.numerical_gradient(lambda: float(np.sum(w ** 3)), w)
    np.testing.assert_array_equal(w, [1.0, -2.0, 0.5])
    np.testing.assert_allclose(g, 3 * w ** 2, rtol=1e-8)
