"""REPORT.md: the paper's claims beside our numbers, then our own measurements, then the settings.

Built from the experiment modules' ``CLAIMS`` and ``CHECKS`` (``pipeline.claims``);
an experiment with extra tables gives them through ``table(numbers)``.
"""

import json
import os
import platform

import numpy as np

from .experiments import EXPERIMENTS
from .pipeline.claims import PAPER_ID, judge
from .pipeline.scale import is_full
from .core.storage import save_text

PAPERS = ("Bhagat, Molas-Medina, Giglemiani, Heimersheim, *Compressed Computation is (probably) not Computation "
          "in Superposition*, arXiv:2606.14673; Braun, Bushnaq, Heimersheim, Mendel, Sharkey, *Interpretability in "
          "Parameter Space: Minimizing Mechanistic Description Length with Attribution-based Parameter "
          "Decomposition*, arXiv:2501.14926.")


def rows(numbers, full_scale):
    """(claims, checks): judged rows of every experiment present in ``numbers``, each with its figure.

    An experiment's numbers say at which scale they were made (``_run``, written by ``reproduce``);
    without that, ``full_scale`` decides whether claims that need the paper's scale are judged.
    """
    claims, checks = [], []
    for name, module in EXPERIMENTS.items():
        if name not in numbers:
            continue
        own_scale = numbers[name].get("_run", {}).get("full_scale", full_scale)
        for target, table in ((claims, module.CLAIMS), (checks, module.CHECKS)):
            for row in table:
                target.append(dict(judge(row, numbers[name], own_scale), figure=f"{name}.png"))
    return claims, checks


def _tally(judged):
    counts = {verdict: sum(r["verdict"] == verdict for r in judged) for verdict in ("✓", "✗", "needs paper scale")}
    text = f"{counts['✓']} ✓, {counts['✗']} ✗"
    if counts["needs paper scale"]:
        text += f", {counts['needs paper scale']} shown but not judged (they need the paper's training length)"
    return text


def _cell(text):
    return str(text).replace("|", "\\|")


def write_report(path, numbers, scale, scale_name, seeds, workers, seconds, trainings=None, earlier=()):
    """Write REPORT.md; return (claims, checks) as judged.

    ``trainings`` is ``{"total": …, "computed": …}``; ``earlier`` names experiments whose numbers
    come from an earlier run in the same folder.
    """
    import scipy

    full_scale = is_full(scale)
    claims, checks = rows(numbers, full_scale)
    lines = ["# cc_numpy reproduction report", "",
             f"Scale: **{scale_name}**; seeds {', '.join(map(str, seeds))}; {workers} worker(s); "
             f"wall time {seconds / 60:.1f} min"
             + (f" ({trainings['computed']} of {trainings['total']} trainings computed in this run, the rest from "
                "the cache)." if trainings else "."), ""]
    if earlier:
        runs = [f"{name} ({numbers[name].get('_run', {}).get('scale_name', 'unknown')} scale, seeds "
                f"{', '.join(map(str, numbers[name].get('_run', {}).get('seeds', [])))})" for name in earlier]
        lines += [f"Rows of {'; '.join(runs)} come from an earlier run in this folder, judged at their own scale.", ""]
    if not full_scale:
        lines += ["This is a reduced-scale run: it shows every figure's story, and claims that need the paper's "
                  "training length are shown but not judged. Run `python -m cc_numpy reproduce` for the verdicts.", ""]
    lines += ["Papers: " + PAPERS, "",
              "How to read a value: the mean over training seeds ± the standard deviation across seeds (each seed "
              "draws its own M, data, initial weights and evaluation inputs), with the Monte Carlo standard error "
              "of one evaluation where it matters. The rule is applied to the seed mean.", "",
              f"## 1. The paper's claims ({PAPER_ID})", "", _tally(claims) + ".", "",
              "| claim (as the paper states it) | paper | source | ours | rule | verdict | figure |",
              "|---|---|---|---|---|---|---|"]
    for r in claims:
        note = f" {r['note']}" if r["note"] else ""
        lines.append(f"| {_cell(r['statement'])} | {_cell(r['paper'])} | {_cell(r['source'])} | {_cell(r['ours'])} | "
                     f"{_cell(r['rule'])}{_cell(note)} | {r['verdict']} | [{r['figure']}](figures/{r['figure']}) |")
    lines += ["", "## 2. Our measurements and checks", "",
              "Numbers of this project's own, with our own expectations (nothing here is the paper's). "
              + _tally(checks) + ".", "",
              "| measurement | expected | ours | rule | verdict | figure |", "|---|---|---|---|---|---|"]
    for r in checks:
        note = f" {r['note']}" if r["note"] else ""
        lines.append(f"| {_cell(r['statement'])} | {_cell(r['expected'])} | {_cell(r['ours'])} | "
                     f"{_cell(r['rule'])}{_cell(note)} | {r['verdict']} | [{r['figure']}](figures/{r['figure']}) |")
    for name, module in EXPERIMENTS.items():
        if name in numbers and hasattr(module, "table"):
            lines += [""] + module.table(numbers[name])
    lines += ["", "## Settings", "", "```", json.dumps(scale, indent=1), "```", "",
              f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
              f"{platform.platform()}; {os.cpu_count()} CPUs.", ""]
    save_text(path, "\n".join(lines))
    return claims, checks
