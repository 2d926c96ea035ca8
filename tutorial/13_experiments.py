"""Chapter 13: jobs, the cache, the parallel runner and the experiments (cc_numpy/jobs.py, cc_numpy/experiments.py).

Run it whole:      python tutorial/13_experiments.py          (a few seconds: 40-step trainings at the test scale)
                   python tutorial/13_experiments.py --full   (also runs the σ sweep at the quick scale, a minute or two)
or cell by cell through the '# %%' markers in an editor. Read tutorial/13_experiments.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from cc_numpy import experiments
from cc_numpy.pipeline import jobs
from cc_numpy.core import mlp

parser = argparse.ArgumentParser(description="Chapter 13: job dicts, the job cache, the runner and the experiments.")
parser.add_argument("--full", action="store_true", help="also run the σ-sweep experiment at the quick scale")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for outputs (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
folder = os.path.join(args.out, "13_experiments")
shutil.rmtree(folder, ignore_errors=True)                        # start from an empty cache every time
os.makedirs(folder)
TEST = experiments.TEST_SCALE
print(f"caches and outputs go to {folder}; tiny trainings at the test scale ({TEST['steps']} steps, "
      f"batch {TEST['batch_size']})")


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def same_arrays(a, b):
    """Two job results hold the same arrays, bit for bit (the wall time 'seconds' aside)."""
    keys = set(a) - {"seconds"}
    return keys == set(b) - {"seconds"} and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in keys)


# %% 1. A job is a plain dict
print("\n1. jobs.make_job(config, eval_ps=…): what to train and where to evaluate it, as JSON-able values")
job = jobs.make_job({"mixing": "asymmetric", "sigma": 0.03, "steps": 40, "batch_size": 256},
                    eval_ps=[0.01], target_stderr=None, min_samples=2000, max_samples=2000)
print("   " + json.dumps(job))
check(json.loads(json.dumps(job)) == job, "a job survives a JSON round trip (that is what makes it hashable)")
try:
    jobs.make_job({"stpes": 40})
except ValueError as error:
    print("   a typo is refused at once:", error)

# %% 2. The key of a job
print("\n2. jobs.job_key(job): SHA-256 of the canonical JSON and jobs.CACHE_VERSION, 24 hex digits")
key = jobs.job_key(job)
reordered = json.loads(json.dumps(job, sort_keys=True))           # same content, keys in another order
other = jobs.make_job({"mixing": "asymmetric", "sigma": 0.031, "steps": 40, "batch_size": 256},
                      eval_ps=[0.01], target_stderr=None, min_samples=2000, max_samples=2000)
print(f"   key {key}; with σ = 0.031: {jobs.job_key(other)}")
check(jobs.job_key(reordered) == key and jobs.job_key(other) != key,
      "the key ignores the order of the dict and changes with any setting")

# %% 3. Running one job
print("\n3. jobs.run_job(job): train, then evaluate L/p at eval.ps; a flat dict of arrays")
result = jobs.run_job(job)
print("   " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in result.items()))
print(f"   L/p at p = 0.01 after {TEST['steps']} steps: {float(result['eval_loss_over_p'][0]):.3f} "
      "(a 40-step model: the test scale checks the plumbing, not the science)")
check(same_arrays(result, jobs.run_job(job)), "run twice, the same bits: every number depends only on the job")

# %% 4. The cache and the runner: a fine-tuning experiment with a parent job
print("\n4. jobs.run_jobs(jobs, cache=jobs.JobCache(folder)) on experiments.finetune_jobs(TEST_SCALE)")
finetune = experiments.finetune_jobs(TEST)
first, second = finetune                                          # on mixed labels, then fine-tuned on clean ones
check(second["init_from"] == first, "the fine-tuning job carries its parent job inside it (init_from)")
cache = jobs.JobCache(os.path.join(folder, "serial"), report=lambda text: print("   ", text))
computed = []


def progress(done, total, job, seconds):
    computed.append(jobs.job_key(job))
    print(f"   [{done}/{total}] {jobs.job_key(job)[:8]}… {job['config'].get('task')} ({seconds:.2f} s)")


results = jobs.run_jobs(finetune, cache=cache, progress=progress)
check(len(computed) == 2 and computed.index(jobs.job_key(first)) < computed.index(jobs.job_key(second)),
      "two trainings (the parent only once, though listed and inside its child), the parent before its child")
check(sorted(os.listdir(cache.folder)) == sorted(jobs.job_key(j) + ".npz" for j in finetune),
      "one <key>.npz per job in the cache folder")
computed.clear()
again = jobs.run_jobs(finetune, cache=cache, progress=progress)
check(not computed and all(same_arrays(a, b) for a, b in zip(results, again)),
      "a rerun trains nothing and returns the same arrays")
with open(cache.path(second), "wb") as handle:                   # damage one file
    handle.write(b"not an npz file")
recomputed = jobs.run_jobs([second], cache=cache)[0]
check(same_arrays(recomputed, results[1]), "a corrupt cache file is reported, deleted and recomputed, never trusted")

# %% 5. Parallel workers give the same bits
print("\n5. run_jobs(…, workers=2): spawned processes with one BLAS thread each, against a serial run")
runner = ("import sys; from cc_numpy import experiments; from cc_numpy.pipeline import jobs; "
          "jobs.run_jobs(experiments.finetune_jobs(experiments.TEST_SCALE), "
          "cache=jobs.JobCache(sys.argv[1]), workers=int(sys.argv[2]))")
environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
processes = [subprocess.Popen([sys.executable, "-c", runner, os.path.join(folder, name), str(workers)],
                              env=environment) for name, workers in (("one_worker", 1), ("two_workers", 2))]
check(all(process.wait(timeout=300) == 0 for process in processes), "both runs finished")
one, two = jobs.JobCache(os.path.join(folder, "one_worker")), jobs.JobCache(os.path.join(folder, "two_workers"))
check(all(same_arrays(one.get(j), two.get(j)) for j in finetune), "two workers give exactly the bits of one")
print("   (run from fresh interpreters: 'spawn' re-imports the main script in every worker, so a script that")
print("   calls run_jobs(workers > 1) needs an `if __name__ == \"__main__\":` guard; python -m cc_numpy has one)")

# %% 6. Scales
print("\n6. experiments.PAPER_SCALE, QUICK_SCALE and TEST_SCALE (experiments.make_scale adds overrides)")
for name in ("steps", "learned_sigma_steps", "eigen_steps", "eval_points", "sigma_points", "target_stderr",
             "regime_ps", "snmf_iter"):
    row = [str(scale[name]) for scale in (experiments.PAPER_SCALE, experiments.QUICK_SCALE, TEST)]
    print(f"   {name:>19s}: paper {row[0]:<12s} quick {row[1]:<26s} test {row[2]}")
check(len(experiments.sigma_grid(experiments.PAPER_SCALE)) == 41 and
      np.allclose(np.diff(experiments.sigma_grid(experiments.PAPER_SCALE)), 0.002),
      "the paper's σ grid: 41 points from 0 to 0.08, step 0.002")
check(experiments.eval_grid(experiments.PAPER_SCALE)[0] == 0.001 and experiments.eval_grid(TEST)[-1] == 1.0,
      "evaluation p on a log grid from 0.001 to 1")
try:
    experiments.make_scale("test", stepz=10)
except ValueError as error:
    print("   make_scale refuses unknown keys:", error)

# %% 7. Steps that compensate for empty samples
print("\n7. experiments.regime_steps(p, steps): steps / (1 − (1 − p)ⁿ), for the sparsity-regime models")
for p in (0.001, 0.01, 0.1, 1.0):
    print(f"   p = {p:<6g}: {experiments.regime_steps(p, 10_000):>7d} steps "
          f"({1 - (1 - p) ** 100:.1%} of the samples are non-empty)")
check(abs(experiments.regime_steps(0.001, 10_000) - 105_000) < 500, "PAPER_NOTES: about 105k steps at p = 0.001")

# %% 8. What every experiment trains
print("\n8. experiments.EXPERIMENTS: NAME → (NAME_jobs, NAME_numbers); the paper-scale job lists")
paper = experiments.PAPER_SCALE
keys = {name: {jobs.job_key(j) for j in make_jobs(paper, 0)} for name, (make_jobs, _) in experiments.EXPERIMENTS.items()}
for name, (make_jobs, _) in experiments.EXPERIMENTS.items():
    listed = make_jobs(paper, 0)
    steps = sum(j["config"]["steps"] for j in listed)
    print(f"   {name:>17s}: {len(listed):>3d} jobs, {steps:>9,d} training steps")
check(keys["snmf"] <= keys["sigma_sweep"] and keys["small_p"] == keys["eigen"],
      "the SNMF figure reuses σ-sweep models and the small-p check the eigen model: same job, same key")
seed_zero = {jobs.job_key(j) for j in experiments.seeds_jobs(paper, 0)[::3]}     # residual and clean, seed 0
check(seed_zero <= keys["mixing_types"],
      "seeds' seed-0 models are mixing_types' residual and clean jobs (same evaluation grid, trained once)")
learned = [j for j in experiments.mixing_types_jobs(experiments.QUICK_SCALE) if j["config"].get("learn_sigma")]
check(all(j["config"]["steps"] == experiments.QUICK_SCALE["learned_sigma_steps"] for j in learned),
      "learned-σ jobs train learned_sigma_steps (5000 at the quick scale, against 1500 for the others)")
print(f"   distinct trainings at the paper's scale: {len(set().union(*keys.values()))}")

# %% 9. Numbers from results
print("\n9. experiments.run_experiment(name, scale, runner=…): NAME_jobs → runner → NAME_numbers")
cached_runner = lambda job_list: jobs.run_jobs(job_list, cache=cache, progress=progress)  # noqa: E731  (cell 4's cache)
computed.clear()
numbers = experiments.run_experiment("finetune", TEST, runner=cached_runner)
print("   finetune numbers: " + ", ".join(f"{k}" for k in numbers))
print(f"   L/p at p = 0.01: first model on mixed labels {numbers['mixed_phase_loss_over_p']:.3f}, the same "
      f"weights on clean labels {numbers['mixed_weights_on_clean_loss_over_p']:.3f}, "
      f"fine-tuned {numbers['finetuned_loss_over_p']:.3f}")
check(not computed and numbers["finetuned_loss_over_p"] == float(results[1]["eval_loss_over_p"][0]),
      "the numbers come from the cached results (nothing retrained: the clean-label score is an evaluation)")
baseline_numbers = experiments.run_experiment("baselines", TEST)   # no jobs: analytic + Monte Carlo
for row in baseline_numbers["checks"]:
    print(f"   p = {row['p']:<5g} b* = {row['offset']:.4f}: naive + offset analytic {row['offset_analytic']:.4f}, "
          f"Monte Carlo {row['offset_measured']:.4f} ± {row['offset_stderr']:.4f}")
check(json.loads(json.dumps(baseline_numbers)) == baseline_numbers, "numbers are plain JSON (numbers/NAME.json)")

# %% 10. Input–output curves
print("\n10. experiments.input_output_curves(W_in, W_out): ŷ_i against x_i with every other input 0")
W_in, W_out = results[0]["W_in"].astype(float), results[0]["W_out"].astype(float)
x, y, slopes = experiments.input_output_curves(W_in, W_out, points=5)
one_active = np.zeros((x.size, W_in.shape[1]))
one_active[:, 3] = x                                              # feature 3 alone, at every x
check(np.allclose(mlp.forward({"W_in": W_in, "W_out": W_out}, one_active)[0][:, 3], y[3]),
      "row i of y is the forward pass with only feature i active")
check(np.allclose(slopes, np.diag(W_out @ np.maximum(W_in, 0))), "the slope for x_i > 0 is (W_out ReLU(W_in))_ii")

# %% 11. --full: one experiment at the quick scale
if args.full:
    print("\n11. The σ sweep at the quick scale (9 σ values × 2 kinds, 1,500 steps each), cached in", folder)
    quick_cache = jobs.JobCache(os.path.join(folder, "quick"))
    sweep = experiments.run_experiment("sigma_sweep", experiments.QUICK_SCALE,
                                       runner=lambda job_list: jobs.run_jobs(job_list, cache=quick_cache,
                                                                             progress=progress))
    for kind in ("symmetric", "asymmetric"):
        entry = sweep[kind]
        print(f"   {kind}: minimum L/p {entry['min_loss_over_p']:.4f} at σ = {entry['argmin_sigma']:.3f}; "
              f"above naive again from σ = {entry['first_sigma_above_naive']}")
    check(sweep["symmetric"]["min_loss_over_p"] < 1 / 12, "with mixing, the trained model beats 1/12")
print("\nChapter 13 done.")
