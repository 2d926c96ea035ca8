"""Beyond the paper: the best model built from M alone and the phase diagram of the gain, at the test scale.

Each module's jobs, numbers (a JSON round trip), plot, table and checks work end to end;
results are looked up by job; the trainings shared with the σ sweep are the same job keys;
the grids are what the docstrings say; the readings are fed synthetic numbers where a
verdict must flip.
"""

import json

import numpy as np
import pytest

from cc_numpy.experiments import EXPERIMENTS, Results, best_from_m, phase_diagram, run_experiment, sigma_sweep
from cc_numpy.experiments.snmf_sweep import snmf_sigmas
from cc_numpy.pipeline.claims import NAIVE, judge
from cc_numpy.pipeline.jobs import MAX_GROUP, group_key, job_key, run_jobs
from cc_numpy.pipeline.scale import make_scale, seeds as scale_seeds

NAMES = ("best_from_m", "phase_diagram")


@pytest.fixture(scope="module")
def test_scale():
    return make_scale("test")


@pytest.fixture(scope="module")
def computed(test_scale):
    return {name: run_experiment(name, test_scale, seeds=[0]) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_numbers_round_trip_and_every_check_judges(name, computed, tmp_path):
    module, numbers = EXPERIMENTS[name], computed[name]
    assert json.loads(json.dumps(numbers)) == numbers
    assert module.CLAIMS == [] and module.CHECKS
    for row in module.CHECKS:
        for full_scale in (False, True):
            assert judge(row, numbers, full_scale)["verdict"] in ("✓", "✗", "needs paper scale")
    path = tmp_path / f"{name}.png"
    module.plot(numbers, str(path))
    assert path.stat().st_size > 0
    lines = module.table(numbers)
    assert lines[0].startswith("## ") and all(isinstance(line, str) for line in lines)


def test_registered_in_order():
    names = list(EXPERIMENTS)
    assert EXPERIMENTS["best_from_m"].ORDER == 110 and EXPERIMENTS["phase_diagram"].ORDER == 120
    assert names.index("best_from_m") < names.index("phase_diagram")


def test_best_from_m_shares_the_sigma_sweeps_trainings(test_scale):
    mine = {job_key(j) for j in best_from_m.jobs(test_scale, [0, 1])}
    sweep = [j for j in sigma_sweep.jobs(test_scale, [0, 1]) if j["config"]["sigma"] <= test_scale["snmf_sigma_max"]]
    assert sweep and {job_key(j) for j in sweep} <= mine
    snmf = {job_key(j) for j in EXPERIMENTS["snmf_sweep"].jobs(test_scale, [0, 1])}
    assert snmf <= mine


def test_best_from_m_numbers_are_looked_up_by_job(test_scale):
    """Results handed over in reverse order give the same numbers: lookup is by job, never by position."""
    jobs = best_from_m.jobs(test_scale, [0])
    results = run_jobs(jobs)
    forward = best_from_m.numbers(Results({job_key(j): r for j, r in zip(jobs, results)}), test_scale, [0])
    backward = best_from_m.numbers(Results({job_key(j): r for j, r in reversed(list(zip(jobs, results)))}),
                                   test_scale, [0])
    assert forward == backward


def test_best_from_m_grids_and_shapes(computed, test_scale):
    numbers = computed["best_from_m"]
    assert numbers["sigma"] == snmf_sigmas(test_scale)
    assert numbers["optimum_sigma"] == numbers["sigma"][::test_scale["best_sigma_stride"]]
    for kind in ("asymmetric", "symmetric"):
        data = numbers[kind]
        assert np.shape(data["snmf_ours"]) == (1, len(numbers["sigma"]))
        assert np.shape(data["optimum"]) == (1, len(numbers["optimum_sigma"]))
        # the bound is a floor for every optimum, and σ = 0 (clean labels) is exactly 1/12
        assert np.all(np.asarray(data["joint_bound"])[:, 0] == pytest.approx(NAIVE))
    assert numbers["symmetric"]["snmf_authors"] == numbers["symmetric"]["snmf_ours"]     # one target for M = Mᵀ


def test_best_from_m_optimum_continues_along_sigma(test_scale, optimiser_calls):
    """The optimum at each σ starts from the optimum at the σ before it; the first σ from random starts."""
    jobs = best_from_m.jobs(test_scale, [0])
    results = Results({job_key(j): r for j, r in zip(jobs, run_jobs(jobs))})
    best_from_m.analyse(results, test_scale, 0, "asymmetric")
    calls = [(kwargs.get("warm_start"), found) for _, kwargs, found in optimiser_calls]
    assert len(calls) == len(best_from_m.optimum_sigmas(test_scale)) >= 2
    assert calls[0][0] is None
    for (start, _), (_, before) in zip(calls[1:], calls[:-1]):
        assert start[0] is before["W_in"] and start[1] is before["W_out"]


def test_best_from_m_paper_scale_plan():
    paper = make_scale("paper")
    sigmas, chosen = snmf_sigmas(paper), best_from_m.optimum_sigmas(paper)
    assert len(sigmas) == 21 and len(chosen) == 11 and chosen[-1] == sigmas[-1]
    small = best_from_m.small_p_job(paper, 0, "asymmetric", chosen[3])
    assert small["config"]["p"] == 0.001 and small["config"]["steps"] == 105_033      # 10 000 / (1 − 0.999¹⁰⁰)
    # every small-p training of a seed (both kinds, every σ) shares one batch stream
    group = {group_key(j) for j in best_from_m.jobs(paper, [0]) if j["config"]["p"] == 0.001}
    assert len(group) == 1


def test_phase_grids():
    paper, quick, test = (make_scale(name) for name in ("paper", "quick", "test"))
    ps = phase_diagram.phase_ps(paper)
    assert len(ps) == 10 and ps[0] == 0.001 and ps[3] == 0.01 and ps[-1] == 1.0
    assert phase_diagram.phase_ps(quick) == [0.001, 0.01, 0.1, 1.0]
    assert len(phase_diagram.phase_sigmas(paper)) >= 15 and phase_diagram.phase_sigmas(paper)[-1] == 0.08
    jobs = phase_diagram.jobs(paper, scale_seeds(paper))
    assert len(jobs) == 15 * 10 * 2 * paper["phase_seeds"] == len({job_key(j) for j in jobs})
    by_stream = {}
    for j in jobs:
        by_stream.setdefault(group_key(j), []).append(j)
    assert len(by_stream) == 10 * paper["phase_seeds"]               # one batched pass per (seed, p)
    assert max(len(members) for members in by_stream.values()) <= MAX_GROUP
    assert len(phase_diagram.jobs(test, [0])) == 2 * 2 * 2


def test_phase_numbers_shapes(computed, test_scale):
    numbers = computed["phase_diagram"]
    shape = (1, test_scale["phase_p_points"], test_scale["phase_sigma_points"])
    for kind in phase_diagram.KINDS:
        assert np.shape(numbers[kind]["gain"]) == shape
        assert np.allclose(np.asarray(numbers[kind]["gain"]), NAIVE - np.asarray(numbers[kind]["loss_over_p"]))


def test_contour_p():
    sigmas, ps = [0.0, 0.02, 0.04], [0.001, 0.01, 0.1, 1.0]
    gain = np.array([[0.0, 0.02, 0.02], [0.0, 0.01, 0.01], [0.0, -0.01, -0.01], [0.0, -0.02, 0.01]])   # (p, σ)
    assert phase_diagram.contour_p(sigmas, ps, gain) == pytest.approx(10 ** -1.5)     # halfway in log p
    assert phase_diagram.contour_p(sigmas, ps, np.abs(gain) + 1e-3) is None           # never turns ≤ 0
    assert phase_diagram.contour_p(sigmas, ps, -np.abs(gain) - 1e-3) is None          # no gain to end


def _synthetic_phase(gain_clean_sparse, stderr=1e-4):
    """Phase numbers on a 2 × 2 grid (p = 0.01, 1; σ = 0, 0.08) with a chosen clean gain at p = 0.01."""
    gain = [[[gain_clean_sparse, 0.0], [0.03, -0.1]]]
    data = {"gain": gain, "stderr": [[[stderr] * 2] * 2], "loss_over_p": (NAIVE - np.array(gain)).tolist(),
            "contour_p": [None]}
    return {"sigma": [0.0, 0.08], "p": [0.01, 1.0], "seeds": [0], "asymmetric": data, "symmetric": data}


def test_the_clean_sparse_check_flags_a_gain():
    row = phase_diagram.CHECKS[0]
    assert judge(row, _synthetic_phase(1.9e-4), True)["verdict"] == "✓"
    assert judge(row, _synthetic_phase(2.1e-4), True)["verdict"] == "✗"
    dense = next(r for r in phase_diagram.CHECKS if "p = 1: the dense clean" in r["statement"])
    assert judge(dense, _synthetic_phase(0.0), True)["verdict"] == "✓"          # 0.03 ≈ 1/12 − 0.0531


def test_the_optimum_check_flags_an_optimum_above_the_trained_model():
    row = best_from_m.CHECKS[0]
    kind = "symmetric" if "symmetric M" in row["statement"] else "asymmetric"
    numbers = {"sigma": [0.0, 0.02, 0.04], "optimum_sigma": [0.0, 0.04], "seeds": [0],
               kind: {"optimum": [[NAIVE, 0.07]], "small_trained": [[NAIVE + 1e-4, 0.0705]]}}
    assert judge(row, numbers, True)["verdict"] == "✓"
    numbers[kind]["optimum"] = [[NAIVE, 0.071]]
    assert judge(row, numbers, True)["verdict"] == "✗"
