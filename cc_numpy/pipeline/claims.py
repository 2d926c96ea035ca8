"""Claims and checks: what is compared with what, and the rule that decides ✓ or ✗.

Every experiment module lists

* ``CLAIMS``: what the paper (arXiv:2606.14673) says, as it says it: the
  statement, the paper's value, where it is (figure or section), how our value
  is read from the experiment's numbers, and the rule;
* ``CHECKS``: this project's own measurements and checks, each with its own
  expectation (never presented as the paper's).

A reading is a dict ``{"per_seed": [...], "mc": float or None}``: one value per
training seed and, where it matters, the Monte Carlo standard error of one
evaluation. The rule is applied to the mean over seeds. Claims that need the
paper's training length are shown, not judged, at a reduced scale.
"""

import numpy as np

from ..analyses.baselines import naive_loss_over_p

PAPER_ID = "arXiv:2606.14673"
NAIVE = naive_loss_over_p(100, 50)   # the paper's naive line: 50 of 100 ReLUs exact on clean labels, L/p = 1/12
FIGURE_READING = 0.003      # ± on a value read off one of the paper's figures (±0.002) plus seed-to-seed spread


# --- rules --------------------------------------------------------------------------------------

def within(value, tolerance=FIGURE_READING):
    """|ours − value| ≤ tolerance."""
    return {"kind": "within", "low": value - tolerance, "high": value + tolerance,
            "text": f"|ours − {value:g}| ≤ {tolerance:g}"}


def between(low, high):
    """low ≤ ours ≤ high."""
    return {"kind": "between", "low": low, "high": high, "text": f"{low:g} ≤ ours ≤ {high:g}"}


def at_least(low):
    return {"kind": "between", "low": low, "high": np.inf, "text": f"ours ≥ {low:g}"}


def at_most(high):
    return {"kind": "between", "low": -np.inf, "high": high, "text": f"ours ≤ {high:g}"}


def above(low):
    """ours > low (strictly)."""
    return {"kind": "between", "low": float(np.nextafter(low, np.inf)), "high": np.inf, "text": f"ours > {low:g}"}


def below(high):
    """ours < high (strictly)."""
    return {"kind": "between", "low": -np.inf, "high": float(np.nextafter(high, -np.inf)), "text": f"ours < {high:g}"}


def holds(rule, value):
    """Whether ``value`` satisfies ``rule`` (None, a missing value, never does)."""
    return value is not None and bool(np.isfinite(value)) and rule["low"] <= value <= rule["high"]


# --- readings -----------------------------------------------------------------------------------

def reading(per_seed, mc=None, label=None):
    """A reading from per-seed values (None entries mean 'not found', e.g. no crossing).

    ``label`` replaces the '(N seeds)' note for a value that is not one number per seed
    (e.g. 'across 3 seeds' for a spread, or 'exact').
    """
    values = [None if v is None else float(v) for v in np.atleast_1d(np.asarray(per_seed, dtype=object))]
    return {"per_seed": values, "mc": None if mc is None else float(np.max(mc)), "label": label}


def mean_of(value):
    """The mean over seeds, or None when any seed has no value."""
    values = value["per_seed"]
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def spread_of(value):
    """The sample standard deviation across seeds (None for one seed)."""
    values = value["per_seed"]
    if len(values) < 2 or any(v is None for v in values):
        return None
    return float(np.std(values, ddof=1))


def describe(value, digits=4):
    """'0.0653 ± 0.0004 (3 seeds; MC ± 0.0002)' style text."""
    mean = mean_of(value)
    if mean is None:
        found = [v for v in value["per_seed"] if v is not None]
        return f"none found in {len(value['per_seed']) - len(found)} of {len(value['per_seed'])} seeds"
    text = f"{mean:.{digits}f}"
    if value.get("label"):
        return text + f" ({value['label']})"
    spread = spread_of(value)
    n = len(value["per_seed"])
    if spread is not None:
        text += f" ± {spread:.{digits}f} ({n} seeds"
    else:
        text += f" ({n} seed"
    if value["mc"] is not None:
        text += f"; MC ± {value['mc']:.{digits}f}"
    return text + ")"


# --- rows ---------------------------------------------------------------------------------------

def claim(statement, paper, source, read, rule, needs_paper_scale=True, note=""):
    """A claim of the paper. ``paper``: its value as text; ``source``: figure or section; ``read(numbers)``."""
    return {"statement": statement, "paper": paper, "source": source, "read": read, "rule": rule,
            "needs_paper_scale": needs_paper_scale, "note": note}


def check(statement, expected, read, rule, needs_paper_scale=False, note=""):
    """One of our own measurements or checks, with its own expectation."""
    return {"statement": statement, "expected": expected, "read": read, "rule": rule,
            "needs_paper_scale": needs_paper_scale, "note": note}


def judge(row, numbers, full_scale):
    """The row's reading and verdict: '✓', '✗', or 'not judged' (needs the paper's scale)."""
    value = row["read"](numbers)
    mean = mean_of(value)
    if row["needs_paper_scale"] and not full_scale:
        verdict = "needs paper scale"
    else:
        verdict = "✓" if holds(row["rule"], mean) else "✗"
    return {"statement": row["statement"], "value": value, "ours": describe(value), "verdict": verdict,
            "rule": row["rule"]["text"], "note": row["note"],
            **{key: row[key] for key in ("paper", "source", "expected") if key in row}}
