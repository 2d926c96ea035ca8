"""Tests for cc_numpy.core.train: configs, determinism, random streams, learning, σ, failures, checkpoints."""

import numpy as np
import pytest

from cc_numpy.core import data, residual, train
from cc_numpy.core.storage import CorruptFileError, load_npz


class Interrupt(Exception):
    """Raised from a progress callback to simulate an interrupted run."""


def assert_same_result(a, b):
    assert set(a["params"]) == set(b["params"])
    for key in a["params"]:
        np.testing.assert_array_equal(a["params"][key], b["params"][key])
        assert a["params"][key].dtype == b["params"][key].dtype
    np.testing.assert_array_equal(a["history"], b["history"])
    if a["sigma_history"] is None:
        assert b["sigma_history"] is None
    else:
        np.testing.assert_array_equal(a["sigma_history"], b["sigma_history"])
    assert a["sigma"] == b["sigma"]


# ---------------------------------------------------------------- configs

def test_default_config_is_the_papers_settings():
    config = train.make_config()
    assert (config["lr"], config["weight_decay"], config["batch_size"], config["steps"]) == (3e-3, 0.01, 2048, 10_000)
    assert (config["n"], config["d"], config["d_mlp"], config["p"]) == (100, 1000, 50, 0.01)
    assert config["model"] == "mlp" and config["task"] == "mixed" and config["sigma_init"] == 0.01
    assert train.make_config(model="residual")["task"] == "residual"
    assert train.make_config(model="residual", task="clean")["task"] == "clean"
    assert config["engine"] == "fast" and train.make_config(engine="plain")["engine"] == "plain"


@pytest.mark.parametrize("overrides, error, message", [
    (dict(learning_rate=1e-3), ValueError, r"unknown config keys \['learning_rate'\]"),
    (dict(model="transformer"), ValueError, "unknown model 'transformer'"),
    (dict(task="relu"), ValueError, "unknown task 'relu'"),
    (dict(mixing="gaussian"), ValueError, "unknown mixing kind 'gaussian'"),
    (dict(p=0), ValueError, "p must be in"),
    (dict(p=1.5), ValueError, "p must be in"),
    (dict(p=float("nan")), ValueError, "p must be finite"),
    (dict(steps=0), ValueError, "steps must be an integer >= 1"),
    (dict(batch_size=-5), ValueError, "batch_size must be an integer >= 1"),
    (dict(d_mlp=2.5), TypeError, "d_mlp must be an integer"),
    (dict(seed=-1), ValueError, "seed must be an integer >= 0"),
    (dict(lr=0.0), ValueError, "lr must be in"),
    (dict(weight_decay=-1.0), ValueError, "weight_decay must be in"),
    (dict(sigma=float("inf")), ValueError, "sigma must be finite"),
    (dict(learn_sigma="yes"), TypeError, "learn_sigma must be True or False"),
    (dict(learn_sigma=True, task="clean"), ValueError, "learn_sigma needs task='mixed'"),
    (dict(rank=11, n=10), ValueError, "rank must be between 1 and n = 10"),
    (dict(dtype="float16"), ValueError, "unknown dtype 'float16'"),
    (dict(engine="torch"), ValueError, "unknown engine 'torch'"),
])
def test_bad_configs_are_refused(overrides, error, message):
    with pytest.raises(error, match=message):
        train.make_config(**overrides)
    with pytest.raises(error, match=message):
        train.train(overrides)


# ---------------------------------------------------------------- determinism and random streams

@pytest.mark.parametrize("extra", [dict(), dict(p=0.03), dict(model="residual"),
                                   dict(learn_sigma=True, mixing="symmetric"), dict(engine="plain"),
                                   dict(engine="plain", model="residual")])
def test_same_config_gives_bit_identical_results(tiny_config, extra):
    config = dict(tiny_config, **extra)
    first, second = train.train(config), train.train(config)
    assert_same_result(first, second)


def test_different_seeds_give_different_results(tiny_config):
    a = train.train(dict(tiny_config, seed=1))
    b = train.train(dict(tiny_config, seed=2))
    assert not np.array_equal(a["params"]["W_in"], b["params"]["W_in"])
    assert not np.array_equal(a["M"], b["M"])
    assert not np.array_equal(a["history"], b["history"])


def test_M_depends_only_on_the_seed(tiny_config):
    base = train.train(dict(tiny_config, sigma=0.01))
    other_sigma = train.train(dict(tiny_config, sigma=0.05))
    np.testing.assert_array_equal(base["M"], other_sigma["M"])
    assert not np.array_equal(base["params"]["W_in"], other_sigma["params"]["W_in"])   # σ did matter
    # Nor on p, the step count, the width or the learning rate.
    for change in (dict(p=0.3), dict(steps=5), dict(d_mlp=2), dict(lr=1e-2), dict(learn_sigma=True)):
        _, M, _ = train.build_run(train.make_config(**dict(tiny_config, **change)))
        np.testing.assert_array_equal(M, base["M"])
    # It is the matrix stream of the seed.
    expected = data.mixing_matrix("asymmetric", tiny_config["n"], data.random_streams(tiny_config["seed"])["matrix"])
    np.testing.assert_array_equal(base["M"], expected)


def test_initial_weights_and_batches_do_not_depend_on_the_mixing(tiny_config):
    config_a = train.make_config(**dict(tiny_config, mixing="asymmetric"))
    config_b = train.make_config(**dict(tiny_config, mixing="lowrank", rank=2, sigma=0.07))
    params_a, M_a, rng_a = train.build_run(config_a)
    params_b, M_b, rng_b = train.build_run(config_b)
    assert not np.array_equal(M_a, M_b)
    for key in ("W_in", "W_out"):
        np.testing.assert_array_equal(params_a[key], params_b[key])
    batch_a = train.draw_batch(config_a, M_a, rng_a, np.float32)
    batch_b = train.draw_batch(config_b, M_b, rng_b, np.float32)
    np.testing.assert_array_equal(batch_a["x"], batch_b["x"])


def test_given_M_is_used(tiny_config):
    """Mixed labels with M = 0 are the clean labels: same draws, same arrays bit for bit."""
    n = tiny_config["n"]
    zero_mixing = train.train(dict(tiny_config, task="mixed"), M=np.zeros((n, n)))
    clean = train.train(dict(tiny_config, task="clean"))
    assert_same_result(dict(zero_mixing, sigma=0.0), clean)
    np.testing.assert_array_equal(zero_mixing["M"], np.zeros((n, n)))
    drawn = train.train(dict(tiny_config, task="mixed"))
    assert not np.array_equal(drawn["history"], clean["history"])
    with pytest.raises(ValueError, match=r"M must have shape \(8, 8\)"):
        train.train(tiny_config, M=np.zeros((n, n + 1)))


def test_residual_model_keeps_W_E_fixed(tiny_config):
    config = train.make_config(**dict(tiny_config, model="residual"))
    initial, M, _ = train.build_run(config)
    assert M is None
    result = train.train(config)
    np.testing.assert_array_equal(result["params"]["W_E"], initial["W_E"])
    assert not np.array_equal(result["params"]["W_in"], initial["W_in"])
    assert result["M"] is None and result["sigma"] == 0.0


# ---------------------------------------------------------------- learning

@pytest.mark.parametrize("model, task", [("mlp", "clean"), ("mlp", "mixed"), ("residual", "residual")])
def test_training_decreases_the_loss(model, task):
    config = dict(model=model, task=task, n=8, d_mlp=4, d=32, steps=200, batch_size=256, p=0.1, seed=0)
    result = train.train(config)
    history = result["history"]
    assert history.shape == (200,) and np.all(np.isfinite(history)) and np.all(history > 0)
    assert history[-20:].mean() < 0.6 * history[:20].mean()
    assert result["params"]["W_in"].dtype == np.float32          # the default training dtype
    assert result["steps_per_second"] > 0 and result["seconds"] >= 0


def test_learned_sigma_moves_and_is_recorded(tiny_config):
    config = dict(tiny_config, learn_sigma=True, sigma_init=0.01, steps=100)
    result = train.train(config)
    sigma_history = result["sigma_history"]
    assert sigma_history.shape == (100,)
    assert sigma_history[0] == pytest.approx(0.01, rel=1e-6)      # σ before the first step
    assert np.all(np.diff(sigma_history) != 0)                    # σ is updated every step
    assert abs(sigma_history[-1] - 0.01) > 1e-4
    assert result["sigma"] == abs(float(result["params"]["sigma"]))
    assert result["params"]["sigma"].shape == ()
    assert train.train(tiny_config)["sigma_history"] is None


def test_learned_sigma_from_a_negative_start_uses_its_magnitude(tiny_config):
    """Labels use |σ|: σ and −σ see the same labels, so the weights train identically at first step."""
    plus = train.train(dict(tiny_config, learn_sigma=True, sigma_init=0.02, steps=1))
    minus = train.train(dict(tiny_config, learn_sigma=True, sigma_init=-0.02, steps=1))
    np.testing.assert_array_equal(plus["history"], minus["history"])
    np.testing.assert_array_equal(plus["params"]["W_in"], minus["params"]["W_in"])
    assert float(plus["params"]["sigma"]) == pytest.approx(-float(minus["params"]["sigma"]), rel=1e-6)


def test_init_params_are_the_starting_point(tiny_config):
    start = train.train(tiny_config)["params"]
    config = dict(tiny_config, lr=1e-9, weight_decay=0.0, steps=3)
    result = train.train(config, init_params=start)
    for key in ("W_in", "W_out"):
        np.testing.assert_allclose(result["params"][key], start[key], atol=1e-7)
        assert result["params"][key] is not start[key]
    fresh = train.train(config)
    assert np.max(np.abs(fresh["params"]["W_in"] - start["W_in"])) > 1e-2


def test_init_params_with_bad_shapes_or_values_are_refused(tiny_config):
    params = train.train(dict(tiny_config, steps=1))["params"]
    with pytest.raises(ValueError, match=r"init_params\['W_in'\] has shape \(4, 7\)"):
        train.train(tiny_config, init_params={"W_in": params["W_in"][:, :7]})
    bad = params["W_out"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="W_out contains NaN"):
        train.train(tiny_config, init_params={"W_out": bad})


def test_progress_is_reported_with_step_count_and_loss_over_p(tiny_config):
    calls = []
    result = train.train(dict(tiny_config, steps=25), progress=lambda *args: calls.append(args), progress_every=10)
    assert [c[0] for c in calls] == [10, 20, 25]
    assert all(c[1] == 25 for c in calls)
    assert all(np.isfinite(c[2]) and c[2] > 0 and c[3] > 0 for c in calls)
    # The running loss is reported as L/p: the same order as the last losses over p.
    last = result["history"][-1] / tiny_config["p"]
    assert 0.2 * last < calls[-1][2] < 5 * last


# ---------------------------------------------------------------- failures

def test_huge_learning_rate_raises_non_finite_loss_error(tiny_config):
    with pytest.raises(train.NonFiniteLossError, match=r"the loss became (inf|nan) at step \d+.*lr"):
        train.train(dict(tiny_config, lr=1e6, dtype="float32"))


def test_huge_initial_weights_raise_non_finite_loss_error_at_step_zero(tiny_config):
    n, d_mlp = tiny_config["n"], tiny_config["d_mlp"]
    huge = {"W_in": np.full((d_mlp, n), 1e20), "W_out": np.full((n, d_mlp), 1e20)}
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(train.NonFiniteLossError, match="at step 0"):
        train.train(dict(tiny_config, task="clean", p=1.0), init_params=huge)
    assert issubclass(train.NonFiniteLossError, FloatingPointError)


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("extra", [dict(learn_sigma=True), dict(model="residual"), dict(p=0.03),
                                   dict(engine="plain", learn_sigma=True), dict(engine="plain", model="residual")])
def test_interrupted_run_resumes_from_its_checkpoint_bit_identically(tmp_path, tiny_config, extra):
    config = dict(tiny_config, steps=40, **extra)
    uninterrupted = train.train(config)
    path = tmp_path / "checkpoint.npz"

    def stop_at_25(step, steps, loss_over_p, rate):
        if step == 25:
            raise Interrupt

    with pytest.raises(Interrupt):
        train.train(config, progress=stop_at_25, progress_every=1, checkpoint_path=path, checkpoint_every=10)
    saved = load_npz(path)
    assert int(saved["step"]) == 20                              # the last checkpoint before the interruption
    np.testing.assert_array_equal(saved["history"][20:], 0.0)
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())

    steps_seen = []
    resumed = train.train(config, progress=lambda step, *rest: steps_seen.append(step), progress_every=1,
                          checkpoint_path=path, checkpoint_every=10)
    assert steps_seen[0] == 21 and steps_seen[-1] == 40          # it really started from the checkpoint
    assert_same_result(resumed, uninterrupted)


def test_checkpoint_of_another_config_is_refused(tmp_path, tiny_config):
    path = tmp_path / "checkpoint.npz"

    def stop(step, *rest):
        raise Interrupt

    with pytest.raises(Interrupt):
        train.train(dict(tiny_config, steps=30), progress=stop, progress_every=15, checkpoint_path=path,
                    checkpoint_every=5)
    assert path.exists()
    with pytest.raises(ValueError, match="belongs to another config"):
        train.train(dict(tiny_config, steps=30, lr=1e-2), checkpoint_path=path, checkpoint_every=5)
    with pytest.raises(ValueError, match="belongs to another config"):
        train.train(dict(tiny_config, steps=30, seed=tiny_config["seed"] + 1), checkpoint_path=path)


def test_corrupt_checkpoint_is_refused(tmp_path, tiny_config):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"this is not an npz file")
    with pytest.raises(CorruptFileError, match="checkpoint.npz"):
        train.train(tiny_config, checkpoint_path=path)


def test_no_checkpoint_is_written_without_a_path_or_after_the_last_step(tmp_path, tiny_config):
    path = tmp_path / "checkpoint.npz"
    train.train(dict(tiny_config, steps=10), checkpoint_path=path, checkpoint_every=10)
    assert not path.exists()                                     # only written while steps remain
    train.train(dict(tiny_config, steps=10), checkpoint_path=path, checkpoint_every=4)
    assert int(load_npz(path)["step"]) == 8


def test_residual_train_step_equals_literal_model(tiny_config):
    """The plain loop's feature-basis residual path gives the literal model's loss on a batch."""
    config = train.make_config(**dict(tiny_config, model="residual", dtype="float64"))
    params, M, data_rng = train.build_run(config)
    batch = train.draw_batch(config, M, data_rng, np.float64)
    batch_loss, _ = train.train_step("residual", params, batch, 0.0, False,
                                     residual.gram_matrix(params["W_E"]))
    x = batch["x"]                                               # (B, n), all-zero rows included
    y_hat, _ = residual.forward_literal(params, x)
    expected = np.mean((y_hat - data.make_labels(x, "residual")) ** 2)
    assert batch_loss == pytest.approx(expected, rel=1e-12)


def test_a_negative_fixed_sigma_is_reported_as_the_scale_the_labels_use(tiny_config):
    negative = train.train(dict(tiny_config, sigma=-0.03))
    positive = train.train(dict(tiny_config, sigma=0.03))
    assert negative["sigma"] == 0.03                              # the labels are ReLU(x) + |σ| M x
    assert np.array_equal(negative["history"], positive["history"])


def test_learning_sigma_from_zero_is_refused(tiny_config):
    with pytest.raises(ValueError, match="sigma_init must be non-zero"):
        train.make_config(**dict(tiny_config, learn_sigma=True, sigma_init=0.0))
