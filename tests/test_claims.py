"""The judge of REPORT.md: every rule turns ✓ into ✗ just outside its tolerance, and readings are honest."""

import math

import numpy as np
import pytest

from cc_numpy.experiments import EXPERIMENTS
from cc_numpy.pipeline import claims
from cc_numpy.pipeline.claims import judge, reading

ROWS = [(name, row) for name, module in EXPERIMENTS.items() for row in module.CLAIMS + module.CHECKS]


def _with_value(row, value):
    """The row with its reading replaced by one seed at ``value``."""
    return dict(row, read=lambda numbers: reading([value]))


@pytest.mark.parametrize("name, row", ROWS, ids=[f"{n}: {r['statement'][:60]}" for n, r in ROWS])
def test_each_rule_flips_just_outside_its_bounds(name, row):
    rule = row["rule"]
    assert rule["low"] < rule["high"], "a rule must leave room for a value"
    finite = [bound for bound in (rule["low"], rule["high"]) if math.isfinite(bound)]
    assert finite, "a rule with no finite bound cannot fail"
    width = (rule["high"] - rule["low"]) if len(finite) == 2 else max(abs(finite[0]), 1e-3)
    step = 1e-3 * width
    for bound, inward in ((rule["low"], +1), (rule["high"], -1)):
        if math.isfinite(bound):
            assert judge(_with_value(row, bound + inward * step), {}, True)["verdict"] == "✓"
            assert judge(_with_value(row, bound - inward * step), {}, True)["verdict"] == "✗"


@pytest.mark.parametrize("name, row", ROWS, ids=[f"{n}: {r['statement'][:60]}" for n, r in ROWS])
def test_a_missing_value_never_passes(name, row):
    assert judge(_with_value(row, None), {}, True)["verdict"] == "✗"
    assert judge(_with_value(row, float("nan")), {}, True)["verdict"] == "✗"


def test_claims_cite_the_paper_and_checks_never_say_paper():
    for name, module in EXPERIMENTS.items():
        for row in module.CLAIMS:
            assert claims.PAPER_ID in row["source"], f"{name}: {row['statement']} has no source in the paper"
        for row in module.CHECKS:
            assert "paper" not in row and "source" not in row, f"{name}: a check presented as the paper's"


def test_no_statement_appears_twice():
    statements = [row["statement"] for _, row in ROWS]
    assert len(statements) == len(set(statements))


def test_reduced_scale_shows_paper_scale_claims_without_judging_them():
    row = claims.claim("x", "1", claims.PAPER_ID, lambda n: reading([5.0]), claims.within(1.0))
    assert judge(row, {}, full_scale=False)["verdict"] == "needs paper scale"
    assert judge(row, {}, full_scale=True)["verdict"] == "✗"
    quick = dict(row, needs_paper_scale=False)
    assert judge(quick, {}, full_scale=False)["verdict"] == "✗"


def test_a_reading_is_the_seed_mean_with_the_spread_across_seeds():
    value = reading([0.064, 0.066, 0.065], mc=[1e-4, 2e-4, 1.5e-4])
    assert claims.mean_of(value) == pytest.approx(0.065)
    assert claims.spread_of(value) == pytest.approx(np.std([0.064, 0.066, 0.065], ddof=1))
    assert value["mc"] == pytest.approx(2e-4)
    assert claims.spread_of(reading([0.065])) is None
    assert claims.mean_of(reading([0.06, None])) is None            # a seed without a crossing is no crossing
    assert "3 seeds" in claims.describe(value)


def test_the_sigma_sweep_minimum_claim_reads_the_numbers():
    """Synthetic σ-sweep numbers just inside and just outside the paper's 0.065 ± 0.003 for the minimum."""
    module = EXPERIMENTS["sigma_sweep"]
    row = next(r for r in module.CLAIMS if "symmetric M: minimum" in r["statement"])
    sigmas = [0.0, 0.03, 0.06]

    def numbers(minimum):
        curve = [1 / 12, minimum, 0.09]
        entry = {"loss_over_p": [curve], "stderr": [[1e-4] * 3], "min_loss_over_p": [minimum],
                 "argmin_sigma": [0.03], "first_sigma_above_naive": [0.05]}
        return {"sigma": sigmas, "symmetric": entry, "asymmetric": entry}

    assert judge(row, numbers(0.065 + 0.0029), True)["verdict"] == "✓"
    assert judge(row, numbers(0.065 + 0.0031), True)["verdict"] == "✗"
    assert judge(row, numbers(0.065 - 0.0031), True)["verdict"] == "✗"
