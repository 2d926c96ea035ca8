"""Shared fixtures for the core tests: tiny configurations, hand-built weights, recorded optimiser calls."""

import numpy as np
import pytest


@pytest.fixture
def tiny_config():
    """A training config small enough for a few hundred steps in well under a second."""
    return dict(n=8, d_mlp=4, d=32, steps=60, batch_size=128, p=0.1, seed=3)


@pytest.fixture
def naive_params():
    """The naive model: neuron j reads feature j and writes output j, j < d_mlp (float64)."""

    def build(n=100, d_mlp=50):
        W_in = np.zeros((d_mlp, n))                                 # (d_mlp, n) = [I 0]
        W_in[:, :d_mlp] = np.eye(d_mlp)
        return {"W_in": W_in, "W_out": W_in.T.copy()}              # W_out (n, d_mlp) = [I; 0]

    return build


@pytest.fixture
def optimiser_calls(monkeypatch):
    """Every call of ``small_p.optimise_small_p`` in the test, as (args, kwargs, result); the calls still run."""
    from cc_numpy.analyses import small_p

    calls, optimise = [], small_p.optimise_small_p

    def recording(*args, **kwargs):
        found = optimise(*args, **kwargs)
        calls.append((args, kwargs, found))
        return found

    monkeypatch.setattr(small_p, "optimise_small_p", recording)
    return calls
