"""Where a reproduction's time goes: training, evaluation and analysis, from its timings.json.

    python -m cc_numpy reproduce --out runs/paper            # writes runs/paper/timings.json
    python benchmarks/reproduction_share.py runs/paper

Training and evaluation are the seconds each computed job spent in its worker (a batched
group's training split equally among its models); analysis is the time of each experiment's
``numbers`` (SNMF builds, L-BFGS, eigen-analysis, Monte Carlo checks), run in the workers
next to the trainings.
Only the jobs this run computed count (a rerun that found everything cached has none).
"""

import argparse
import json
import os
import sys


def shares(timings):
    """(seconds, fraction) of training, evaluation and analysis."""
    computed = timings["computed"]
    training = sum(job["train_seconds"] for job in computed)
    evaluation = sum(job["seconds"] - job["train_seconds"] for job in computed)
    analysis = sum(timings["analysis_seconds"].values())
    total = training + evaluation + analysis
    return {part: (seconds, seconds / total if total else float("nan"))
            for part, seconds in (("training", training), ("evaluation", evaluation), ("analysis", analysis))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a reproduce --out folder holding timings.json")
    args = parser.parse_args(argv)
    path = os.path.join(args.folder, "timings.json")
    try:
        with open(path, encoding="utf-8") as handle:
            timings = json.load(handle)
        parts = shares(timings)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"error: cannot read {path}: {error}", file=sys.stderr)
        return 2
    print(f"{args.folder}: {len(timings['computed'])} trainings computed, wall {timings['wall_seconds'] / 60:.1f} min")
    for part, (seconds, fraction) in parts.items():
        print(f"  {part:<10s} {seconds / 60:7.1f} min of busy time  {100 * fraction:5.1f} %")
    slowest = sorted(timings["analysis_seconds"].items(), key=lambda item: -item[1])[:3]
    print("  slowest analyses: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
