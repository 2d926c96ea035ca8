"""Chapter 14: the whole pipeline, figures and REPORT.md (cc_numpy/reproduce.py, cc_numpy/plots.py).

Run it whole:      python tutorial/14_reproduce.py          (a few seconds: five experiments at the test scale)
                   python tutorial/14_reproduce.py --full   (also `python -m cc_numpy reproduce --quick`, a few minutes)
or cell by cell through the '# %%' markers in an editor. Read tutorial/14_reproduce.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
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

from cc_numpy import experiments, reproduce
from cc_numpy.pipeline import jobs, plots  # noqa: E402
from cc_numpy.__main__ import EXPERIMENT_COMMANDS, main  # noqa: E402
from cc_numpy.core.storage import load_json  # noqa: E402

parser = argparse.ArgumentParser(description="Chapter 14: reproduce, the figures and the report.")
parser.add_argument("--full", action="store_true", help="also run `python -m cc_numpy reproduce --quick` (minutes)")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
folder = os.path.join(args.out, "14_reproduce")
shutil.rmtree(folder, ignore_errors=True)                        # start from an empty cache every time
os.makedirs(folder)
CHOSEN = ["baselines", "sigma_sweep", "snmf", "eigen", "small_p"]
print(f"outputs go to {folder}; experiments {CHOSEN} at the test scale")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


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
needed = {jobs.job_key(job) for name in CHOSEN for job in experiments.EXPERIMENTS[name][0](experiments.TEST_SCALE, 0)}
check(len(os.listdir(os.path.join(run, "cache"))) == len(needed) == 7,
      "7 trainings: 6 for the σ sweep (shared with snmf) and 1 for eigen (shared with small_p); baselines needs none")

# %% 2. The report
print("\n2. reproduce.claim_rows(numbers): one row per claim of the paper that these numbers cover")
rows = reproduce.claim_rows(numbers)
for row in rows:
    print(f"   {'✓' if row['ok'] else '✗'} {row['claim'][:62]:<62s} paper {row['paper']:<20s} ours {row['ours']}")
report = Path(run, "REPORT.md").read_text(encoding="utf-8")
claims_table = report.split("\n## ")[0]                          # the claims, before the extra tables and settings
check(sum(line.startswith("| ") for line in claims_table.splitlines()) == len(rows) + 1,
      "REPORT.md has a header and one table row per claim")
check(all(row["ok"] for row in rows if "offset" in row["claim"]),
      "the baselines' rows pass even here: they are exact formulas (40-step models cannot pass the others)")

# %% 3. Rerun: everything comes from the cache, and the report keeps the earlier experiments
print("\n3. Rerun with only='snmf': its trainings are all in the cache")
log = io.StringIO()
again = reproduce.reproduce(run, scale="test", only="snmf", workers=1, stream=log)
print("   " + log.getvalue().splitlines()[0])
check("0 not yet in the cache" in log.getvalue() and again["snmf"] == numbers["snmf"],
      "nothing retrained, the same numbers")
merged = Path(run, "REPORT.md").read_text(encoding="utf-8")
earlier = sorted(set(CHOSEN) - {"snmf"})
print("\n".join("   " + line for line in merged.splitlines()[2:4]))
check(f"Rows of {', '.join(earlier)} come from an earlier run in this folder." in merged
      and "(0 of 4 trainings computed in this run" in merged                 # snmf's 4 σ-sweep models, all cached
      and sum(line.startswith("| ") for line in merged.split("\n## ")[0].splitlines()) == len(rows) + 1,
      "REPORT.md still covers all five experiments: the other four come from numbers/ of the first call")

# %% 4. The figures are functions of the numbers
print("\n4. plots.PLOTS[name](numbers, path): one function per figure, from the saved JSON alone")
check(set(plots.PLOTS) == set(experiments.EXPERIMENTS), "a plot function for every experiment")
path = plots.plot_sigma_sweep(load_json(os.path.join(run, "numbers", "sigma_sweep.json")),
                              os.path.join(folder, "sigma_sweep_again.png"))
print("   wrote", path)
check(plt.get_fignums() == [], "every figure is closed after saving (no leak over a long reproduction)")

# %% 5. Progress and the time estimate
print("\n5. reproduce.Progress: trainings done, elapsed time and an estimate from reproduce._job_cost")
for job in (experiments.sigma_sweep_jobs(experiments.PAPER_SCALE)[0],
            experiments.sparsity_regimes_jobs(experiments.PAPER_SCALE)[0],
            experiments.sparsity_regimes_jobs(experiments.PAPER_SCALE)[-1],
            experiments.seeds_jobs(experiments.PAPER_SCALE)[0]):
    print(f"   cost {reproduce._job_cost(job):>9,.0f}: {reproduce._describe(job)}, {job['config']['steps']} steps")
progress_log = io.StringIO()
demo = experiments.sigma_sweep_jobs(experiments.TEST_SCALE)[:2]
progress = reproduce.Progress({jobs.job_key(job): {"sigma_sweep"} for job in demo}, progress_log)   # key → experiments
progress.set_pending(demo)
progress(1, 2, demo[0], 0.1)
print("   " + progress_log.getvalue().strip())
check("[1/2 trainings]" in progress_log.getvalue(), "one line per finished training, with the time left")

# %% 6. The command line
print("\n6. python -m cc_numpy COMMAND: one command per figure, each a call of reproduce(only=NAME)")
for command, (name, text) in EXPERIMENT_COMMANDS.items():
    print(f"   {command:>17s} → {name:<17s} {text[:60]}")
cli = os.path.join(folder, "cli")
status = main(["baselines", "--scale", "test", "--out", cli, "--workers", "1"])
check(status == 0 and sorted(os.listdir(os.path.join(cli, "figures"))) == ["baselines.png"],
      "`python -m cc_numpy baselines --scale test` writes baselines.png, baselines.json and REPORT.md")

# %% 7. --full: the quick reproduction, as a user would run it
if args.full:
    quick = os.path.join(folder, "quick")
    command = [sys.executable, "-m", "cc_numpy", "reproduce", "--quick", "--out", quick, "--workers", "2"]
    print("\n7. Running", " ".join(command[1:]), "(a few minutes; progress on stderr)")
    subprocess.run(command, check=True)
    lines = Path(quick, "REPORT.md").read_text(encoding="utf-8").splitlines()
    print("\n".join("   " + line for line in lines[:12]))
    print(f"   … the whole report: {os.path.join(quick, 'REPORT.md')}")
print("\nChapter 14 done.")
