"""Tests for cc_numpy.analyses.eigen (eigen-analysis of W_out W_in against the mixing matrix)."""

import numpy as np
import pytest

from cc_numpy.analyses.eigen import (
    eigen_alignment,
    eigen_summary,
    mixing_svd,
    product_vs_mixing_fit,
    projection_matrices,
    subspace_fractions,
    symmetric_eigenbasis,
)


def _rngs(seed, count):
    """Independent Generators from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _mixing(n, seed):
    """An asymmetric M with iid N(0, 1) entries."""
    (rng,) = _rngs(seed, 1)
    return rng.standard_normal((n, n))


def _projector_weights(E, k):
    """W_in = E[:, :k]ᵀ (k, n), W_out = E[:, :k] (n, k): W_out W_in projects onto the top k."""
    return E[:, :k].T.copy(), E[:, :k].copy()


# ---------------------------------------------------------------- bases

def test_symmetric_eigenbasis_sorted_orthonormal_reconstructs():
    n = 15
    M = _mixing(n, 0)
    eigenvalues, E = symmetric_eigenbasis(M)
    assert eigenvalues.shape == (n,) and E.shape == (n, n)
    assert np.all(np.diff(eigenvalues) <= 0)                    # descending
    np.testing.assert_allclose(E.T @ E, np.eye(n), atol=1e-12)
    S = (M + M.T) / 2
    np.testing.assert_allclose(E @ np.diag(eigenvalues) @ E.T, S, atol=1e-12)
    np.testing.assert_allclose(S @ E, E * eigenvalues, atol=1e-12)   # S E_k = λ_k E_k
    # sign convention: each column's largest-magnitude entry is positive
    largest = np.argmax(np.abs(E), axis=0)
    assert np.all(E[largest, np.arange(n)] > 0)


def test_symmetric_eigenbasis_same_for_M_and_its_transpose():
    M = _mixing(12, 1)
    values, E = symmetric_eigenbasis(M)
    values_t, E_t = symmetric_eigenbasis(M.T)
    np.testing.assert_allclose(values, values_t, atol=1e-12)
    np.testing.assert_allclose(E, E_t, atol=1e-10)


def test_mixing_svd_reconstructs_identity_plus_sigma_M():
    n, sigma = 10, 0.05
    M = _mixing(n, 2)
    s, U, Vt = mixing_svd(M, sigma)
    assert s.shape == (n,) and U.shape == (n, n) and Vt.shape == (n, n)
    assert np.all(np.diff(s) <= 0)
    np.testing.assert_allclose(U @ np.diag(s) @ Vt, np.eye(n) + sigma * M, atol=1e-12)
    s0, _, _ = mixing_svd(M, 0.0)
    np.testing.assert_allclose(s0, np.ones(n), atol=1e-12)


# ---------------------------------------------------------------- alignment

@pytest.mark.parametrize("k", [1, 4, 9])
def test_alignment_of_top_k_projector_is_one_then_zero(k):
    n = 12
    _, E = symmetric_eigenbasis(_mixing(n, 3))
    W_in, W_out = _projector_weights(E, k)
    cos = eigen_alignment(W_in, W_out, E)
    assert cos.shape == (n,)
    np.testing.assert_allclose(cos[:k], 1.0, atol=1e-12)
    np.testing.assert_array_equal(cos[k:], 0.0)                 # A E_j = 0 up to rounding → 0


def test_alignment_sign_and_scale():
    n = 8
    _, E = symmetric_eigenbasis(_mixing(n, 4))
    W_in, W_out = _projector_weights(E, 5)
    np.testing.assert_allclose(eigen_alignment(W_in, -3.0 * W_out, E)[:5], -1.0, atol=1e-12)
    # a map that sends E_1 to E_2 (orthogonal) has cos 0 there, though A E_1 ≠ 0
    W_in_swap, W_out_swap = E[:, [0]].T, E[:, [1]]
    cos = eigen_alignment(W_in_swap, W_out_swap, E)
    assert abs(cos[0]) < 1e-12


def test_alignment_of_generic_map_matches_definition():
    n, d_mlp = 10, 4
    rng_in, rng_out = _rngs(5, 2)
    W_in, W_out = rng_in.standard_normal((d_mlp, n)), rng_out.standard_normal((n, d_mlp))
    _, E = symmetric_eigenbasis(_mixing(n, 6))
    cos = eigen_alignment(W_in, W_out, E)
    A = W_out @ W_in
    for k in (0, 3, 9):
        image = A @ E[:, k]
        assert cos[k] == pytest.approx(E[:, k] @ image / np.linalg.norm(image), abs=1e-12)


# ---------------------------------------------------------------- subspace fractions and projections

def test_fractions_are_one_inside_the_top_k_subspace():
    n, k, d_mlp = 20, 6, 9
    rng_in, rng_out = _rngs(7, 2)
    _, E = symmetric_eigenbasis(_mixing(n, 8))
    W_in = rng_in.standard_normal((d_mlp, k)) @ E[:, :k].T      # rows in span(E_1 … E_k)
    W_out = E[:, :k] @ rng_out.standard_normal((k, d_mlp))      # columns in span(E_1 … E_k)
    f = subspace_fractions(W_in, W_out, E, k=k)
    assert f["input_fraction"].shape == (d_mlp,) and f["output_fraction"].shape == (d_mlp,)
    np.testing.assert_allclose(f["input_fraction"], 1.0, atol=1e-12)
    np.testing.assert_allclose(f["output_fraction"], 1.0, atol=1e-12)
    assert f["input_fraction_total"] == pytest.approx(1.0, abs=1e-12)
    assert f["output_fraction_total"] == pytest.approx(1.0, abs=1e-12)
    assert f["random_baseline"] == pytest.approx(k / n)
    # weights in the complement have no weight inside
    W_in_outside = rng_in.standard_normal((d_mlp, n - k)) @ E[:, k:].T   # rows in span(E_{k+1} … E_n)
    f_out = subspace_fractions(W_in_outside, W_out, E, k=k)
    np.testing.assert_allclose(f_out["input_fraction"], 0.0, atol=1e-12)


def test_fractions_of_random_weights_average_k_over_n():
    n, k, d_mlp = 40, 10, 400
    rng_in, rng_out = _rngs(9, 2)
    _, E = symmetric_eigenbasis(_mixing(n, 10))
    W_in, W_out = rng_in.standard_normal((d_mlp, n)), rng_out.standard_normal((n, d_mlp))
    f = subspace_fractions(W_in, W_out, E, k=k)
    # each fraction ~ Beta(k/2, (n−k)/2): mean k/n = 0.25, std of the mean over 400 ≈ 0.005
    assert np.mean(f["input_fraction"]) == pytest.approx(k / n, abs=0.03)
    assert np.mean(f["output_fraction"]) == pytest.approx(k / n, abs=0.03)
    assert f["input_fraction_total"] == pytest.approx(k / n, abs=0.03)
    assert np.all((f["input_fraction"] >= 0) & (f["input_fraction"] <= 1))
    full = subspace_fractions(W_in, W_out, E, k=n)
    np.testing.assert_allclose(full["input_fraction"], 1.0, atol=1e-12)


def test_zero_neuron_has_fraction_zero_and_does_not_break_totals():
    n, k = 6, 3
    _, E = symmetric_eigenbasis(_mixing(n, 11))
    W_in, W_out = _projector_weights(E, k)
    W_in[1], W_out[:, 1] = 0.0, 0.0
    f = subspace_fractions(W_in, W_out, E, k=k)
    assert f["input_fraction"][1] == 0.0 and f["output_fraction"][1] == 0.0
    assert f["input_fraction"][0] == pytest.approx(1.0) and f["input_fraction_total"] == pytest.approx(1.0)


def test_projection_matrices_are_coordinates_in_the_eigenbasis():
    n, d_mlp, k = 11, 4, 5
    rng_in, rng_out = _rngs(12, 2)
    W_in, W_out = rng_in.standard_normal((d_mlp, n)), rng_out.standard_normal((n, d_mlp))
    _, E = symmetric_eigenbasis(_mixing(n, 13))
    proj = projection_matrices(W_in, W_out, E)
    assert proj["input"].shape == (d_mlp, n) and proj["output"].shape == (n, d_mlp)
    np.testing.assert_allclose(proj["input"] @ E.T, W_in, atol=1e-12)     # W_in = (W_in E) Eᵀ
    np.testing.assert_allclose(E @ proj["output"], W_out, atol=1e-12)     # W_out = E (Eᵀ W_out)
    f = subspace_fractions(W_in, W_out, E, k=k)
    inside = np.sum(proj["input"][:, :k] ** 2, axis=1) / np.sum(W_in ** 2, axis=1)
    np.testing.assert_allclose(f["input_fraction"], inside, atol=1e-12)


# ---------------------------------------------------------------- fits

def test_fit_recovers_known_slopes_and_intercept():
    n, sigma = 30, 0.04
    a_off, a_diag, b = 1.9, 3.4, 0.6
    M = _mixing(n, 14)
    off = M - np.diag(np.diag(M))
    W_in = np.eye(n)                                            # d_mlp = n: any product is reachable
    W_out = a_off * sigma * off + np.diag(a_diag * sigma * np.diag(M) + b)
    fit = product_vs_mixing_fit(W_in, W_out, M, sigma)
    assert fit["offdiag"]["slope"] == pytest.approx(a_off, abs=1e-10)
    assert fit["offdiag"]["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert fit["offdiag"]["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["diag"]["slope"] == pytest.approx(a_diag, abs=1e-10)
    assert fit["diag"]["intercept"] == pytest.approx(b, abs=1e-12)
    assert fit["diag"]["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["offdiag_x"].shape == (n * (n - 1),) and fit["offdiag_y"].shape == (n * (n - 1),)
    np.testing.assert_allclose(fit["diag_x"], sigma * np.diag(M))
    np.testing.assert_allclose(fit["diag_y"], np.diag(W_out))


def test_fit_reads_entry_oi_against_M_oi_not_transposed():
    n, sigma = 25, 0.03
    M = _mixing(n, 15)
    W_in, W_out = np.eye(n), 2.0 * sigma * M
    assert product_vs_mixing_fit(W_in, W_out, M, sigma)["offdiag"]["r2"] == pytest.approx(1.0)
    assert product_vs_mixing_fit(W_in, W_out, M.T, sigma)["offdiag"]["r2"] < 0.5


def test_fit_with_constant_diagonal_has_undefined_slope():
    n, sigma = 6, 1.0
    M = _mixing(n, 16)
    np.fill_diagonal(M, 0.0)                                    # like the embedding-like M
    W_in, W_out = np.eye(n), 0.5 * M + 0.7 * np.eye(n)
    fit = product_vs_mixing_fit(W_in, W_out, M, sigma)
    assert np.isnan(fit["diag"]["slope"]) and np.isnan(fit["diag"]["r2"])
    assert fit["diag"]["intercept"] == pytest.approx(0.7)
    assert fit["offdiag"]["slope"] == pytest.approx(0.5)


# ---------------------------------------------------------------- summary

def test_summary_of_projector_model():
    n, k, sigma = 20, 8, 0.03
    M = _mixing(n, 17)
    _, E = symmetric_eigenbasis(M)
    W_in, W_out = _projector_weights(E, k)
    s = eigen_summary(W_in, W_out, M, sigma, k=k, head=6, tail_start=10)
    assert all(type(v) is float for v in s.values())
    assert s["cos_mean_head"] == pytest.approx(1.0, abs=1e-12)
    assert s["cos_max_tail"] == 0.0 and s["cos_mean_tail"] == 0.0
    assert s["input_fraction_total"] == pytest.approx(1.0) and s["output_fraction_total"] == pytest.approx(1.0)
    assert s["random_baseline"] == pytest.approx(k / n)
    fit = product_vs_mixing_fit(W_in, W_out, M, sigma)
    assert s["offdiag_slope"] == fit["offdiag"]["slope"] and s["diag_intercept"] == fit["diag"]["intercept"]
    # float32 weights are accepted and give the same numbers to float32 precision
    s32 = eigen_summary(W_in.astype(np.float32), W_out.astype(np.float32), M, sigma, k=k, head=6, tail_start=10)
    assert s32["cos_mean_head"] == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- bad input

def test_bad_inputs_raise_clear_errors():
    n, d_mlp = 6, 3
    M = _mixing(n, 18)
    _, E = symmetric_eigenbasis(M)
    W_in, W_out = _projector_weights(E, d_mlp)
    with pytest.raises(ValueError, match="M must be square"):
        symmetric_eigenbasis(np.ones((3, 4)))
    with pytest.raises(TypeError, match="M must be a numpy array"):
        symmetric_eigenbasis([[1.0, 0.0], [0.0, 1.0]])
    bad = M.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="M contains NaN"):
        mixing_svd(bad, 0.1)
    with pytest.raises(ValueError, match="sigma must be finite"):
        mixing_svd(M, np.inf)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        mixing_svd(M, "0.03")
    with pytest.raises(ValueError, match=r"W_out must have shape \(n, d_mlp\) = \(6, 3\)"):
        eigen_alignment(W_in, W_out.T, E)
    with pytest.raises(ValueError, match=r"E must have shape \(n, n\) = \(6, 6\)"):
        eigen_alignment(W_in, W_out, E[:5, :5])
    with pytest.raises(ValueError, match="E must have orthonormal columns"):
        subspace_fractions(W_in, W_out, 2.0 * E)
    with pytest.raises(ValueError, match="k must be between 1 and n = 6"):
        subspace_fractions(W_in, W_out, E, k=7)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        subspace_fractions(W_in, W_out, E, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        subspace_fractions(W_in, W_out, E, k=2.5)
    with pytest.raises(ValueError, match=r"M must have shape \(n, n\) = \(6, 6\)"):
        product_vs_mixing_fit(W_in, W_out, M[:4, :4], 0.03)
    with pytest.raises(ValueError, match="n >= 2"):
        product_vs_mixing_fit(np.ones((2, 1)), np.ones((1, 2)), np.ones((1, 1)), 0.03)
    with pytest.raises(ValueError, match="head must be between 1 and n = 6"):
        eigen_summary(W_in, W_out, M, 0.03, k=3, head=7, tail_start=4)
    with pytest.raises(ValueError, match="tail_start must be between 0 and n − 1 = 5"):
        eigen_summary(W_in, W_out, M, 0.03, k=3, head=2, tail_start=6)
    with pytest.raises(TypeError, match="W_in must hold real numbers"):
        projection_matrices(W_in.astype(complex), W_out, E)
