"""Chapter 14: reproduce, claims and the report (cc_numpy/reproduce.py, cc_numpy/report.py,
cc_numpy/pipeline/claims.py, cc_numpy/pipeline/plotting.py, cc_numpy/__main__.py).

Run it whole:      python tutorial/14_reproduce.py          (a few seconds: experiments at the test scale)
                   python tutorial/14_reproduce.py --full   (also `python -m cc_numpy reproduce --quick`, about a minute more)
or cell by cell through the '# %%' markers in an editor. Read tutorial/14_reproduce.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                      # scripts only write PNG files, never open windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cc_numpy import experiments, report, reproduce  # noqa: E402
from cc_numpy.__main__ import build_parser, main  # noqa: E402
from cc_numpy.core import runtime  # noqa: E402
from cc_numpy.core.storage import load_json  # noqa: E402
from cc_numpy.pipeline import claims, jobs, plotting, scale  # noqa: E402

parser = argparse.ArgumentParser(description="Chapter 14: reproduce, claims, the figures and the report.")
parser.add_argument("--full", action="store_true", help="also run `python -m cc_numpy reproduce --quick` (about a minute)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
folder = os.path.join(args.out, "14_reproduce")
shutil.rmtree(folder, ignore_errors=True)                        # start from an empty cache every time
os.makedirs(folder)
CHOSEN = ["naive_offset", "sigma_sweep", "snmf_sweep", "eigen", "small_p"]
print(f"outputs go to {folder}; experiments {CHOSEN} at the test scale")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def table_rows(text, heading):
    """The body rows of the first Markdown table after ``heading`` (up to the next '## ')."""
    part = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("| ")][1:]      # the header row left out


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# %% 1. One call: trainings, numbers, figures, report
print("\n1. reproduce.reproduce(out, scale='test', only=[…], workers=1): progress lines, then the analyses")
run = os.path.join(folder, "test")
numbers = reproduce.reproduce(run, scale="test", only=CHOSEN, workers=1, stream=sys.stdout)
for sub in ("figures", "numbers"):
    print(f"   {sub}/: {sorted(os.listdir(os.path.join(run, sub)))}")
figures = [os.path.join(run, "figures", f"{name}.png") for name in CHOSEN]
check(all(Path(path).read_bytes()[:8] == PNG_MAGIC for path in figures), "one PNG per experiment in figures/")
check(all(load_json(os.path.join(run, "numbers", f"{name}.json")) == numbers[name] for name in CHOSEN),
      "numbers/NAME.json holds exactly the numbers each figure was drawn from")
needed = {jobs.job_key(job) for name in CHOSEN for job in experiments.EXPERIMENTS[name].jobs(scale.TEST, [0])}
check(len(os.listdir(os.path.join(run, "cache"))) == len(needed) == 7,
      "7 trainings: 6 for the σ sweep (shared with snmf_sweep), 1 for eigen (shared with small_p), none for naive_offset")

# %% 2. Claims: a statement, a reading, a rule, a verdict
print("\n2. claims.claim(statement, paper, source, read, rule) and claims.judge(row, numbers, full_scale)")
row = claims.claim("σ sweep, symmetric M: minimum L/p ≈ 0.065", "0.065", "arXiv:2606.14673, Fig. 5",
                   lambda n: claims.reading(n["minimum"], mc=n["stderr"]), claims.within(0.065))
for label, made_up, full in (("three seeds near the paper", [0.0653, 0.0649, 0.0658], True),
                             ("one seed too high", [0.0712], True),
                             ("the same at a reduced scale", [0.0712], False)):
    verdict = claims.judge(row, {"minimum": made_up, "stderr": 0.0002}, full_scale=full)
    print(f"   {label:>28s}: ours {verdict['ours']:<38s} rule {verdict['rule']:<22s} → {verdict['verdict']}")
check(claims.judge(row, {"minimum": [0.0712], "stderr": 0.0002}, True)["verdict"] == "✗",
      "a claim can fail: the rule is fixed before the number is seen")
check(claims.describe(claims.reading([0.0653, 0.0649, 0.0658], mc=0.0002)) == "0.0653 ± 0.0005 (3 seeds; MC ± 0.0002)",
      "a value reads 'mean ± standard deviation across seeds (n seeds; MC ± Monte Carlo error)'")
trained = [claims.judge(r, numbers["sigma_sweep"], full_scale=True) for r in experiments.sigma_sweep.CLAIMS]
print(f"   the σ sweep's {len(trained)} claims judged as if 40-step models were the paper's scale: "
      f"{sum(v['verdict'] == '✗' for v in trained)} ✗")
check(any(v["verdict"] == "✗" for v in trained), "undertrained models fail the claims: they are real tests")

# %% 3. The report in two parts
print("\n3. report.rows(numbers, full_scale) and REPORT.md: 1. the paper's claims, 2. our measurements and checks")
claim_rows, check_rows = report.rows(numbers, full_scale=False)
for r in claim_rows + check_rows:
    print(f"   {r['verdict']:>17s}  {r['statement'][:70]:<70s} ours {r['ours']}")
text = Path(run, "REPORT.md").read_text(encoding="utf-8")
check(len(table_rows(text, "## 1. The paper's claims")) == len(claim_rows)
      and len(table_rows(text, "## 2. Our measurements and checks")) == len(check_rows),
      "REPORT.md has one row per claim in part 1 and one per check in part 2")
check(all(r["verdict"] == "✓" for r in claim_rows if r["figure"] == "naive_offset.png"),
      "the naive + offset claims are judged (✓) even here: closed forms, no training length involved")
check(all(r["verdict"] == "needs paper scale" for r in claim_rows if r["figure"] == "sigma_sweep.png")
      and "reduced-scale run" in text,
      "trained claims at a reduced scale: shown, marked 'needs paper scale', neither ✓ nor ✗")

# %% 4. Seeds and error bars
print("\n4. The seeds experiment trains at least three seeds at any scale: the spread is the error bar")
seeds_numbers = reproduce.reproduce(os.path.join(folder, "seeds"), scale="test", only="seeds", workers=1,
                                    first_seed=5, stream=io.StringIO())["seeds"]
entry = seeds_numbers["residual CC model"]
print(f"   seeds {seeds_numbers['seeds']}: residual CC model L/p at p = 0.01 "
      f"{np.round(entry['loss_over_p'], 4).tolist()} (MC ± {max(entry['stderr']):.4f})")
value = claims.reading(entry["loss_over_p"], mc=entry["stderr"])
print("   read as:", claims.describe(value))
check(seeds_numbers["seeds"] == [5, 6, 7] and claims.spread_of(value) is not None,
      "first_seed=5 at one seed per model still gives seeds 5, 6, 7 here, and a standard deviation")

# %% 5. Rerun: everything comes from the cache, and the report keeps the earlier experiments
print("\n5. Rerun with only='snmf-sweep': its trainings are all in the cache")
log = io.StringIO()
again = reproduce.reproduce(run, scale="test", only="snmf-sweep", workers=1, stream=log)
print("   " + log.getvalue().splitlines()[0])
check("0 not yet in the cache" in log.getvalue() and again["snmf_sweep"] == numbers["snmf_sweep"],
      "nothing retrained, the same numbers")
merged = Path(run, "REPORT.md").read_text(encoding="utf-8")
earlier = [name for name in experiments.EXPERIMENTS if name in CHOSEN and name != "snmf_sweep"]
check("come from an earlier run in this folder, judged at their own scale" in merged
      and all(f"{name} (test scale" in merged for name in earlier)
      and len(table_rows(merged, "## 1. The paper's claims")) == len(claim_rows),
      "REPORT.md still covers all five experiments: the other four come from numbers/ of the first call")

# %% 6. The figures are functions of the numbers (pipeline/plotting.py)
print("\n6. EXPERIMENTS[name].plot(numbers, path) draws inside plotting.figure(path): from the saved JSON alone")
redrawn = os.path.join(folder, "sigma_sweep_again.png")
experiments.EXPERIMENTS["sigma_sweep"].plot(load_json(os.path.join(run, "numbers", "sigma_sweep.json")), redrawn)
broken = os.path.join(folder, "broken.png")
try:
    with plotting.figure(broken) as axis:
        axis.plot([1, 2], [3, 4])
        raise RuntimeError("a plotting bug")
except RuntimeError:
    pass
check(Path(redrawn).read_bytes()[:8] == PNG_MAGIC and not os.path.exists(broken) and plt.get_fignums() == [],
      "a figure is saved when its block ends, and closed without a file when the block fails (no leak)")

# %% 7. Identical bits: one BLAS thread while training
print("\n7. runtime.single_blas_thread(): OpenBLAS pinned to one thread while a model trains or is scored")
before = runtime.blas_thread_counts()
runtime.set_blas_threads(2)                                       # as on a machine where BLAS uses two threads
with runtime.single_blas_thread():
    inside = runtime.blas_thread_counts()
outside = runtime.blas_thread_counts()
runtime.set_blas_threads(before[0])                               # back to this process's own setting
print(f"   OpenBLAS thread counts (one per loaded OpenBLAS): {outside} outside, {inside} inside the block")
job = experiments.job(scale.TEST, 0, [0.01], mixing="asymmetric", sigma=0.03)
ours = jobs.run_job(job)
theirs = os.path.join(folder, "two_threads.npz")
code = ("import sys, numpy as np; from cc_numpy.pipeline import jobs, scale; from cc_numpy import experiments; "
        "r = jobs.run_job(experiments.job(scale.TEST, 0, [0.01], mixing='asymmetric', sigma=0.03)); "
        "np.savez(sys.argv[1], W_in=r['W_in'], W_out=r['W_out'], L=r['eval_loss_over_p'])")
subprocess.run([sys.executable, "-c", code, theirs], check=True,
               env=dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2"))
with np.load(theirs) as other:
    same = all(np.array_equal(other[k], ours[k]) for k in ("W_in", "W_out")) and \
        np.array_equal(other["L"], ours["eval_loss_over_p"])
check(all(count == 1 for count in inside) and all(count == 2 for count in outside) and same,
      "a process started with OPENBLAS_NUM_THREADS=2 trains and scores the very same bits")

# %% 8. Progress and the time estimate
print("\n8. reproduce.Progress: trainings done, elapsed time and an estimate from jobs.job_cost")
paper = scale.PAPER
for example in (experiments.sigma_sweep.sweep_job(paper, 0, "asymmetric", 0.03),
                experiments.sparsity_regimes.regime_job(paper, 0, 0.001),
                experiments.sparsity_regimes.regime_job(paper, 0, 1.0),
                experiments.mixing_types.model_job(paper, 0, "residual CC model")):
    print(f"   cost {jobs.job_cost(example):>9,.0f}: {reproduce._describe(example)}, "
          f"{example['config']['steps']} steps")
demo = experiments.sigma_sweep.jobs(scale.TEST, [0])[:2]
progress_log = io.StringIO()
progress = reproduce.Progress(reproduce._owners({"sigma_sweep": demo, "snmf_sweep": demo[:1]}), demo, progress_log)
progress(1, 2, demo[0], 0.1)
print("   " + progress_log.getvalue().strip())
check("[1/2 trainings] sigma_sweep, snmf_sweep:" in progress_log.getvalue(),
      "one line per finished training, naming every experiment that needs it, with the time left")

# %% 9. The command line
print("\n9. python -m cc_numpy COMMAND: train, evaluate, reproduce, one command per experiment, snmf")
commands = next(a for a in build_parser()._actions if a.dest == "command").choices
for name, module in experiments.EXPERIMENTS.items():
    print(f"   {experiments.command_name(name):>17s}  {module.HELP[:80]}")
check(set(commands) == {"train", "evaluate", "reproduce", "snmf"}
      | {experiments.command_name(n) for n in experiments.EXPERIMENTS},
      "the experiment commands come from the registry: nothing else lists them")
cli = os.path.join(folder, "cli")
with contextlib.redirect_stderr(io.StringIO()):
    status = main(["naive-offset", "--scale", "test", "--out", cli, "--workers", "1"])
check(status == 0 and sorted(os.listdir(os.path.join(cli, "figures"))) == ["naive_offset.png"],
      "`python -m cc_numpy naive-offset --scale test` writes naive_offset.png, naive_offset.json and REPORT.md")
errors = io.StringIO()
with contextlib.redirect_stderr(errors):
    try:
        main(["reproduce", "--only", "baselines", "--out", cli])
    except SystemExit as stop:
        status = stop.code
print("   " + errors.getvalue().strip()[:110] + " …")
check(status == 2, "an unknown experiment is refused with one error line and status 2, before anything runs")

# %% 10. --full: the quick reproduction, as a user would run it
if args.full:
    quick = os.path.join(folder, "quick")
    command = [sys.executable, "-m", "cc_numpy", "reproduce", "--quick", "--out", quick, "--workers", "2"]
    print("\n10. Running", " ".join(command[1:]), "(about a minute; progress on stderr)")
    subprocess.run(command, check=True)
    lines = Path(quick, "REPORT.md").read_text(encoding="utf-8").splitlines()
    print("\n".join("   " + line[:160] for line in lines[:20]))
    print(f"   … the whole report: {os.path.join(quick, 'REPORT.md')}")
print("\nChapter 14 done.")
