"""Chapter 13: jobs, the cache and one module per experiment (cc_numpy/pipeline/jobs.py, cc_numpy/pipeline/scale.py,
cc_numpy/experiments/__init__.py, cc_numpy/experiments/sigma_sweep.py).

Run it whole:      python tutorial/13_experiments.py          (a few seconds: 40-step trainings at the test scale)
                   python tutorial/13_experiments.py --full   (also the σ sweep at the quick scale, about half a minute)
or cell by cell through the '# %%' markers in an editor. Read tutorial/13_experiments.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from cc_numpy import experiments
from cc_numpy.__main__ import main
from cc_numpy.core import mlp, runs
from cc_numpy.core.train import DEFAULT_CONFIG
from cc_numpy.experiments import sigma_sweep, sparsity_regimes
from cc_numpy.pipeline import jobs, scale

parser = argparse.ArgumentParser(description="Chapter 13: job dicts, the job cache, the scales and the experiments.")
parser.add_argument("--full", action="store_true", help="also run the σ-sweep experiment at the quick scale")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
folder = os.path.join(args.out, "13_experiments")
shutil.rmtree(folder, ignore_errors=True)                        # start from an empty cache every time
os.makedirs(folder)
TEST = scale.make_scale("test")
print(f"caches and outputs go to {folder}; tiny trainings at the test scale ({TEST['steps']} steps, "
      f"batch {TEST['batch_size']})")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def same_arrays(a, b):
    """Two job results hold the same arrays, bit for bit (the wall times 'seconds', 'train_seconds' aside)."""
    times = {"seconds", "train_seconds"}
    keys = set(a) - times
    return keys == set(b) - times and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in keys)


def tiny(**config):
    """A test-scale job evaluated at p = 0.01 on a fixed 2000 samples."""
    return jobs.make_job(dict({"steps": 40, "batch_size": 256}, **config), eval_ps=[0.01], min_samples=2000,
                         max_samples=2000)


# %% 1. A job is a plain dict holding the fully resolved config
print("\n1. jobs.make_job(config, eval_ps=…): what to train (every default filled in) and where to evaluate it")
job = tiny(sigma=0.03)
print("   " + json.dumps(job))
check(json.loads(json.dumps(job)) == job, "a job survives a JSON round trip (that is what makes it hashable)")
check(set(job["config"]) == set(DEFAULT_CONFIG), "the stored config names every setting, not only the given ones")
try:
    jobs.make_job({"stpes": 40})
except ValueError as error:
    print("   a typo is refused at once:", error)

# %% 2. The key of a job
print("\n2. jobs.job_key(job): SHA-256 of the canonical JSON with CACHE_VERSION and NUMERICS_VERSION, 24 hex digits")
key = jobs.job_key(job)
reordered = json.loads(json.dumps(job, sort_keys=True))           # same content, keys in another order
print(f"   key {key}; with σ = 0.031: {jobs.job_key(tiny(sigma=0.031))}")
check(jobs.job_key(reordered) == key and jobs.job_key(tiny(sigma=0.031)) != key,
      "the key ignores the order of the dict and changes with any setting")
check(jobs.job_key(tiny()) == key,
      f"leaving σ at its default ({DEFAULT_CONFIG['sigma']}) or writing it out: one job, one key (resolved config)")
saved_version = jobs.NUMERICS_VERSION
jobs.NUMERICS_VERSION = saved_version + 1                        # as if training or evaluation had changed
bumped = jobs.job_key(job)
jobs.NUMERICS_VERSION = saved_version
check(bumped != key, "bumping NUMERICS_VERSION changes every key: no stale result is ever served")

# %% 3. Running one job, and the CLI's `train` is the same function
print("\n3. jobs.run_job(job): train, then evaluate L/p at eval.ps; a flat dict of arrays")
result = jobs.run_job(job)
print("   " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in result.items()))
print(f"   L/p at p = 0.01 after {TEST['steps']} steps: {float(result['eval_loss_over_p'][0]):.3f} "
      "(a 40-step model: the test scale checks the plumbing, not the science)")
check(same_arrays(result, jobs.run_job(job)), "run twice, the same bits: every number depends only on the job")
cli_out = os.path.join(folder, "cli_train")
with contextlib.redirect_stdout(io.StringIO()):
    status = main(["train", "--steps", "40", "--batch-size", "256", "--eval-samples", "2000", "--out", cli_out,
                   "--quiet"])
params, _, _, metrics = runs.load_run(cli_out)
check(status == 0 and metrics["config"] == job["config"] and np.array_equal(params["W_in"], result["W_in"])
      and metrics["evaluation"]["loss_over_p"] == float(result["eval_loss_over_p"][0]),
      "`python -m cc_numpy train` calls run_job too: the same config, weights and L/p as the pipeline's")

# %% 4. The cache and the runner: fine-tuning, a job with a parent
print("\n4. jobs.run_jobs(jobs, cache=jobs.JobCache(folder)) on the finetune experiment's jobs")
finetune = experiments.EXPERIMENTS["finetune"]
pair = finetune.jobs(TEST, [0])
first, second = pair                                              # on mixed labels, then fine-tuned on clean ones
check(second["init_from"] == first, "the fine-tuning job carries its parent job inside it (init_from)")
cache = jobs.JobCache(os.path.join(folder, "serial"), report=lambda text: print("   ", text))
computed = []


def progress(done, total, job, seconds):
    computed.append(jobs.job_key(job))
    print(f"   [{done}/{total}] {jobs.job_key(job)[:8]}… {job['config']['task']} ({seconds:.2f} s)")


results = jobs.run_jobs(pair, cache=cache, progress=progress)
check(computed == [jobs.job_key(first), jobs.job_key(second)],
      "two trainings (the parent once, though listed and inside its child), the parent first")
check(sorted(os.listdir(cache.folder)) == sorted(jobs.job_key(j) + ".npz" for j in pair),
      "one <key>.npz per job in the cache folder")
computed.clear()
again = jobs.run_jobs(pair, cache=cache, progress=progress)
check(not computed and all(same_arrays(a, b) for a, b in zip(results, again)),
      "a rerun trains nothing and returns the same arrays")
with open(cache.path(second), "wb") as handle:                   # damage one file
    handle.write(b"not an npz file")
recomputed = jobs.run_jobs([second], cache=cache)[0]
check(same_arrays(recomputed, results[1]), "a corrupt cache file is reported, deleted and recomputed, never trusted")

# %% 5. Parallel workers give the same bits
print("\n5. run_jobs(…, workers=2): spawned processes with one BLAS thread each, against a serial run")
runner = ("import sys; from cc_numpy import experiments; from cc_numpy.pipeline import jobs, scale; "
          "jobs.run_jobs(experiments.EXPERIMENTS['finetune'].jobs(scale.TEST, [0, 1]), "
          "cache=jobs.JobCache(sys.argv[1]), workers=int(sys.argv[2]))")
processes = [subprocess.Popen([sys.executable, "-c", runner, os.path.join(folder, name), str(workers)])
             for name, workers in (("one_worker", 1), ("two_workers", 2))]
check(all(process.wait(timeout=300) == 0 for process in processes), "both runs finished")
one, two = jobs.JobCache(os.path.join(folder, "one_worker")), jobs.JobCache(os.path.join(folder, "two_workers"))
check(all(same_arrays(one.get(j), two.get(j)) for j in finetune.jobs(TEST, [0, 1])),
      "two workers give exactly the bits of one (4 trainings, two of them children)")
print("   (run from fresh interpreters: 'spawn' re-imports the main script in every worker, so a script that")
print("   calls run_jobs(workers > 1) needs an `if __name__ == \"__main__\":` guard; python -m cc_numpy has one)")

# %% 6. Scales and seeds
print("\n6. scale.PAPER, scale.QUICK and scale.TEST (scale.make_scale adds overrides and refuses unknown keys)")
for name in ("seeds", "steps", "learned_sigma_steps", "eigen_steps", "eval_points", "sigma_points",
             "target_stderr"):
    row = [str(s[name]) for s in (scale.PAPER, scale.QUICK, scale.TEST)]
    print(f"   {name:>19s}: paper {row[0]:<12s} quick {row[1]:<26s} test {row[2]}")
print(f"   regime p: paper {scale.PAPER['regime_ps']}, quick {scale.QUICK['regime_ps']}, test {scale.TEST['regime_ps']}")
check(scale.seeds(scale.PAPER) == [0, 1, 2] and scale.seeds(scale.QUICK, first=7) == [7],
      "scale.seeds(scale, first): three seeds at the paper's scale, one at the quick scale, from any first seed")
check(len(scale.sigma_grid(scale.PAPER)) == 41 and np.allclose(np.diff(scale.sigma_grid(scale.PAPER)), 0.002),
      "the paper's σ grid: 41 points from 0 to 0.08, step 0.002")
check(scale.eval_grid(scale.PAPER)[0] == 0.001 and 0.01 in scale.grid_with(TEST, 0.01),
      "evaluation p on a log grid from 0.001 to 1; grid_with adds the training p exactly")
try:
    scale.make_scale("test", stepz=10)
except ValueError as error:
    print("   make_scale refuses unknown keys:", error)

# %% 7. The registry: one module per experiment
print("\n7. experiments.EXPERIMENTS: modules found on disk, ordered by ORDER; jobs at the paper's scale (3 seeds)")
seeds = scale.seeds(scale.PAPER)
keys = {}
for name, module in experiments.EXPERIMENTS.items():
    listed = jobs.ancestors_first(module.jobs(scale.PAPER, seeds))      # with parents, each key once
    keys[name] = {jobs.job_key(j) for j in listed}
    print(f"   {module.ORDER:>3d} {experiments.command_name(name):>17s}: {len(listed):>3d} jobs, "
          f"{sum(j['config']['steps'] for j in listed):>9,d} steps, {len(module.CLAIMS):>2d} claims, "
          f"{len(module.CHECKS)} checks")
check(all(all(hasattr(m, attr) for attr in experiments.REQUIRED) for m in experiments.EXPERIMENTS.values()),
      "every module has ORDER, HELP, jobs, numbers, plot, CLAIMS and CHECKS")
check(experiments.resolve("sigma-sweep") == "sigma_sweep" == experiments.resolve("sigma_sweep"),
      "the command-line spelling and the module name both resolve")
check(keys["snmf_sweep"] <= keys["sigma_sweep"] and keys["small_p"] == keys["eigen"]
      and keys["seeds"] <= keys["mixing_types"],
      "shared trainings are the same job (same key): SNMF ⊂ σ sweep, small-p = eigen, seeds ⊂ mixing types")
PAPER_FIGURES = ("seeds", "mixing_types", "sigma_sweep", "finetune", "sparsity_regimes", "naive_offset", "eigen",
                 "small_p", "snmf_sweep", "low_rank")                # the paper's figures and our checks on them
print(f"   distinct trainings at the paper's scale: {len(set().union(*(keys[n] for n in PAPER_FIGURES)))} for "
      f"these ten, {len(set().union(*keys.values()))} for all {len(keys)} registered experiments")

# %% 8. One experiment module in full: sigma_sweep.py
print("\n8. sigma_sweep: jobs → run_jobs → Results → numbers → plot (run_experiment does the first four)")
sweep_jobs = sigma_sweep.jobs(TEST, [0])
print(f"   {len(sweep_jobs)} jobs at the test scale: σ in {scale.sigma_grid(TEST)} × {sigma_sweep.KINDS}")
cached = lambda job_list: jobs.run_jobs(job_list, cache=cache)    # noqa: E731  (cell 4's cache)
sweep = experiments.run_experiment("sigma-sweep", TEST, seeds=[0], runner=cached)
for kind in sigma_sweep.KINDS:
    print(f"   {kind:>10s}: L/p {np.round(sweep[kind]['loss_over_p'][0], 3).tolist()} (one row per seed)")
looked_up = experiments.Results({jobs.job_key(j): r for j, r in zip(sweep_jobs, jobs.run_jobs(sweep_jobs, cache=cache))})
direct = looked_up[sigma_sweep.sweep_job(TEST, 0, "asymmetric", 0.04)]
check(experiments.at_p(direct, 0.01)[0] == sweep["asymmetric"]["loss_over_p"][0][1],
      "results[job] finds a training by what it is (the asymmetric σ = 0.04 model), never by position")
check(abs(sigma_sweep.first_above_naive([0, 0.01, 0.02, 0.03], [0.083, 0.07, 0.08, 0.09]) - 0.02333) < 1e-4,
      "first_above_naive: past the minimum, 1/12 is crossed a third of the way from σ = 0.02 to 0.03")
figure = os.path.join(folder, "sigma_sweep.png")
sigma_sweep.plot(sweep, figure)
check(os.path.getsize(figure) > 0 and json.loads(json.dumps(sweep)) == sweep,
      "numbers are plain JSON, and the plot is drawn from them alone")

# %% 9. Regime steps and input–output curves (sparsity_regimes.py)
print("\n9. sparsity_regimes.regime_steps(p, steps): steps / (1 − (1 − p)ⁿ) for the sparse models")
for p in (0.001, 0.01, 0.1, 1.0):
    print(f"   p = {p:<6g}: {sparsity_regimes.regime_steps(p, 10_000):>7d} steps "
          f"({1 - (1 - p) ** 100:.1%} of the samples are non-empty)")
check(abs(sparsity_regimes.regime_steps(0.001, 10_000) - 105_000) < 500, "about 105k steps at p = 0.001")
W_in, W_out = results[0]["W_in"].astype(float), results[0]["W_out"].astype(float)
x, y, slopes = sparsity_regimes.input_output_curves(W_in, W_out, points=5)
one_active = np.zeros((x.size, W_in.shape[1]))
one_active[:, 3] = x                                              # feature 3 alone, at every x
check(np.allclose(mlp.forward({"W_in": W_in, "W_out": W_out}, one_active)[0][:, 3], y[3]),
      "row i of the input–output curves is the forward pass with only feature i active")

# %% 10. A new experiment is one new file
print("\n10. Adding an experiment: one file width.py, found by the registry, run by reproduce and the CLI")
WIDTH = '''
"""L/p against the number of neurons (no figure of the paper: the tutorial's example experiment)."""

from ..pipeline import plotting
from ..pipeline.claims import NAIVE, at_most, check, reading
from . import at_p, job

ORDER = 95
HELP = "L/p at p = 0.01 against d_mlp for asymmetric M, σ = 0.03 (the tutorial's example)"
WIDTHS = (10, 25, 50)
TRAIN_P = 0.01


def width_job(scale, seed, d_mlp):
    return job(scale, seed, [TRAIN_P], p=TRAIN_P, task="mixed", mixing="asymmetric", sigma=0.03, d_mlp=d_mlp)


def jobs(scale, seeds):
    return [width_job(scale, seed, width) for seed in seeds for width in WIDTHS]


def numbers(results, scale, seeds):
    rows = [[at_p(results[width_job(scale, s, width)], TRAIN_P)[0] for width in WIDTHS] for s in seeds]
    return {"d_mlp": list(WIDTHS), "loss_over_p": rows, "naive": NAIVE, "seeds": seeds}


def plot(numbers, path):
    with plotting.figure(path) as axis:
        plotting.mean_band(axis, numbers["d_mlp"], numbers["loss_over_p"], "asymmetric M, σ = 0.03", marker="o")
        plotting.naive_line(axis, numbers["naive"])
        axis.set_xlabel("d_mlp (neurons)")
        axis.set_ylabel("L/p at p = 0.01")
        axis.legend()


CLAIMS = []
CHECKS = [check("the widest model has the lowest L/p (widest − best, per seed)", "≤ 0",
                lambda n: reading([row[-1] - min(row) for row in n["loss_over_p"]]), at_most(0.0),
                needs_paper_scale=True)]
'''
plugin = os.path.join(folder, "plugin")                           # outside the repository: the package is untouched
os.makedirs(plugin)
with open(os.path.join(plugin, "width.py"), "w", encoding="utf-8") as handle:
    handle.write(textwrap.dedent(WIDTH))
experiments.__path__.append(plugin)                               # as if width.py sat in cc_numpy/experiments/
found = experiments._discover()                                   # what the package does when it is imported
experiments.EXPERIMENTS.clear()                                   # refilled in place: reproduce, the report and the
experiments.EXPERIMENTS.update(found)                             # command line all hold this same dict
orders = [module.ORDER for module in experiments.EXPERIMENTS.values()]
check("width" in experiments.EXPERIMENTS and orders == sorted(orders),
      "the registry found width.py and put it in its place by ORDER (95)")
width_out = os.path.join(folder, "width_run")
with contextlib.redirect_stderr(io.StringIO()):
    status = main(["width", "--scale", "test", "--out", width_out, "--workers", "1"])
saved = json.load(open(os.path.join(width_out, "numbers", "width.json"), encoding="utf-8"))
print(f"   python -m cc_numpy width --scale test: L/p {np.round(saved['loss_over_p'][0], 3).tolist()} "
      f"for d_mlp {saved['d_mlp']}")
check(status == 0 and os.path.exists(os.path.join(width_out, "figures", "width.png"))
      and "the widest model has the lowest L/p" in open(os.path.join(width_out, "REPORT.md"), encoding="utf-8").read(),
      "a command, a figure, numbers/width.json and a REPORT.md row, with no other file changed")

# %% 11. --full: one experiment at the quick scale
if args.full:
    print("\n11. The σ sweep at the quick scale (9 σ values × 2 kinds, 1,500 steps each), cached in", folder)
    quick_cache = jobs.JobCache(os.path.join(folder, "quick"))
    full = experiments.run_experiment("sigma_sweep", scale.QUICK, seeds=scale.seeds(scale.QUICK),
                                      runner=lambda job_list: jobs.run_jobs(job_list, cache=quick_cache,
                                                                            progress=progress))
    for kind in sigma_sweep.KINDS:
        entry = full[kind]
        above = entry["first_sigma_above_naive"][0]
        print(f"   {kind}: minimum L/p {entry['min_loss_over_p'][0]:.4f} at σ = {entry['argmin_sigma'][0]:.3f}; "
              f"above naive again from σ = {'never' if above is None else f'{above:.3f}'}")
    check(full["symmetric"]["min_loss_over_p"][0] < 1 / 12, "with mixing, the trained model beats 1/12")
print("\nChapter 13 done.")
