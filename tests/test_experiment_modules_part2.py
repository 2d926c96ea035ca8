"""Seeds, fine-tuning, sparsity regimes, naive + offset and low rank at the test scale.

Each module's numbers are plain JSON, every claim and check judges without
error, and the plot is written. A few readings are also fed synthetic numbers.
"""

import json

import pytest

from cc_numpy.experiments import EXPERIMENTS, run_experiment
from cc_numpy.pipeline.claims import NAIVE, judge
from cc_numpy.pipeline.scale import make_scale

NAMES = ("seeds", "finetune", "sparsity_regimes", "naive_offset", "low_rank")


@pytest.fixture(scope="module")
def computed():
    scale = make_scale("test")
    return {name: run_experiment(name, scale, seeds=[0]) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_numbers_are_json_and_every_row_judges(name, computed, tmp_path):
    module, numbers = EXPERIMENTS[name], computed[name]
    json.loads(json.dumps(numbers))
    for row in module.CLAIMS + module.CHECKS:
        for full_scale in (False, True):
            assert judge(row, numbers, full_scale)["verdict"] in ("✓", "✗", "needs paper scale")
    path = tmp_path / f"{name}.png"
    module.plot(numbers, str(path))
    assert path.stat().st_size > 0


def test_seeds_trains_at_least_three_seeds(computed):
    assert computed["seeds"]["seeds"] == [0, 1, 2]
    assert len(computed["seeds"]["residual CC model"]["loss_over_p"]) == 3


def test_the_closed_form_offset_claims_hold_at_any_scale(computed):
    module = EXPERIMENTS["naive_offset"]
    for row in module.CLAIMS:
        assert judge(row, computed["naive_offset"], full_scale=False)["verdict"] == "✓", row["statement"]


def test_the_low_rank_table_has_a_row_per_rank(computed):
    numbers = computed["low_rank"]
    lines = EXPERIMENTS["low_rank"].table(numbers)
    assert sum(line.startswith(f"| {rank} |") for line in lines for rank in numbers["rank"]) == len(numbers["rank"])


def _regimes(curves):
    """Synthetic sparsity-regime numbers: one seed, models trained at 0.001 and 0.01 with the given curves."""
    ps = [0.001, 0.01, 0.1, 1.0]
    models = [{"train_p": p, "p": ps, "loss_over_p": [curve], "stderr": [[1e-4] * 4],
               "own_loss_over_p": [0.07], "own_stderr": [1e-4]} for p, curve in zip((0.001, 0.01), curves)]
    return {"seeds": [0], "models": models}


def test_the_crossing_claims_read_the_sparse_models():
    module = EXPERIMENTS["sparsity_regimes"]
    earliest = next(r for r in module.CLAIMS if "earliest" in r["statement"])
    latest = next(r for r in module.CLAIMS if "latest" in r["statement"])
    # crossings at exp(mid-log) of 0.01–0.1 (≈ 0.032) and of 0.1–1 (≈ 0.32)
    numbers = _regimes([[0.07, 0.07, 0.07 + 2 * (NAIVE - 0.07), 0.1],
                        [0.07, 0.07, 0.07, 0.07 + 2 * (NAIVE - 0.07)]])
    assert judge(earliest, numbers, True)["verdict"] == "✓"
    assert judge(latest, numbers, True)["verdict"] == "✗"
    never = _regimes([[0.07] * 4, [0.07, 0.07, 0.07 + 2 * (NAIVE - 0.07), 0.1]])
    assert judge(earliest, never, True)["verdict"] == "✗"               # a model that never crosses fails


def test_the_offset_monte_carlo_check_flags_a_bias():
    module = EXPERIMENTS["naive_offset"]
    row = next(r for r in module.CHECKS if "p = 1:" in r["statement"])

    def numbers(measured):
        return {"monte_carlo": {"p": [0.01, 0.1, 1.0], "analytic": [0.08, 0.08, 0.053],
                                "loss_over_p": [[0.08, 0.08, measured]], "stderr": [[1e-3, 1e-3, 1e-4]]}}

    assert judge(row, numbers(0.053 + 3.9e-4), True)["verdict"] == "✓"
    assert judge(row, numbers(0.053 + 4.1e-4), True)["verdict"] == "✗"
    assert judge(row, numbers(0.053 - 4.1e-4), True)["verdict"] == "✗"
