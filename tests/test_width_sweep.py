"""The orthonormal embedding (M = 0 exactly) and the residual width-sweep experiment, at tiny scale."""

import json

import numpy as np
import pytest

from cc_numpy.analyses import small_p
from cc_numpy.core import data, loss, mlp, residual
from cc_numpy.core.mixing import feature_basis_weights, residual_mixing_matrix
from cc_numpy.core.train import build_run, draw_batch, make_config, train
from cc_numpy.experiments import EXPERIMENTS, run_experiment
from cc_numpy.pipeline.claims import NAIVE, judge
from cc_numpy.pipeline.jobs import job_key
from cc_numpy.pipeline.scale import make_scale

N, D_MLP = 100, 50


def naive_weights(n=N, d_mlp=D_MLP):
    """Neuron j reads and writes feature j for j < d_mlp: W_in (d_mlp, n), W_out (n, d_mlp)."""
    W_in = np.eye(d_mlp, n)
    return W_in, W_in.T.copy()


# --- the orthonormal embedding ----------------------------------------------------------------------

@pytest.mark.parametrize("d", [100, 137, 1000])
def test_an_orthonormal_embedding_has_no_mixing(d):
    W_E = data.random_embedding(N, d, np.random.default_rng(d), kind="orthonormal")
    assert W_E.shape == (d, N)
    np.testing.assert_allclose(W_E.T @ W_E, np.eye(N), rtol=0, atol=1e-12)
    np.testing.assert_allclose(residual_mixing_matrix(W_E), 0.0, rtol=0, atol=1e-12)      # M = I − W_EᵀW_E = 0


def test_the_naive_weights_lose_one_twelfth_at_small_p_with_that_M():
    M = residual_mixing_matrix(data.random_embedding(N, 1000, np.random.default_rng(3), kind="orthonormal"))
    W_in, W_out = naive_weights()
    assert small_p.small_p_loss(W_in, W_out, M, 1.0) == pytest.approx(NAIVE, abs=1e-12)
    gaussian = residual_mixing_matrix(data.random_embedding(N, 1000, np.random.default_rng(3)))
    assert small_p.small_p_loss(W_in, W_out, gaussian, 1.0) > NAIVE + 0.02              # Gaussian W_E: 1/12 + ‖M‖²/300


def test_the_default_embedding_is_unchanged_and_both_kinds_use_one_draw():
    gaussian = data.random_embedding(N, 300, np.random.default_rng(5))
    raw = np.random.default_rng(5).standard_normal((300, N))
    np.testing.assert_array_equal(gaussian, raw / np.linalg.norm(raw, axis=0, keepdims=True))
    orthonormal = data.random_embedding(N, 300, np.random.default_rng(5), kind="orthonormal")
    np.testing.assert_allclose(np.linalg.qr(raw)[0] @ np.linalg.qr(raw)[0].T, orthonormal @ orthonormal.T, atol=1e-12)


def test_an_orthonormal_embedding_needs_d_at_least_n():
    with pytest.raises(ValueError, match="needs d ≥ n"):
        data.random_embedding(N, 99, np.random.default_rng(0), kind="orthonormal")
    with pytest.raises(ValueError, match="needs d ≥ n"):
        make_config(model="residual", d=50, embedding="orthonormal")
    with pytest.raises(ValueError, match="embedding"):
        make_config(embedding="unit")
    with pytest.raises(ValueError, match="residual model and to the embedding mixing kinds"):
        make_config(model="mlp", mixing="asymmetric", embedding="orthonormal")
    with pytest.raises(ValueError, match="embedding kinds only"):
        data.mixing_matrix("symmetric", N, np.random.default_rng(0), embedding="orthonormal")


def test_the_embedding_mixing_kind_honours_the_option():
    config = make_config(task="mixed", mixing="embedding", sigma=1.0, d=400, embedding="orthonormal", dtype="float64")
    _, M, _ = build_run(config)
    np.testing.assert_allclose(M, 0.0, atol=1e-12)


@pytest.mark.parametrize("engine", ["plain", "fast"])
def test_both_engines_build_the_orthonormal_embedding(engine):
    config = make_config(model="residual", d=200, embedding="orthonormal", steps=3, batch_size=256, engine=engine)
    W_E = train(config)["params"]["W_E"].astype(np.float64)
    expected = data.random_embedding(N, 200, data.random_streams(0)["matrix"], kind="orthonormal")
    np.testing.assert_allclose(W_E, expected, rtol=0, atol=1e-7)                         # float32 storage
    np.testing.assert_allclose(W_E.T @ W_E, np.eye(N), rtol=0, atol=1e-6)


def test_the_orthonormal_residual_model_is_the_mlp_on_clean_labels_in_its_feature_basis():
    """With W_EᵀW_E = I, ŷ = x + W̃_out ReLU(W̃_in x) on y = x + ReLU(x): the clean-label MLP's loss, step by step."""
    config = make_config(model="residual", d=150, embedding="orthonormal", steps=4, batch_size=512, p=0.05,
                         dtype="float64", engine="plain")
    trained = train(config)
    params, M, data_rng = build_run(config)
    assert M is None
    for step, recorded in enumerate(trained["history"][:1]):                              # the first batch, replayed
        batch = draw_batch(config, None, data_rng, np.float64)
        tilde = feature_basis_weights(params)
        clean, _ = loss.mse_loss(mlp.forward(tilde, batch["x"])[0], data.make_labels(batch["x"], "clean"))
        assert recorded == pytest.approx(clean, rel=1e-12)
    x = data.sample_inputs(512, N, 0.05, np.random.default_rng(9))
    residual_loss, _ = loss.mse_loss(residual.forward_literal(trained["params"], x)[0], data.make_labels(x, "residual"))
    clean_loss, _ = loss.mse_loss(mlp.forward(feature_basis_weights(trained["params"]), x)[0],
                                  data.make_labels(x, "clean"))
    assert residual_loss == pytest.approx(clean_loss, rel=1e-10)


# --- the residual model's exact p → 0 loss is the mixed task's with σM = I − W_EᵀW_E -----------------

def test_the_residual_small_p_loss_is_the_feature_basis_mlps_on_mixed_labels():
    """One active feature at ±1, every feature: L/p → (1/6n) Σ_i ‖error(+e_i)‖² + ‖error(−e_i)‖² (homogeneity)."""
    rng = np.random.default_rng(4)
    params = residual.init_params(N, 200, D_MLP, rng, rng)
    x = np.vstack([np.eye(N), -np.eye(N)])                                                 # (2n, n)
    error = residual.forward_literal(params, x)[0] - data.make_labels(x, "residual")
    direct = np.sum(error ** 2) / (6 * N)
    tilde = feature_basis_weights(params)
    closed = small_p.small_p_loss(tilde["W_in"], tilde["W_out"], residual_mixing_matrix(params["W_E"]), 1.0)
    assert closed == pytest.approx(direct, rel=1e-10)


def test_prediction_a_draws_the_residual_models_embedding():
    for seed, d in ((0, 150), (3, 1000)):
        res = make_config(model="residual", d=d, seed=seed, dtype="float64")
        mlp_config = make_config(task="mixed", mixing="embedding", sigma=1.0, d=d, seed=seed, dtype="float64")
        params, _, _ = build_run(res)
        _, M, _ = build_run(mlp_config)
        np.testing.assert_allclose(M, residual_mixing_matrix(params["W_E"]), rtol=0, atol=1e-14)


# --- the experiment ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def computed():
    return run_experiment("width_sweep", make_scale("test"), seeds=[0])


def test_the_experiment_runs_and_every_row_judges(computed, tmp_path):
    module = EXPERIMENTS["width_sweep"]
    numbers = json.loads(json.dumps(computed))
    assert numbers["widths"] == [100, 200] and numbers["orthonormal_widths"] == [100]
    for row in module.CLAIMS + module.CHECKS:
        for full_scale in (False, True):
            assert judge(row, numbers, full_scale)["verdict"] in ("✓", "✗", "needs paper scale")
    path = tmp_path / "width_sweep.png"
    module.plot(numbers, str(path))
    assert path.stat().st_size > 0
    lines = module.table(numbers)
    assert sum(line.startswith("| 100 |") for line in lines) == 2 and any(line.startswith("| 200 |") for line in lines)


def test_the_exact_checks_hold_at_any_scale(computed):
    checks = {row["statement"]: judge(row, computed, False)["verdict"] for row in EXPERIMENTS["width_sweep"].CHECKS
              if not row["needs_paper_scale"]}
    assert len(checks) == 1 and set(checks.values()) == {"✓"}, checks
    assert max(computed["orthonormal"]["max_abs_M"][0]) <= 1e-6          # M = 0 (float32 W_E)
    assert max(computed["residual"]["mlp_M_difference"][0]) <= 1e-6     # prediction (a) draws the same W_E
    spread = np.array(computed["residual"]["mixing_rms"][0]) * np.sqrt(computed["widths"])
    assert np.all(np.abs(spread - 1.0) <= 0.05)                          # off-diagonal spread of M is 1/√d
    optimum = np.array(computed["residual"]["optimum"][0])
    assert np.all(optimum >= np.array(computed["residual"]["joint_lower_bound"][0]) - 1e-12)
    assert computed["residual"]["sweep"][0][0] is None                  # 1/√100 = 0.1 lies beyond the σ grid
    assert computed["residual"]["sweep"][0][1] is not None              # 1/√200 ≈ 0.071 is interpolated


def test_the_jobs_share_trainings_with_mixing_types_and_the_sigma_sweep():
    from cc_numpy.experiments import width_sweep

    scale = make_scale("test", widths=[100, 1000, 10000])
    mine = {job_key(job) for job in EXPERIMENTS["width_sweep"].jobs(scale, [0])}
    mixing = {job_key(job) for job in EXPERIMENTS["mixing_types"].jobs(scale, [0])}
    sweep = {job_key(job) for job in EXPERIMENTS["sigma_sweep"].jobs(make_scale("test", sigma_points=41), [0])}
    assert len(mine & mixing) == 2                                      # the residual model and (a) at d = 1000
    scale = make_scale("test", widths=[100, 1000, 10000], sigma_points=41)
    needed = {job_key(job) for d in scale["widths"] for job in width_sweep.sweep_jobs(scale, 0, d)}
    assert needed and needed <= sweep
    assert width_sweep.bracket([0.0, 0.04, 0.08], 0.1) is None
    assert width_sweep.bracket([0.0, 0.04, 0.08], 0.04) == [1]
    assert width_sweep.bracket([0.0, 0.04, 0.08], 0.05) == [1, 2]
