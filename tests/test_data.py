"""Tests for cc_numpy.core.data: the sparse sampler, the label tasks, the mixing matrices, the streams."""

import numpy as np
import pytest
import scipy.sparse as sp

from cc_numpy.core import data


def binomial_tolerance(trials, p, z=5.0):
    """z standard deviations of a Binomial(trials, p) count."""
    return z * np.sqrt(trials * p * (1.0 - p))


# ---------------------------------------------------------------- sampler statistics

@pytest.mark.parametrize("p", [0.002, 0.05, 0.5])
def test_activity_rate_is_p(p):
    B, n = 4000, 50
    x = data.sample_inputs(B, n, p, np.random.default_rng(10))
    assert x.shape == (B, n)
    active = np.count_nonzero(x)
    assert abs(active - B * n * p) < binomial_tolerance(B * n, p)


def test_every_feature_is_active_at_the_same_rate():
    """No column is favoured: each column's count is Binomial(B, p)."""
    B, n, p = 4000, 40, 0.1
    x = data.sample_inputs(B, n, p, np.random.default_rng(11))
    per_column = np.count_nonzero(x, axis=0)                     # (n,)
    assert np.all(np.abs(per_column - B * p) < binomial_tolerance(B, p))


def test_active_count_per_sample_has_binomial_spread():
    """Features are independent within a sample: the count per row has variance n p (1 − p)."""
    B, n, p = 6000, 30, 0.2
    x = data.sample_inputs(B, n, p, np.random.default_rng(12))
    per_row = np.count_nonzero(x, axis=1)                        # (B,)
    assert per_row.mean() == pytest.approx(n * p, rel=0.05)
    assert per_row.var() == pytest.approx(n * p * (1 - p), rel=0.15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_active_values_are_uniform_on_minus_one_one(dtype):
    B, n, p = 3000, 50, 0.1
    x = data.sample_inputs(B, n, p, np.random.default_rng(13), dtype=dtype)
    assert x.dtype == dtype
    values = x[x != 0]
    assert values.size > 0
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert values.min() < -0.99 and values.max() > 0.99          # the whole range is used
    sd = 1.0 / np.sqrt(3.0)                                       # std of U[-1, 1]
    assert abs(values.mean()) < 5 * sd / np.sqrt(values.size)
    assert values.var() == pytest.approx(1.0 / 3.0, rel=0.05)
    assert abs(np.mean(values > 0) - 0.5) < binomial_tolerance(values.size, 0.5) / values.size


@pytest.mark.parametrize("p", [0.01, 0.05])
def test_all_zero_row_fraction_is_one_minus_p_to_the_n(p):
    B, n = 5000, 40
    batch = data.sample_sparse_batch(B, n, p, np.random.default_rng(14))
    zero_rows = B - batch["x"].shape[0]
    q = (1.0 - p) ** n
    assert abs(zero_rows - B * q) < binomial_tolerance(B, q)


def test_p_one_makes_every_entry_active():
    B, n = 50, 7
    x = data.sample_inputs(B, n, 1.0, np.random.default_rng(15))
    assert np.count_nonzero(x) == B * n
    batch = data.sample_sparse_batch(B, n, 1.0, np.random.default_rng(15))
    assert batch["x"].shape == (B, n) and batch["x"].nnz == B * n
    np.testing.assert_array_equal(batch["row_index"], np.arange(B))


def test_sparse_and_dense_forms_agree():
    B, n, p = 300, 20, 0.03
    batch = data.sample_sparse_batch(B, n, p, np.random.default_rng(16))
    dense = data.sample_inputs(B, n, p, np.random.default_rng(16))
    assert sp.issparse(batch["x"])
    assert batch["batch_size"] == B
    np.testing.assert_array_equal(data.batch_to_dense(batch), dense)
    # The kept rows are exactly the non-empty ones, in order.
    row_index = batch["row_index"]
    np.testing.assert_array_equal(row_index, np.flatnonzero(np.any(dense != 0, axis=1)))
    assert np.all(np.diff(row_index) > 0)
    np.testing.assert_array_equal(batch["x"].toarray(), dense[row_index])
    assert np.all(batch["x"].getnnz(axis=1) >= 1)


def test_sparse_batch_may_be_empty():
    """A tiny p and a tiny batch give no active feature at all: a (0, n) matrix, not an error."""
    batch = data.sample_sparse_batch(1, 3, 1e-9, np.random.default_rng(17))
    assert batch["x"].shape == (0, 3)
    assert data.batch_to_dense(batch).shape == (1, 3)
    assert not np.any(data.batch_to_dense(batch))


def test_same_generator_state_same_batch_and_different_seeds_differ():
    a = data.sample_inputs(100, 10, 0.2, np.random.default_rng(18))
    b = data.sample_inputs(100, 10, 0.2, np.random.default_rng(18))
    c = data.sample_inputs(100, 10, 0.2, np.random.default_rng(19))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- labels

def test_labels_of_the_three_tasks_on_a_hand_example():
    x = np.array([[-0.5, 0.25, 0.0],
                  [0.75, 0.0, -1.0]])
    M = np.array([[0.0, 1.0, 2.0],
                  [3.0, 0.0, -1.0],
                  [0.5, 0.5, 0.0]])
    sigma = 0.1
    relu = np.maximum(x, 0)
    np.testing.assert_array_equal(data.make_labels(x, "clean"), relu)
    np.testing.assert_array_equal(data.make_labels(x, "residual"), x + relu)
    # y_o = ReLU(x_o) + σ Σ_i M_oi x_i, written out entry by entry.
    expected = np.empty_like(x)
    for b in range(x.shape[0]):
        for o in range(x.shape[1]):
            expected[b, o] = max(x[b, o], 0.0) + sigma * sum(M[o, i] * x[b, i] for i in range(3))
    np.testing.assert_allclose(data.make_labels(x, "mixed", M, sigma), expected, rtol=1e-15, atol=1e-15)


def test_residual_labels_are_twice_positive_and_identity_on_negative():
    x = data.sample_inputs(200, 10, 0.3, np.random.default_rng(20))
    y = data.make_labels(x, "residual")
    np.testing.assert_array_equal(y[x > 0], 2 * x[x > 0])
    np.testing.assert_array_equal(y[x <= 0], x[x <= 0])


@pytest.mark.parametrize("task", data.TASKS)
def test_labels_from_sparse_and_dense_inputs_agree(task):
    rng = np.random.default_rng(21)
    batch = data.sample_sparse_batch(100, 12, 0.2, rng)
    M = rng.standard_normal((12, 12))
    dense = batch["x"].toarray()
    y_sparse = data.make_labels(batch["x"], task, M, 0.3)
    assert isinstance(y_sparse, np.ndarray) and y_sparse.shape == dense.shape
    np.testing.assert_allclose(y_sparse, data.make_labels(dense, task, M, 0.3), rtol=1e-14, atol=1e-15)


def test_mixing_term_is_x_times_M_transpose():
    rng = np.random.default_rng(22)
    x = data.sample_inputs(30, 6, 0.5, rng)
    M = rng.standard_normal((6, 6))
    expected = np.einsum("oi,bi->bo", M, x)                      # (M x)_o = Σ_i M_oi x_i
    np.testing.assert_allclose(data.mixing_term(x, M), expected, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(data.mixing_term(sp.csr_matrix(x), M), expected, rtol=1e-13, atol=1e-14)


def test_mixed_task_needs_a_matrix_of_the_right_shape():
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match="needs a mixing matrix"):
        data.make_labels(x, "mixed")
    with pytest.raises(ValueError, match=r"M must have shape \(4, 4\)"):
        data.make_labels(x, "mixed", np.zeros((3, 3)), 0.1)
    bad = np.eye(4)
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        data.make_labels(x, "mixed", bad, 0.1)


# ---------------------------------------------------------------- mixing matrices

def test_asymmetric_matrix_is_standard_normal_and_not_symmetric():
    n = 80
    M = data.mixing_matrix("asymmetric", n, np.random.default_rng(30))
    assert M.shape == (n, n) and M.dtype == np.float64
    assert abs(M.mean()) < 5 / n
    assert M.std() == pytest.approx(1.0, rel=0.05)
    assert not np.allclose(M, M.T)


def test_symmetric_matrix_is_symmetric_with_unit_variance_entries():
    n = 200
    M = data.mixing_matrix("symmetric", n, np.random.default_rng(31))
    np.testing.assert_array_equal(M, M.T)
    off = M[np.triu_indices(n, 1)]
    assert off.std() == pytest.approx(1.0, rel=0.05)            # no 1/√2
    assert np.diag(M).std() == pytest.approx(1.0, rel=0.2)


@pytest.mark.parametrize("kind", ["embedding", "embedding_authors"])
def test_embedding_matrix_has_zero_diagonal_and_spread_one_over_root_d(kind):
    n, d = 100, 1000
    M = data.mixing_matrix(kind, n, np.random.default_rng(32), d=d)
    assert np.max(np.abs(np.diag(M))) < 1e-12
    np.testing.assert_allclose(M, M.T, atol=1e-15)
    off = M[~np.eye(n, dtype=bool)]
    assert off.std() == pytest.approx(1 / np.sqrt(d), rel=0.1)
    assert abs(off.mean()) < 5 / np.sqrt(d) / np.sqrt(off.size / 2)


def test_authors_sign_is_minus_the_algebra_sign_for_the_same_seed():
    algebra = data.mixing_matrix("embedding", 20, np.random.default_rng(33), d=64)
    authors = data.mixing_matrix("embedding_authors", 20, np.random.default_rng(33), d=64)
    assert np.any(algebra != 0)
    np.testing.assert_array_equal(authors, -algebra)


@pytest.mark.parametrize("kind", ["lowrank", "lowrank_orthonormal"])
@pytest.mark.parametrize("rank", [1, 5, 30])
def test_low_rank_matrix_has_the_rank_and_frobenius_norm_n(kind, rank):
    n = 30
    M = data.mixing_matrix(kind, n, np.random.default_rng(34), rank=rank)
    assert np.linalg.matrix_rank(M) == rank
    assert np.linalg.norm(M) == pytest.approx(n, rel=1e-12)
    singular = np.linalg.svd(M, compute_uv=False)[:rank]
    if kind == "lowrank_orthonormal":                            # flat spectrum: all equal to n/√r
        np.testing.assert_allclose(singular, n / np.sqrt(rank), rtol=1e-10)
    elif rank > 1:
        assert singular[0] > 1.5 * singular[-1]


def test_low_rank_default_rank_is_n():
    M = data.mixing_matrix("lowrank", 12, np.random.default_rng(35))
    assert np.linalg.matrix_rank(M) == 12


@pytest.mark.parametrize("rank", [0, 31])
def test_low_rank_outside_one_to_n_is_refused(rank):
    with pytest.raises(ValueError, match="rank must be"):
        data.mixing_matrix("lowrank", 30, np.random.default_rng(0), rank=rank)


def test_random_embedding_has_unit_norm_columns():
    W_E = data.random_embedding(7, 50, np.random.default_rng(36), dtype="float32")
    assert W_E.shape == (50, 7) and W_E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(W_E, axis=0), 1.0, rtol=1e-6)


# ---------------------------------------------------------------- random streams

def test_random_streams_are_reproducible_and_independent():
    a, b = data.random_streams(5), data.random_streams(5)
    assert set(a) == set(data.STREAMS) >= {"matrix", "data", "init"}
    draws_a = {k: g.random(4) for k, g in a.items()}
    draws_b = {k: g.random(4) for k, g in b.items()}
    for k in a:
        np.testing.assert_array_equal(draws_a[k], draws_b[k])
    assert not np.array_equal(draws_a["matrix"], draws_a["data"])
    assert not np.array_equal(draws_a["data"], draws_a["init"])
    other = data.random_streams(6)["matrix"].random(4)
    assert not np.array_equal(other, draws_a["matrix"])


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("p", [0, 0.0, -0.1, 1.5, float("nan"), float("inf")])
def test_p_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=r"p must be"):
        data.sample_sparse_batch(10, 5, p, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"p must be"):
        data.sample_inputs(10, 5, p, np.random.default_rng(0))


def test_non_numeric_p_is_refused():
    with pytest.raises(TypeError, match="p must be a real number"):
        data.sample_inputs(10, 5, "0.1", np.random.default_rng(0))


@pytest.mark.parametrize("batch_size, n, name", [(0, 5, "batch_size"), (-3, 5, "batch_size"), (10, 0, "n")])
def test_non_positive_sizes_are_refused(batch_size, n, name):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
        data.sample_sparse_batch(batch_size, n, 0.1, np.random.default_rng(0))


@pytest.mark.parametrize("batch_size", [2.5, True, "10"])
def test_non_integer_sizes_are_refused(batch_size):
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        data.sample_inputs(batch_size, 5, 0.1, np.random.default_rng(0))


@pytest.mark.parametrize("rng", [np.random.RandomState(0), 0, None])
def test_wrong_rng_type_is_refused(rng):
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.sample_inputs(10, 5, 0.1, rng)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.mixing_matrix("asymmetric", 5, rng)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        data.random_embedding(5, 10, rng)


def test_unknown_task_kind_and_dtype_are_refused():
    with pytest.raises(ValueError, match="unknown task 'relu'"):
        data.make_labels(np.zeros((2, 3)), "relu")
    with pytest.raises(ValueError, match="unknown mixing kind 'gaussian'"):
        data.mixing_matrix("gaussian", 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown dtype 'float16'"):
        data.sample_inputs(4, 3, 0.5, np.random.default_rng(0), dtype="float16")


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError)])
def test_bad_seed_is_refused(seed, error):
    with pytest.raises(error, match="seed must be an integer >= 0"):
        data.random_streams(seed)
