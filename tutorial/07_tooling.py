"""Chapter 07: input checks, files on disk, process settings and the command line
(cc_numpy/core/validate.py, cc_numpy/core/storage.py, cc_numpy/core/runs.py, cc_numpy/core/runtime.py, cc_numpy/__main__.py).

Run it whole:      python tutorial/07_tooling.py          (a few seconds)
                   python tutorial/07_tooling.py --full   (the command-line run uses the paper's 10,000 steps)
or cell by cell through the '# %%' markers in an editor. Read tutorial/07_tooling.md beside it.
"""

# %% Setup: flags, output folder, imports
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from cc_numpy.core import evaluate, runs, runtime, storage, train, validate

parser = argparse.ArgumentParser(description="Chapter 07: validation, storage, runs, runtime, command line.")
parser.add_argument("--full", action="store_true", help="train the command-line model for the paper's 10,000 steps")
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "cc_numpy_tutorial"),
                    help="folder for the runs written here (default: %(default)s, outside the repository)")
args, _ = parser.parse_known_args()
out = os.path.join(args.out, "07_tooling")
os.makedirs(out, exist_ok=True)
print("writing into", out)


def check(condition, message):
    """Print a passed check, or stop the script with the message."""
    if not condition:
        raise AssertionError("check failed: " + message)
    print("  check passed:", message)


def refused(function, *arguments, **keywords):
    """Call function, expecting ValueError/TypeError; print and return the message."""
    try:
        function(*arguments, **keywords)
    except (ValueError, TypeError) as error:
        shown = ", ".join(f"array{np.shape(a)}" if isinstance(a, np.ndarray) else repr(a) for a in arguments)
        print(f"   {function.__name__}({shown}): {type(error).__name__}: {error}")
        return str(error)
    raise AssertionError(f"{function.__name__}{arguments} was accepted")


# %% 1. validate.py: every public function checks its inputs the same way
print("\n1. validate.check_*: return the (converted) value or raise with what was given and what is allowed")
check(validate.check_int(5, "steps") == 5 and validate.check_probability(0.5) == 0.5, "good values pass through")
refused(validate.check_int, 2.5, "steps")
refused(validate.check_int, True, "steps")
refused(validate.check_probability, 0.0)
refused(validate.check_choice, "sym", "mixing kind", ("asymmetric", "symmetric"))
refused(validate.check_dtype, "float16")
refused(validate.check_rng, 0)
message = refused(validate.check_array, np.zeros((3, 4)), "W_in", (None, 5))
check("(any, 5)" in message and "(3, 4)" in message, "the message names the expected and the actual shape")

# %% 2. storage.py: atomic .npz and JSON
print("\n2. storage.save_npz / load_npz / save_json / load_json: write to a temporary file, then rename")
path = os.path.join(out, "arrays.npz")
storage.save_npz(path, {"a": np.arange(3.0), "scalar": 1.5})
loaded = storage.load_npz(path, required=("a",))
check(np.array_equal(loaded["a"], np.arange(3.0)) and float(loaded["scalar"]) == 1.5, "arrays round-trip")
check(not [f for f in os.listdir(out) if f.startswith(".tmp-")], "no temporary file is left behind")
try:
    storage.load_npz(path, required=("a", "b"))
except storage.CorruptFileError as error:
    print("   missing key:", error)
with open(os.path.join(out, "broken.npz"), "wb") as handle:
    handle.write(b"not a zip file")
try:
    storage.load_npz(os.path.join(out, "broken.npz"))
except storage.CorruptFileError as error:
    print("   unreadable file:", error)
storage.save_json(os.path.join(out, "numbers.json"), {"loss": np.float32(0.0667), "curve": np.array([1, 2])})
check(storage.load_json(os.path.join(out, "numbers.json")) == {"curve": [1, 2], "loss": float(np.float32(0.0667))},
      "NumPy scalars and arrays become plain JSON numbers and lists")

# %% 3. runs.py: a trained run on disk
print("\n3. runs.save_run / runs.load_run: weights.npz, metrics.json, history.npz")
result = train.train(dict(mixing="symmetric", sigma=0.03, steps=200, batch_size=512))
run_dir = os.path.join(out, "run_api")
weights_path = runs.save_run(run_dir, result["params"], result["M"], result["sigma"],
                             {"config": result["config"]}, result["history"])
print("   files:", sorted(os.listdir(run_dir)))
params, M, sigma, metrics = runs.load_run(run_dir)
check(params["W_in"].dtype == np.float64 and np.allclose(params["W_in"], result["params"]["W_in"]),
      "weights come back as float64")
check(np.array_equal(M, result["M"]) and sigma == 0.03 and metrics["config"]["task"] == "mixed",
      "M, σ and the config come back, so the labels can be rebuilt")
score = evaluate.loss_over_p(params, 0.01, np.random.default_rng(0), task="mixed", M=M, sigma=sigma, n_samples=20_000)
print(f"   the loaded model scores L/p = {score['loss_over_p']:.4f} ± {score['stderr']:.4f} (200 steps only)")
check(runs.load_run(weights_path)[2] == sigma, "load_run accepts the folder or its weights.npz")

# %% 4. runtime.py: process-level speed settings
print("\n4. runtime.single_thread_blas_env and runtime.keep_freed_memory")
environment = runtime.single_thread_blas_env(2, environ={"OMP_NUM_THREADS": "4"})
print("   on a copy of the environment:", environment)
check(environment["OMP_NUM_THREADS"] == "4" and environment["OPENBLAS_NUM_THREADS"] == "2",
      "a setting the user already made is kept, the others are filled in")
applied = runtime.keep_freed_memory()
print(f"   keep_freed_memory() -> {applied} (True on Linux with glibc; False elsewhere, where it does nothing)")

# %% 5. __main__.py: the command line
print("\n5. python -m cc_numpy: train and evaluate from the shell")
cli_dir = os.path.join(out, "run_cli")
steps = "10000" if args.full else "300"
command = [sys.executable, "-m", "cc_numpy", "train", "--mixing", "symmetric", "--sigma", "0.03", "--steps", steps,
           "--batch-size", "1024", "--eval-samples", "20000", "--quiet", "--out", cli_dir]
print("   $", " ".join(command[1:]))
completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
print("  ", completed.stdout.strip().replace("\n", "\n   "))
check(completed.returncode == 0 and sorted(os.listdir(cli_dir)) == ["history.npz", "metrics.json", "weights.npz"],
      "train wrote the three files")
with open(os.path.join(cli_dir, "metrics.json"), encoding="utf-8") as handle:
    metrics = json.load(handle)
print("   metrics.json keys:", sorted(metrics))
command = [sys.executable, "-m", "cc_numpy", "evaluate", cli_dir, "--p", "0.001", "0.01", "0.1", "--samples", "20000"]
print("   $", " ".join(command[1:]))
completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
print("  ", completed.stdout.strip().replace("\n", "\n   "))
check(completed.returncode == 0 and "task mixed" in completed.stdout, "evaluate reads the task back from metrics.json")

# %% 6. Bad input: a one-line message and exit status 2, no traceback
print("\n6. Mistakes give 'error: …' and exit status 2")
for bad in (["train", "--p", "2"], ["train", "--mixing", "lowrank", "--rank", "500", "--steps", "1", "--out", cli_dir],
            ["evaluate", os.path.join(out, "no_such_run")]):
    completed = subprocess.run([sys.executable, "-m", "cc_numpy", *bad], capture_output=True, text=True, timeout=60)
    last_line = completed.stderr.strip().splitlines()[-1]
    print(f"   {' '.join(bad)} -> exit {completed.returncode}: {last_line}")
    check(completed.returncode == 2 and "Traceback" not in completed.stderr, "clean refusal")
print("\nChapter 07 done.")
