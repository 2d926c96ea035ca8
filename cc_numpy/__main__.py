"""The command line: ``python -m cc_numpy COMMAND [flags]`` (``--help`` on each command).

It only parses flags, builds configs and calls library functions. Bad input
prints one line ``error: …`` on stderr and exits with status 2, without a
traceback; everything is checked (flags that would be ignored, sizes that
cannot fit in memory, output folders that cannot be written) before any long
work starts. One Ctrl-C stops any command within moments, workers included,
prints one line saying what was kept and exits with status 130; SIGTERM (``kill``,
``timeout``, a job scheduler) stops it the same way, with status 143.
"""

import argparse
import os
import re
import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)       # Ctrl-C, and kill's default: both stop a command cleanly
_stop_signal = None                                  # the first stop signal received, if any (its exit status)


def _note_interrupt(signum, frame):
    """A stop signal while modules load or flags are parsed: noted, acted on once main() is ready (no half-import)."""
    global _stop_signal
    _stop_signal = _stop_signal or signum


def _set_stop_handlers(handler):
    """Give both stop signals ``handler``; returns their previous handlers."""
    return [signal.signal(signum, handler) for signum in STOP_SIGNALS]


if __name__ == "__main__":
    _set_stop_handlers(_note_interrupt)

from .core.runtime import keep_freed_memory

keep_freed_memory()             # freed (B, n) temporaries stay in the heap (see runtime.py)

from .core.storage import CorruptFileError  # noqa: E402
from .core.train import NonFiniteLossError  # noqa: E402

# TypeError is not here: the command line passes values of the right type, so one is a bug (traceback).
# MemoryError is: the sizes are estimated before the work, but an estimate can fall short (other programs).
USER_ERRORS = (ValueError, OSError, CorruptFileError, NonFiniteLossError, MemoryError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag gives the same single ``error:`` line (and status 2) as every other user error,
    and a negative number in e-notation (``--sigma -1e-3``) is a value, not an option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)                # --mod is not --model: a typo is an error
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM), with ``kept``: what was saved and how to resume."""

    def __init__(self, kept):
        super().__init__(kept)
        self.kept = kept


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _float_in(low, low_open, description):
    """An argparse type: a finite float >= ``low`` (> ``low`` if ``low_open``)."""
    def parse(text):
        value = _number(text)
        if value != value or value in (float("inf"), float("-inf")) or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {description}, got {text}")
        return value
    return parse


def _probability(text):
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"p must be in (0, 1], got {text}")
    return value


def _whole_number_at_least(minimum):
    """An argparse type: a whole number >= ``minimum`` (``1e4`` is accepted as 10000)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            number = _number(text) if text.strip().lower() not in ("nan", "inf", "-inf", "infinity") else None
            if number is None or not number.is_integer() or abs(number) > 2 ** 53:
                raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
            value = int(number)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text}")
        return value
    return parse


_positive_int = _whole_number_at_least(1)
_non_negative_int = _whole_number_at_least(0)
_finite_float = _float_in(float("-inf"), False, "a finite number")
_positive_float = _float_in(0.0, True, "a finite number > 0")
_non_negative_float = _float_in(0.0, False, "a finite number >= 0")

_progress_line_open = False                     # a progress line without its newline is on stderr


def _print_progress(step, steps, running_loss_over_p, steps_per_second):
    global _progress_line_open
    end = "\n" if step == steps else ""
    print(f"\r  step {step:>7d}/{steps}  running L/p {running_loss_over_p:.4f}  "
          f"{steps_per_second:7.0f} steps/s", end=end, file=sys.stderr, flush=True)
    _progress_line_open = not end


def _estimate(parts, what):
    """Refuse (naming the costliest flag) when the estimated bytes do not fit in memory."""
    from .core.validate import check_memory

    check_memory(parts, what)


TRAIN_FLAGS = {"p": "--p", "steps": "--steps", "batch_size": "--batch-size", "lr": "--lr",
               "weight_decay": "--weight-decay", "sigma": "--sigma", "sigma_init": "--sigma-init", "n": "--n",
               "d": "--d", "d_mlp": "--d-mlp", "rank": "--rank", "seed": "--seed", "embedding": "--embedding"}
DEFAULT_MAX_SAMPLES = 20_000_000          # evaluate's cap on samples per p with --target-stderr
EVALUATE_FLAGS = {"p": "--p", "n_samples": "--samples", "target_stderr": "--target-stderr", "max_samples": "--max-samples"}
SNMF_FLAGS = {"rank": "--rank", "d_mlp": "--d-mlp", "sigma": "--sigma", "max_iter": "--iterations", "n": "--n"}


def _check_train_flags(args):
    """Refuse flags that this combination would silently ignore; fill in the defaults of the others."""
    from .core.train import DEFAULT_CONFIG as D

    task = args.task or ("residual" if args.model == "residual" else D["task"])
    given = {flag: value is not None for flag, value in (("--mixing", args.mixing), ("--sigma", args.sigma),
                                                           ("--rank", args.rank), ("--sigma-init", args.sigma_init))}
    if task != "mixed":
        ignored = [flag for flag in ("--mixing", "--sigma", "--rank", "--sigma-init") if given[flag]]
        if args.learn_sigma:
            ignored.append("--learn-sigma")
        if ignored:
            raise ValueError(f"{', '.join(ignored)} only appl{'ies' if len(ignored) == 1 else 'y'} to --task mixed "
                             f"(the {task} task has no mixing matrix); drop {'it' if len(ignored) == 1 else 'them'} "
                             "or add --task mixed")
    if args.learn_sigma and given["--sigma"]:
        raise ValueError("--sigma is not used with --learn-sigma (σ is trained from --sigma-init); drop one of them")
    if not args.learn_sigma and given["--sigma-init"]:
        raise ValueError("--sigma-init only applies with --learn-sigma; use --sigma for a fixed σ")
    mixing = args.mixing or D["mixing"]
    if given["--rank"] and not mixing.startswith("lowrank"):
        raise ValueError(f"--rank only applies to --mixing lowrank or lowrank_orthonormal; the {mixing} M has "
                         "full rank")
    if args.eval_samples == 1:
        raise ValueError("--eval-samples must be 0 (no evaluation) or at least 2: no standard error from one sample")
    if args.checkpoint_every and args.checkpoint_every >= args.steps:
        raise ValueError(f"--checkpoint-every {args.checkpoint_every} is not below --steps {args.steps}, so no "
                         "checkpoint would ever be written; lower it or leave it at 0")
    for key in ("mixing", "sigma", "sigma_init"):
        if getattr(args, key) is None:
            setattr(args, key, D[key])


def _train_memory(config, eval_samples):
    """Estimated bytes of a training (and its evaluation), by the flag that drives each part."""
    n, d, d_mlp, batch = config["n"], config["d"], config["d_mlp"], config["batch_size"]
    residual = config["model"] == "residual"
    width = d if residual else n
    chunk = min(eval_samples, 65_536)
    parts = {"--steps": 8 * 3 * config["steps"],                       # loss (and σ) history, checkpoints
             "--batch-size": 8 * 6 * batch * n,
             "--d-mlp": 8 * 3 * (batch + chunk) * d_mlp + 8 * 6 * 2 * width * d_mlp,   # hidden units, AdamW
             "--n": 8 * 3 * n * n + 8 * 6 * chunk * n,                  # M (or the Gram matrix), evaluation
             "--d": 8 * 3 * (d * n + (batch + chunk) * d if residual else
                             d * n if config["mixing"].startswith("embedding") else 0)}   # W_E, the residual stream
    return parts


def _checkpoint_note(checkpoint, steps):
    if checkpoint and os.path.exists(checkpoint):
        from .core.storage import load_npz

        try:
            step = int(load_npz(checkpoint, required=("step",))["step"])
        except (ValueError, OSError):
            return "the checkpoint could not be read back; nothing else was written"
        return f"{checkpoint} holds step {step} of {steps}; rerun the same command to resume from it"
    return "nothing was written (--checkpoint-every N keeps progress to resume from)"


def add_train_parser(commands):
    from .core.data import EMBEDDINGS, MIXING_KINDS, TASKS
    from .core.train import DEFAULT_CONFIG as D, ENGINES

    parser = commands.add_parser(
        "train", help="train one model and write weights.npz, metrics.json, history.npz",
        description="Train the residual CC model or the simplified MLP with AdamW and a cosine schedule "
                    "(the paper's settings by default).")
    parser.add_argument("--model", choices=("mlp", "residual"), default=D["model"],
                        help="'mlp': ŷ = W_out ReLU(W_in x) on the features; 'residual': the CC model with "
                             "a fixed d-dim residual stream (default: %(default)s)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="labels: residual y = x + ReLU(x), clean y = ReLU(x), mixed y = ReLU(x) + σ M x "
                             "(default: residual for --model residual, else mixed)")
    parser.add_argument("--mixing", choices=MIXING_KINDS, default=None,
                        help=f"kind of the unscaled M for the mixed task (default: {D['mixing']})")
    parser.add_argument("--rank", type=_positive_int, default=None, help="rank of a low-rank M (default: n)")
    parser.add_argument("--sigma", type=_finite_float, default=None,
                        help=f"fixed mixing strength σ of the mixed task (default: {D['sigma']})")
    parser.add_argument("--learn-sigma", action="store_true",
                        help="train σ with the weights (starts at --sigma-init; the labels use |σ|)")
    parser.add_argument("--sigma-init", type=_finite_float, default=None,
                        help=f"starting σ with --learn-sigma (default: {D['sigma_init']})")
    parser.add_argument("--p", type=_probability, default=D["p"],
                        help="probability that a feature is active, in (0, 1] (default: %(default)s)")
    parser.add_argument("--steps", type=_positive_int, default=D["steps"], help="training steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=D["batch_size"],
                        help="samples per step (default: %(default)s)")
    parser.add_argument("--lr", type=_positive_float, default=D["lr"], help="peak learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=_non_negative_float, default=D["weight_decay"],
                        help="AdamW weight decay λ (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative_int, default=D["seed"],
                        help="seed of the matrix, data and initialisation streams (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=D["dtype"],
                        help="training precision (default: %(default)s)")
    parser.add_argument("--engine", choices=ENGINES, default=D["engine"],
                        help="'plain': the dense teaching loop; 'fast': the batched trainer of cc_numpy/core/fast "
                             "(default: %(default)s)")
    parser.add_argument("--embedding", choices=EMBEDDINGS, default=D["embedding"],
                        help="W_E of the residual model (and of the embedding mixing kinds): 'gaussian' (unit-norm "
                             "random columns, the CC model) or 'orthonormal' (W_EᵀW_E = I, so M = 0; needs d >= n) "
                             "(default: %(default)s)")
    parser.add_argument("--n", type=_positive_int, default=D["n"], help="features (default: %(default)s)")
    parser.add_argument("--d", type=_positive_int, default=D["d"],
                        help="residual width, for --model residual and the embedding mixing kinds (default: %(default)s)")
    parser.add_argument("--d-mlp", type=_positive_int, default=D["d_mlp"], help="neurons (default: %(default)s)")
    parser.add_argument("--out", default="runs/train", help="output directory (default: %(default)s)")
    parser.add_argument("--eval-samples", type=_non_negative_int, default=200_000,
                        help="samples (0 or >= 2) for the final L/p at the training p; 0 skips it "
                             "(default: %(default)s)")
    parser.add_argument("--checkpoint-every", type=_non_negative_int, default=0,
                        help="write out/checkpoint.npz every this many steps and resume from it (0: never)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run_train, flags=TRAIN_FLAGS)


def run_train(args):
    import numpy as np

    from .core.evaluate import MIN_EXPECTED_ACTIVE
    from .analyses.baselines import naive_loss_over_p
    from .core.runs import RUN_FILES, save_run
    from .core.storage import check_writable_files
    from .core.train import make_config
    from .core.validate import check_enough_active
    from .core.config import WEIGHT_KEYS
    from .pipeline.jobs import make_job, run_job

    _check_train_flags(args)
    overrides = dict(model=args.model, mixing=args.mixing, rank=args.rank, sigma=args.sigma,
                     learn_sigma=args.learn_sigma, sigma_init=args.sigma_init, p=args.p, steps=args.steps,
                     batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                     dtype=args.dtype, n=args.n, d=args.d, d_mlp=args.d_mlp, engine=args.engine,
                     embedding=args.embedding)
    if args.task is not None:
        overrides["task"] = args.task
    config = make_config(**overrides)
    if args.eval_samples:                                       # the final evaluation must be possible too
        check_enough_active(config["p"], args.eval_samples * config["n"], "--p",
                            f"--eval-samples {args.eval_samples} (use more, or 0 to skip the evaluation) "
                            f"samples of --n {config['n']} features", minimum=MIN_EXPECTED_ACTIVE)
    _estimate(_train_memory(config, args.eval_samples), "this training")
    check_writable_files(args.out, RUN_FILES)                   # fail before training, not after
    checkpoint = os.path.join(args.out, "checkpoint.npz") if args.checkpoint_every else None
    if not args.quiet:
        print(f"training {config['model']} on the {config['task']} task, p = {config['p']}, "
              f"{config['steps']} steps", file=sys.stderr)
    job = make_job(config, eval_ps=[config["p"]] if args.eval_samples else None,
                   min_samples=args.eval_samples or None, max_samples=args.eval_samples or None)
    try:
        result = run_job(job, progress=None if args.quiet else _print_progress, checkpoint_path=checkpoint,
                         checkpoint_every=max(args.checkpoint_every, 1))    # the job runner's own function
    except KeyboardInterrupt:
        raise _Interrupted(_checkpoint_note(checkpoint, config["steps"])) from None
    if not all(np.all(np.isfinite(result[k])) for k in ("W_E", "W_in", "W_out", "sigma") if k in result):
        from .core.config import divergence_hint

        raise NonFiniteLossError("training diverged in its last steps: the trained weights are not finite; "
                                 + divergence_hint(config, False))
    sigma = float(result["sigma"])
    metrics = {"config": job["config"], "seconds": float(result["seconds"]), "sigma": sigma,
               "final_loss_over_p_running": float(np.mean(result["history"][-100:]) / config["p"])}
    if args.eval_samples:
        evaluation = {"p": float(result["eval_p"][0]), "loss_over_p": float(result["eval_loss_over_p"][0]),
                      "stderr": float(result["eval_stderr"][0]), "n_samples": int(result["eval_n_samples"][0])}
        metrics["evaluation"] = evaluation
        print(f"L/p at p = {config['p']}: {evaluation['loss_over_p']:.5f} ± {evaluation['stderr']:.5f} "
              f"({evaluation['n_samples']} samples); clean-label naive {naive_loss_over_p(config['n'], config['d_mlp']):.5f}")
    params = {k: result[k] for k in WEIGHT_KEYS if k in result}
    save_run(args.out, params, result.get("M"), sigma, metrics, result["history"], result.get("sigma_history"))
    if checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    print(f"wrote {args.out}/weights.npz, metrics.json, history.npz ({float(result['seconds']):.1f} s)")


def add_evaluate_parser(commands):
    parser = commands.add_parser(
        "evaluate", help="L/p with standard errors at a list of p for a saved run",
        description="Monte Carlo L/p (mean squared error per feature divided by p) of a saved run, "
                    "on the labels it was trained on.")
    parser.add_argument("run", help="a run directory (or its weights.npz)")
    parser.add_argument("--p", type=_probability, nargs="+", default=[0.001, 0.01, 0.1, 1.0],
                        help="evaluation probabilities in (0, 1] (default: %(default)s)")
    parser.add_argument("--samples", type=_whole_number_at_least(2), default=200_000,
                        help="samples per p, at least 2 (the minimum with --target-stderr) (default: %(default)s)")
    parser.add_argument("--target-stderr", type=_positive_float, default=None,
                        help="keep sampling until the standard error of L/p is at most this (a warning says "
                             "when --max-samples is reached first)")
    parser.add_argument("--max-samples", type=_whole_number_at_least(2), default=None,
                        help=f"the cap on samples per p with --target-stderr, at least --samples (default: "
                             f"{DEFAULT_MAX_SAMPLES})")
    parser.add_argument("--seed", type=_non_negative_int, default=None,
                        help="seed of the evaluation stream (default: the run's training seed, so that the "
                             "evaluation `train` made is reproduced)")
    parser.add_argument("--out", default=None, help="also write the numbers to this JSON file")
    parser.set_defaults(func=run_evaluate, flags=EVALUATE_FLAGS)


def run_evaluate(args):
    import numpy as np

    from .analyses.baselines import naive_loss_over_p
    from .core.data import random_streams
    from .core.evaluate import MIN_EXPECTED_ACTIVE, loss_over_p
    from .core.runs import RUN_FILES, load_run, run_folder
    from .core.storage import check_writable_file, save_json
    from .core.validate import check_enough_active

    folder = run_folder(args.run)
    if args.out is not None:                                    # never over the run it reads
        if not args.out.lower().endswith(".json"):
            raise ValueError(f"--out must name a .json file, got {args.out!r}")
        own = {os.path.realpath(os.path.join(folder, name)): name for name in RUN_FILES}
        if os.path.realpath(args.out) in own:
            raise ValueError(f"--out {args.out} would overwrite the run's own {own[os.path.realpath(args.out)]}; "
                             "choose another file")
    params, M, sigma, metrics = load_run(args.run)
    if not os.path.exists(os.path.join(folder, "metrics.json")):
        print(f"warning: {folder} has no metrics.json (a training that was interrupted while saving?); "
              f"scoring it on the {metrics['config']['task']} task, its model's usual one", file=sys.stderr)
    task = metrics["config"]["task"]
    n = params["W_E"].shape[1] if "W_E" in params else params["W_in"].shape[1]
    if args.max_samples is not None and args.target_stderr is None:
        raise ValueError("--max-samples only applies with --target-stderr (without it every p gets --samples)")
    cap = max(DEFAULT_MAX_SAMPLES, args.samples) if args.max_samples is None else args.max_samples
    if args.target_stderr is not None and cap < args.samples:
        raise ValueError(f"--max-samples {cap} is below --samples {args.samples}, the samples every p gets first")
    budget = max(args.samples, cap) if args.target_stderr is not None else args.samples
    for p in args.p:                                            # refuse every p before evaluating any
        check_enough_active(p, budget * n, "--p", f"{budget} samples (--samples) of the run's {n} features",
                            minimum=MIN_EXPECTED_ACTIVE)
    chunk = min(budget, 65_536)
    width = params["W_E"].shape[0] if "W_E" in params else 0
    _estimate({"--samples": 8 * 6 * chunk * (n + width), "the run's size": 8 * 3 * (n * n + width * n)},
              "this evaluation")
    if args.out:
        check_writable_file(args.out)
    seed = metrics["config"].get("seed", 0) if args.seed is None else args.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CorruptFileError(f"{folder}/metrics.json: config 'seed' must be a whole number >= 0, got {seed!r} "
                               "(or give --seed)")
    rng = random_streams(seed)["eval"]                          # the named stream every evaluation uses
    rows = []
    for index, p in enumerate(args.p):                          # long work shows progress (on stderr)
        print(f"  evaluating p = {p:g} ({index + 1} of {len(args.p)}) …", file=sys.stderr, flush=True)
        rows.append(loss_over_p(params, p, rng, task=task, M=M, sigma=sigma, n_samples=args.samples,
                                target_stderr=args.target_stderr, max_samples=cap))
    for row in rows:
        if not np.isfinite(row["loss_over_p"]):
            raise ValueError(f"L/p at p = {row['p']:g} is {row['loss_over_p']}: the weights in {args.run} are "
                             "too large for float64 (the outputs overflow)")
    print(f"{'p':>10s} {'L/p':>10s} {'stderr':>10s} {'samples':>10s}   (task {task}, clean-label naive "
          f"{naive_loss_over_p(n, params['W_in'].shape[0]):.5f})")
    for row in rows:
        print(f"{row['p']:10.4g} {row['loss_over_p']:10.5f} {row['stderr']:10.5f} {row['n_samples']:10d}")
    for row in rows:
        if row["n_active"] < 2:
            print(f"warning: at p = {row['p']:g} fewer than two samples held an active feature, so there is no "
                  "standard error; use more --samples or a larger --p", file=sys.stderr)
        elif row["target_met"] is False:
            print(f"warning: at p = {row['p']:g} the standard error reached {row['stderr']:.3g}, above "
                  f"--target-stderr {args.target_stderr:g}, when --max-samples {cap} was reached",
                  file=sys.stderr)
    if args.out:
        columns = {key: [row[key] for row in rows]
                   for key in ("p", "loss_over_p", "stderr", "n_samples", "n_active", "target_met")}
        save_json(args.out, {"run": args.run, "task": task, "target_stderr": args.target_stderr, **columns})


def _add_scale_flags(parser):
    parser.add_argument("--scale", choices=("paper", "quick", "test"), default=None,
                        help="preset scale (default: paper)")
    parser.add_argument("--seeds", type=_positive_int, default=None,
                        help="training seeds per model (default: the scale's: 3 at paper scale, 1 quick)")
    parser.add_argument("--steps", type=_positive_int, default=None, help="training steps per model")
    parser.add_argument("--eval-points", type=_positive_int, default=None, help="number of evaluation p's")
    parser.add_argument("--sigma-points", type=_positive_int, default=None, help="number of σ values")
    parser.add_argument("--target-stderr", type=_positive_float, default=None,
                        help="standard error of L/p each evaluation samples down to")
    parser.add_argument("--workers", type=_positive_int, default=2,
                        help="parallel training processes, one BLAS thread each (default: %(default)s)")
    parser.add_argument("--first-seed", type=_non_negative_int, default=0,
                        help="the seeds are FIRST_SEED, FIRST_SEED + 1, … (default: 0)")


_SCALE_FLAGS = ("seeds", "steps", "eval_points", "sigma_points", "target_stderr")


def _scale_from(args):
    from .pipeline.scale import make_scale

    overrides = {key: getattr(args, key) for key in _SCALE_FLAGS if getattr(args, key) is not None}
    if "target_stderr" in overrides and overrides["target_stderr"] <= 0:
        raise ValueError(f"--target-stderr must be > 0, got {overrides['target_stderr']}")
    base = args.scale or "paper"
    name = base + (" (with overrides)" if overrides else "")
    return make_scale(base, **overrides), name


def add_experiment_parsers(commands):
    """One command per experiment module (cc_numpy/experiments/NAME.py), named NAME with hyphens."""
    from .experiments import EXPERIMENTS, command_name

    for name, module in EXPERIMENTS.items():
        parser = commands.add_parser(command_name(name), help=module.HELP,
                                     description=module.HELP + f". Writes figures/{name}.png, numbers/{name}.json "
                                     "(every plotted number), REPORT.md and a cache of trained models into --out.")
        parser.add_argument("--out", default=f"runs/{name}", help="output directory (default: %(default)s)")
        _add_scale_flags(parser)
        parser.set_defaults(func=run_experiment_command, experiment=name)


PIPELINE_FLAGS = {"seeds": "--seeds", "steps": "--steps", "eval_points": "--eval-points",
                  "sigma_points": "--sigma-points", "first_seed": "--first-seed"}


def _check_pipeline(args, scale, names):
    """Before any training: the seeds, the plan and the workers fit in memory, then the output folders can be written."""
    from .core.storage import check_writable, check_writable_files
    from .experiments import resolve
    from .reproduce import check_size

    names = [resolve(name) for name in names]
    plan = check_size(scale, names, args.first_seed, flags=PIPELINE_FLAGS)
    _estimate({"--workers": 300_000_000 * args.workers, "the plan (--seeds, --sigma-points, …)": plan},
              f"{args.workers} worker processes and the plan")
    check_writable_files(args.out, ("REPORT.md", "timings.json"))
    check_writable(os.path.join(args.out, "cache"))
    check_writable_files(os.path.join(args.out, "numbers"), [f"{name}.json" for name in names])
    check_writable_files(os.path.join(args.out, "figures"), [f"{name}.png" for name in names])


def run_experiment_command(args):
    from .reproduce import reproduce

    scale, scale_name = _scale_from(args)                       # flags first, then the output folders
    _check_pipeline(args, scale, [args.experiment])
    reproduce(args.out, scale=scale, only=args.experiment, workers=args.workers, first_seed=args.first_seed,
              scale_name=scale_name)


def add_reproduce_parser(commands):
    from .experiments import EXPERIMENTS, command_name

    names = [command_name(name) for name in EXPERIMENTS]
    parser = commands.add_parser(
        "reproduce", help="every experiment, every figure and REPORT.md (claims beside our numbers)",
        description="Reproduce the paper: trains every model (cached, in parallel), writes figures/, numbers/ "
                    "and REPORT.md into --out. Interrupt and rerun at will: finished trainings are kept.")
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced scale, one seed: every figure's story in about a minute (same as --scale quick)")
    parser.add_argument("--paper-only", action="store_true",
                        help="only the experiments of the paper's figures, not the three beyond it")
    parser.add_argument("--only", action="append", choices=names + [n.replace("-", "_") for n in names if "-" in n],
                        default=None, metavar="EXPERIMENT",
                        help=f"run only this experiment (repeatable): {', '.join(names)}")
    _add_scale_flags(parser)
    parser.set_defaults(func=run_reproduce)


def run_reproduce(args):
    from .reproduce import reproduce

    if args.quick:
        if args.scale not in (None, "quick"):
            raise ValueError("--quick and --scale disagree: give one of them")
        args.scale = "quick"
    only = args.only
    if args.paper_only:
        from .experiments import paper_experiments

        if only:
            raise ValueError("--paper-only and --only disagree: give one of them")
        only = paper_experiments()
    scale, scale_name = _scale_from(args)
    from .experiments import EXPERIMENTS

    _check_pipeline(args, scale, only or list(EXPERIMENTS))
    reproduce(args.out, scale=scale, only=only, workers=args.workers, first_seed=args.first_seed,
              scale_name=scale_name)


def add_snmf_parser(commands):
    from .core.data import MIXING_KINDS

    parser = commands.add_parser(
        "snmf", help="build the semi-NMF baseline MLP from a mixing matrix alone",
        description="Factorise the target I + σM (or the authors' I + σMᵀ) as W_out W_in with W_in ≥ 0 by "
                    "semi-NMF and write it like a trained run: weights.npz (W_in, W_out, M, sigma), metrics.json.")
    parser.add_argument("--mixing", choices=MIXING_KINDS, default="asymmetric", help="kind of M (default: %(default)s)")
    parser.add_argument("--sigma", type=_finite_float, default=0.01, help="mixing strength σ (default: %(default)s)")
    parser.add_argument("--target", choices=("ours", "authors"), default="ours",
                        help="ours: I + σM; authors: I + σMᵀ (default: %(default)s)")
    parser.add_argument("--rank", type=_positive_int, default=None, help="rank of a low-rank M")
    parser.add_argument("--d-mlp", type=_positive_int, default=50, help="neurons = factor rank (default: 50)")
    parser.add_argument("--n", type=_positive_int, default=100, help="features (default: 100)")
    parser.add_argument("--iterations", type=_positive_int, default=5000, help="semi-NMF iterations (default: 5000)")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="seed: M is drawn as in a training run with this seed (default: 0)")
    parser.add_argument("--out", default="runs/snmf", help="output directory (default: %(default)s)")
    parser.set_defaults(func=run_snmf, flags=SNMF_FLAGS)


def run_snmf(args):

    from .analyses.baselines import snmf_baseline
    from .core.data import mixing_matrix, random_streams
    from .core.runs import save_run
    from .analyses.small_p import small_p_loss
    from .analyses.baselines import naive_loss_over_p

    from .core.runs import RUN_FILES
    from .core.storage import check_writable_files

    if args.rank is not None and not args.mixing.startswith("lowrank"):
        raise ValueError(f"--rank only applies to --mixing lowrank or lowrank_orthonormal; the {args.mixing} M "
                         "has full rank")
    if args.d_mlp > args.n:
        raise ValueError(f"--d-mlp must be at most --n = {args.n} (the factor rank), got {args.d_mlp}")
    _estimate({"--n": 8 * 10 * args.n ** 2, "--d-mlp": 8 * 8 * args.n * args.d_mlp,
               "--iterations": 40 * args.iterations}, "this factorisation")
    check_writable_files(args.out, RUN_FILES)
    M = mixing_matrix(args.mixing, args.n, random_streams(args.seed)["matrix"], rank=args.rank)
    built = snmf_baseline(M, args.sigma, random_streams(args.seed)["analysis"], d_mlp=args.d_mlp,
                          target=args.target, max_iter=args.iterations)
    params = {"W_in": built["W_in"], "W_out": built["W_out"]}
    naive = naive_loss_over_p(args.n, args.d_mlp)
    metrics = {"mixing": args.mixing, "sigma": args.sigma, "target": args.target, "seed": args.seed,
               "config": {"task": "mixed"}, "iterations": args.iterations,
               "small_p_loss_over_p": float(built["small_p_loss_over_p"]),
               "naive_small_p_loss_over_p": naive,
               "clean_label_small_p_loss_over_p": float(small_p_loss(built["W_in"], built["W_out"]))}
    save_run(args.out, params, M, args.sigma, metrics)
    print(f"SNMF baseline ({args.target} target, {args.mixing} M, σ = {args.sigma}): exact p→0 L/p "
          f"{metrics['small_p_loss_over_p']:.5f} (naive {naive:.5f}); wrote {args.out}/weights.npz, metrics.json")


COMMANDS = [add_train_parser, add_evaluate_parser, add_reproduce_parser, add_experiment_parsers, add_snmf_parser]


def build_parser():
    parser = _Parser(
        prog="python -m cc_numpy",
        description="cc_numpy: the Compressed Computation toy model and its mixing-matrix explanation, in NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def _message(error, flags):
    """One line for a user error: OSError without its errno prefix, config keys named as the flags."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    elif isinstance(error, MemoryError):
        text = f"out of memory ({str(error) or 'an allocation failed'}); lower the sizes this command was given"
    else:
        text = str(error) or type(error).__name__
    for key, flag in (flags or {}).items():
        text = re.sub(rf"(?<![\w.-]){re.escape(key)}(?= (must|=|in \[|applies|is))", flag, text)
    return " ".join(text.split())                               # one line


def _first_interrupt(signum, frame):
    """A stop signal: stop the command; another one while it cleans up changes nothing (no second traceback)."""
    global _stop_signal
    _set_stop_handlers(signal.SIG_IGN)
    _stop_signal = signum
    raise KeyboardInterrupt


def main(argv=None):
    global _progress_line_open, _stop_signal
    import numpy as np

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = _set_stop_handlers(_note_interrupt) if in_main_thread else None
    args = None
    try:
        args = build_parser().parse_args(argv)
        if in_main_thread:
            _set_stop_handlers(_first_interrupt)
        if _stop_signal:
            raise KeyboardInterrupt
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # non-finite results are checked
            args.func(args)
    except KeyboardInterrupt as interrupt:
        kept = getattr(interrupt, "kept", None)
        if kept is None:                                        # evaluate, snmf: nothing to resume from
            kept = "files already written are complete, nothing was half-written; rerun the same command to start over"
        elif not isinstance(interrupt, _Interrupted):           # e.g. jobs.JobsInterrupted: '3 of 8 trainings …'
            kept += "; rerun the same command to resume"
        print(("\n" if _progress_line_open else "") + f"interrupted: {kept}", file=sys.stderr)
        return 128 + int(_stop_signal or signal.SIGINT)         # 130 for Ctrl-C, 143 for SIGTERM
    except USER_ERRORS as error:
        print(("\n" if _progress_line_open else "") + f"error: {_message(error, getattr(args, 'flags', None))}",
              file=sys.stderr)
        return 2
    finally:
        _progress_line_open, _stop_signal = False, None
        if in_main_thread:
            for signum, handler in zip(STOP_SIGNALS, previous):
                signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    status = main()
    _set_stop_handlers(signal.SIG_IGN)                         # a late Ctrl-C must not kill the exit itself
    sys.exit(status)
