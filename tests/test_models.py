"""Tests for cc_numpy.core.mlp and cc_numpy.core.residual: initialisation, forward passes, the two residual
paths and the mixing-matrix equivalence between the residual model and the simplified MLP."""

import numpy as np
import pytest
import scipy.sparse as sp

from cc_numpy.core import data, loss, mixing, mlp, residual

TIGHT = dict(rtol=1e-10, atol=1e-12)


def residual_params(n=6, d=40, d_mlp=3, seed=0):
    return residual.init_params(n, d, d_mlp, np.random.default_rng(seed), np.random.default_rng(seed + 100))


def dense_batch(B, n, p, seed):
    return data.sample_inputs(B, n, p, np.random.default_rng(seed))


# ---------------------------------------------------------------- initialisation

def test_mlp_init_shapes_bounds_and_dtype():
    n, d_mlp = 40, 10
    params = mlp.init_params(n, d_mlp, np.random.default_rng(0), dtype="float32")
    assert params["W_in"].shape == (d_mlp, n) and params["W_out"].shape == (n, d_mlp)
    assert params["W_in"].dtype == np.float32 and params["W_out"].dtype == np.float32
    for key, rows in (("W_in", d_mlp), ("W_out", n)):           # uniform in ±√(6 / rows)
        bound = np.sqrt(6.0 / rows)
        W = params[key]
        assert np.max(np.abs(W)) <= bound
        assert np.max(W) > 0.9 * bound and np.min(W) < -0.9 * bound
        assert W.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)


def test_residual_init_shapes_bounds_and_embedding():
    n, d, d_mlp = 10, 200, 5
    params = residual_params(n, d, d_mlp)
    assert params["W_E"].shape == (d, n)
    assert params["W_in"].shape == (d_mlp, d) and params["W_out"].shape == (d, d_mlp)
    np.testing.assert_allclose(np.linalg.norm(params["W_E"], axis=0), 1.0, rtol=1e-12)
    assert np.max(np.abs(params["W_in"])) <= np.sqrt(6.0 / d_mlp)
    assert np.max(np.abs(params["W_out"])) <= np.sqrt(6.0 / d)
    assert np.max(np.abs(params["W_out"])) > 0.9 * np.sqrt(6.0 / d)


def test_residual_init_embedding_depends_only_on_the_embedding_stream():
    a = residual.init_params(5, 20, 3, np.random.default_rng(1), np.random.default_rng(2))
    b = residual.init_params(5, 20, 3, np.random.default_rng(1), np.random.default_rng(9))
    np.testing.assert_array_equal(a["W_E"], b["W_E"])
    assert not np.array_equal(a["W_in"], b["W_in"])


# ---------------------------------------------------------------- the MLP

def test_mlp_forward_matches_the_formula_sample_by_sample():
    rng = np.random.default_rng(3)
    params = mlp.init_params(5, 3, rng)
    x = rng.uniform(-1, 1, (4, 5))
    y_hat, (x_cached, h, a) = mlp.forward(params, x)
    for b in range(4):                                           # ŷ = W_out ReLU(W_in x), column vectors
        h_b = params["W_in"] @ x[b]
        np.testing.assert_allclose(h[b], h_b, rtol=1e-14)
        np.testing.assert_allclose(a[b], np.maximum(h_b, 0), rtol=1e-14)
        np.testing.assert_allclose(y_hat[b], params["W_out"] @ np.maximum(h_b, 0), rtol=1e-13, atol=1e-15)
    assert x_cached is x


def test_mlp_sparse_and_dense_inputs_give_the_same_output_and_gradients():
    rng = np.random.default_rng(4)
    params = mlp.init_params(8, 4, rng)
    x = dense_batch(50, 8, 0.3, 5)
    d_y = rng.standard_normal((50, 8))
    y_dense, cache_dense = mlp.forward(params, x)
    y_sparse, cache_sparse = mlp.forward(params, sp.csr_matrix(x))
    np.testing.assert_allclose(y_sparse, y_dense, **TIGHT)
    g_dense = mlp.backward(params, cache_dense, d_y)
    g_sparse = mlp.backward(params, cache_sparse, d_y)
    for key in mlp.PARAM_KEYS:
        assert isinstance(g_sparse[key], np.ndarray) and g_sparse[key].shape == params[key].shape
        np.testing.assert_allclose(g_sparse[key], g_dense[key], **TIGHT)


def test_mlp_naive_model_is_exact_on_its_features(naive_params):
    params = naive_params(10, 4)
    x = dense_batch(100, 10, 0.5, 6)
    y_hat, _ = mlp.forward(params, x)
    np.testing.assert_array_equal(y_hat[:, :4], np.maximum(x[:, :4], 0))
    assert not np.any(y_hat[:, 4:])


# ---------------------------------------------------------------- residual: fast path == literal path

@pytest.mark.parametrize("p", [0.2, 1.0])
def test_residual_fast_path_equals_literal_path_dense(p):
    params = residual_params()
    x = dense_batch(64, 6, p, 7)
    d_y = np.random.default_rng(8).standard_normal((64, 6))
    y_fast, cache_fast = residual.forward(params, x)
    y_lit, cache_lit = residual.forward_literal(params, x)
    np.testing.assert_allclose(y_fast, y_lit, **TIGHT)
    g_fast = residual.backward(params, cache_fast, d_y)
    g_lit = residual.backward_literal(params, cache_lit, d_y)
    for key in residual.PARAM_KEYS:
        assert g_fast[key].shape == params[key].shape
        np.testing.assert_allclose(g_fast[key], g_lit[key], **TIGHT)


def test_residual_fast_path_on_sparse_x_equals_literal_path_on_the_dense_rows():
    params = residual_params(seed=1)
    batch = data.sample_sparse_batch(200, 6, 0.1, np.random.default_rng(9))
    x_dense = batch["x"].toarray()
    y = data.make_labels(x_dense, "residual")
    y_fast, cache_fast = residual.forward(params, batch["x"])
    y_lit, cache_lit = residual.forward_literal(params, x_dense)
    np.testing.assert_allclose(y_fast, y_lit, **TIGHT)
    loss_fast, d_fast = loss.mse_loss(y_fast, y)
    loss_lit, d_lit = loss.mse_loss(y_lit, y)
    assert loss_fast == pytest.approx(loss_lit, rel=1e-12)
    g_fast = residual.backward(params, cache_fast, d_fast)
    g_lit = residual.backward_literal(params, cache_lit, d_lit)
    for key in residual.PARAM_KEYS:
        np.testing.assert_allclose(g_fast[key], g_lit[key], **TIGHT)


def test_residual_precomputed_gram_gives_the_same_output():
    params = residual_params(seed=2)
    x = dense_batch(30, 6, 0.3, 10)
    gram = residual.gram_matrix(params["W_E"])
    np.testing.assert_allclose(np.diag(gram), 1.0, rtol=1e-12)       # unit-norm columns
    np.testing.assert_allclose(gram, gram.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(residual.forward(params, x, gram=gram)[0], residual.forward(params, x)[0], **TIGHT)


def test_residual_with_zero_mlp_is_the_gram_matrix():
    params = residual_params(seed=3)
    params["W_out"][...] = 0.0
    x = dense_batch(20, 6, 0.5, 11)
    y_hat, _ = residual.forward_literal(params, x)
    np.testing.assert_allclose(y_hat, x @ params["W_E"].T @ params["W_E"], **TIGHT)   # ŷ = W_Eᵀ W_E x


# ---------------------------------------------------------------- the mixing matrix of the residual model

def test_residual_error_equals_mlp_error_on_mixed_labels():
    """ŷ_res − (x + ReLU x) = W̃_out ReLU(W̃_in x) − (ReLU x + M x) with M = I − W_EᵀW_E."""
    params = residual_params(n=8, d=50, d_mlp=4, seed=4)
    x = dense_batch(100, 8, 0.3, 12)
    M = mixing.residual_mixing_matrix(params["W_E"])
    np.testing.assert_allclose(M, np.eye(8) - params["W_E"].T @ params["W_E"], rtol=0, atol=1e-15)
    tilde = mixing.feature_basis_weights(params)
    assert tilde["W_in"].shape == (4, 8) and tilde["W_out"].shape == (8, 4)

    y_res, cache_res = residual.forward_literal(params, x)
    y_mlp, cache_mlp = mlp.forward(tilde, x)
    err_res = y_res - data.make_labels(x, "residual")
    err_mlp = y_mlp - data.make_labels(x, "mixed", M, 1.0)
    np.testing.assert_allclose(err_res, err_mlp, **TIGHT)
    assert np.max(np.abs(err_res)) > 1e-3                         # a real comparison, not 0 == 0

    loss_res, d_res = loss.mse_loss(y_res, data.make_labels(x, "residual"))
    loss_mlp, d_mlp = loss.mse_loss(y_mlp, data.make_labels(x, "mixed", M, 1.0))
    assert loss_res == pytest.approx(loss_mlp, rel=1e-12)

    g_res = residual.backward_literal(params, cache_res, d_res)
    g_tilde = mlp.backward(tilde, cache_mlp, d_mlp)
    W_E = params["W_E"]
    np.testing.assert_allclose(g_res["W_in"], g_tilde["W_in"] @ W_E.T, **TIGHT)    # dW_in = dW̃_in W_Eᵀ
    np.testing.assert_allclose(g_res["W_out"], W_E @ g_tilde["W_out"], **TIGHT)    # dW_out = W_E dW̃_out


def test_authors_sign_does_not_give_the_residual_models_labels():
    params = residual_params(n=8, d=50, d_mlp=4, seed=5)
    x = dense_batch(100, 8, 0.5, 13)
    M_authors = mixing.residual_mixing_matrix(params["W_E"], sign="authors")
    np.testing.assert_allclose(M_authors, -mixing.residual_mixing_matrix(params["W_E"]), rtol=0, atol=0)
    y_res, _ = residual.forward(params, x)
    y_mlp, _ = mlp.forward(mixing.feature_basis_weights(params), x)
    err_res = y_res - data.make_labels(x, "residual")
    err_authors = y_mlp - data.make_labels(x, "mixed", M_authors, 1.0)
    assert np.max(np.abs(err_res - err_authors)) > 1e-2


def test_residual_mixing_matrix_has_zero_diagonal_and_off_diagonal_spread_one_over_root_d():
    n, d = 100, 1000
    W_E = data.random_embedding(n, d, np.random.default_rng(14))
    M = mixing.residual_mixing_matrix(W_E)
    assert np.max(np.abs(np.diag(M))) < 1e-12
    off = M[~np.eye(n, dtype=bool)]
    assert off.std() == pytest.approx(1 / np.sqrt(d), rel=0.1)


def test_residual_mixing_matrix_refuses_unknown_sign_and_bad_embedding():
    with pytest.raises(ValueError, match="unknown sign 'minus'"):
        mixing.residual_mixing_matrix(np.ones((4, 2)), sign="minus")
    with pytest.raises(ValueError, match="W_E must be 2-D"):
        mixing.residual_mixing_matrix(np.ones(4))


# ---------------------------------------------------------------- boundary checks

def test_mlp_check_params_refuses_wrong_shapes_nan_and_missing_keys():
    params = mlp.init_params(5, 3, np.random.default_rng(0))
    assert mlp.check_params(params) == (5, 3)
    with pytest.raises(ValueError, match=r"W_out must have shape \(5, 3\)"):
        mlp.check_params({"W_in": params["W_in"], "W_out": params["W_out"].T.copy()})
    with pytest.raises(ValueError, match="dict with keys"):
        mlp.check_params({"W_in": params["W_in"]})
    bad = dict(params, W_in=params["W_in"].copy())
    bad["W_in"][0, 0] = np.inf
    with pytest.raises(ValueError, match="W_in contains NaN or infinite"):
        mlp.check_params(bad)


def test_residual_check_params_refuses_wrong_shapes_and_missing_embedding():
    params = residual_params(n=5, d=20, d_mlp=3)
    assert residual.check_params(params) == (5, 20, 3)
    with pytest.raises(ValueError, match=r"W_in must have shape \(any, 20\)"):
        residual.check_params(dict(params, W_in=np.zeros((3, 19))))
    with pytest.raises(ValueError, match=r"W_out must have shape \(20, 3\)"):
        residual.check_params(dict(params, W_out=np.zeros((20, 4))))
    with pytest.raises(ValueError, match="keys \\('W_E', 'W_in', 'W_out'\\)"):
        residual.check_params({"W_in": params["W_in"], "W_out": params["W_out"]})
