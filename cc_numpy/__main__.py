"""The command line: ``python -m cc_numpy COMMAND [flags]`` (``--help`` on each command).

It only parses flags, builds configs and calls library functions. Bad input
prints ``error: …`` on stderr and exits with status 2, without a traceback.
"""

import argparse
import os
import sys

from .core.runtime import keep_freed_memory

keep_freed_memory()             # freed (B, n) temporaries stay in the heap (see runtime.py)

from .core.storage import CorruptFileError  # noqa: E402
from .core.train import NonFiniteLossError  # noqa: E402

USER_ERRORS = (ValueError, TypeError, OSError, CorruptFileError, NonFiniteLossError)


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; p must be in (0, 1]") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"p must be in (0, 1], got {text}")
    return value


def _whole_number_at_least(minimum):
    """An argparse type: a whole number >= ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text}")
        return value
    return parse


_positive_int = _whole_number_at_least(1)
_non_negative_int = _whole_number_at_least(0)


def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _print_progress(step, steps, running_loss_over_p, steps_per_second):
    end = "\n" if step == steps else ""
    print(f"\r  step {step:>7d}/{steps}  running L/p {running_loss_over_p:.4f}  "
          f"{steps_per_second:7.0f} steps/s", end=end, file=sys.stderr, flush=True)


def add_train_parser(commands):
    from .core.data import MIXING_KINDS, TASKS
    from .core.train import DEFAULT_CONFIG as D

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
    parser.add_argument("--mixing", choices=MIXING_KINDS, default=D["mixing"],
                        help="kind of the unscaled M for the mixed task (default: %(default)s)")
    parser.add_argument("--rank", type=_positive_int, default=None, help="rank of a low-rank M (default: n)")
    parser.add_argument("--sigma", type=_finite_float, default=D["sigma"],
                        help="mixing scale σ of the mixed task (default: %(default)s)")
    parser.add_argument("--learn-sigma", action="store_true",
                        help="train σ with the weights (starts at --sigma-init; the labels use |σ|)")
    parser.add_argument("--sigma-init", type=_finite_float, default=D["sigma_init"],
                        help="starting σ when learned (default: %(default)s)")
    parser.add_argument("--p", type=_probability, default=D["p"],
                        help="probability that a feature is active, in (0, 1] (default: %(default)s)")
    parser.add_argument("--steps", type=_positive_int, default=D["steps"], help="training steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=_positive_int, default=D["batch_size"],
                        help="samples per step (default: %(default)s)")
    parser.add_argument("--lr", type=_finite_float, default=D["lr"], help="peak learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=_finite_float, default=D["weight_decay"],
                        help="AdamW weight decay λ (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative_int, default=D["seed"],
                        help="seed of the matrix, data and initialisation streams (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=D["dtype"],
                        help="training precision (default: %(default)s)")
    parser.add_argument("--n", type=_positive_int, default=D["n"], help="features (default: %(default)s)")
    parser.add_argument("--d", type=_positive_int, default=D["d"], help="residual width (default: %(default)s)")
    parser.add_argument("--d-mlp", type=_positive_int, default=D["d_mlp"], help="neurons (default: %(default)s)")
    parser.add_argument("--out", default="runs/train", help="output directory (default: %(default)s)")
    parser.add_argument("--eval-samples", type=_non_negative_int, default=200_000,
                        help="samples for the final L/p at the training p; 0 skips it (default: %(default)s)")
    parser.add_argument("--checkpoint-every", type=_non_negative_int, default=0,
                        help="write out/checkpoint.npz every this many steps and resume from it (0: never)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run_train)


def run_train(args):
    import numpy as np

    from .core.evaluate import loss_over_p
    from .core.runs import save_run
    from .core.train import make_config, train

    overrides = dict(model=args.model, mixing=args.mixing, rank=args.rank, sigma=args.sigma,
                     learn_sigma=args.learn_sigma, sigma_init=args.sigma_init, p=args.p, steps=args.steps,
                     batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                     dtype=args.dtype, n=args.n, d=args.d, d_mlp=args.d_mlp)
    if args.task is not None:
        overrides["task"] = args.task
    config = make_config(**overrides)
    os.makedirs(args.out, exist_ok=True)                        # fail before training, not after
    checkpoint = os.path.join(args.out, "checkpoint.npz") if args.checkpoint_every else None
    if not args.quiet:
        print(f"training {config['model']} on the {config['task']} task, p = {config['p']}, "
              f"{config['steps']} steps", file=sys.stderr)
    result = train(config, progress=None if args.quiet else _print_progress, checkpoint_path=checkpoint,
                   checkpoint_every=max(args.checkpoint_every, 1))
    metrics = {"config": result["config"], "seconds": result["seconds"],
               "steps_per_second": result["steps_per_second"], "sigma": result["sigma"],
               "final_loss_over_p_running": float(np.mean(result["history"][-100:]) / config["p"])}
    if args.eval_samples:
        params64 = {k: v.astype(np.float64) for k, v in result["params"].items() if k != "sigma"}
        evaluation = loss_over_p(params64, config["p"], np.random.default_rng([config["seed"], 1]),
                                 task=config["task"], M=result["M"], sigma=result["sigma"],
                                 n_samples=args.eval_samples)
        metrics["evaluation"] = evaluation
        print(f"L/p at p = {config['p']}: {evaluation['loss_over_p']:.5f} ± {evaluation['stderr']:.5f} "
              f"({evaluation['n_samples']} samples); naive 1/12 = {1 / 12:.5f}")
    save_run(args.out, result["params"], result["M"], result["sigma"], metrics,
             result["history"], result["sigma_history"])
    if checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    print(f"wrote {args.out}/weights.npz, metrics.json, history.npz ({result['seconds']:.1f} s of training)")


def add_evaluate_parser(commands):
    parser = commands.add_parser(
        "evaluate", help="L/p with standard errors at a list of p for a saved run",
        description="Monte Carlo L/p (mean squared error per feature divided by p) of a saved run, "
                    "on the labels it was trained on.")
    parser.add_argument("run", help="a run directory (or its weights.npz)")
    parser.add_argument("--p", type=_probability, nargs="+", default=[0.001, 0.01, 0.1, 1.0],
                        help="evaluation probabilities in (0, 1] (default: %(default)s)")
    parser.add_argument("--samples", type=_positive_int, default=200_000,
                        help="samples per p (the minimum with --target-stderr) (default: %(default)s)")
    parser.add_argument("--target-stderr", type=_finite_float, default=None,
                        help="keep sampling until the standard error of L/p is at most this")
    parser.add_argument("--seed", type=_non_negative_int, default=1, help="evaluation seed (default: %(default)s)")
    parser.add_argument("--out", default=None, help="also write the numbers to this JSON file")
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args):
    import numpy as np

    from .core.evaluate import loss_over_p_curve
    from .core.runs import load_run
    from .core.storage import save_json

    params, M, sigma, metrics = load_run(args.run)
    task = metrics.get("config", {}).get("task", "mixed" if M is not None else "clean")
    if args.target_stderr is not None and args.target_stderr <= 0:
        raise ValueError(f"--target-stderr must be > 0, got {args.target_stderr}")
    curve = loss_over_p_curve(params, args.p, np.random.default_rng(args.seed), task=task, M=M, sigma=sigma,
                              n_samples=args.samples, target_stderr=args.target_stderr)
    print(f"{'p':>10s} {'L/p':>10s} {'stderr':>10s} {'samples':>10s}   (task {task}, naive 1/12 = {1 / 12:.5f})")
    for p, value, err, count in zip(curve["p"], curve["loss_over_p"], curve["stderr"], curve["n_samples"]):
        print(f"{p:10.4g} {value:10.5f} {err:10.5f} {count:10d}")
    if args.out:
        save_json(args.out, {"run": args.run, "task": task, **{k: v.tolist() for k, v in curve.items()}})


EXPERIMENT_COMMANDS = {
    "seeds": ("seeds", "the residual CC model and the clean-task MLP at the paper's settings, three seeds"),
    "mixing-types": ("mixing_types", "L/p over evaluation p for models trained on clean, embedding-like, "
                                     "asymmetric and symmetric M (and the residual CC model)"),
    "sigma-sweep": ("sigma_sweep", "L/p at p = 0.01 against σ for symmetric and asymmetric M"),
    "finetune": ("finetune", "train with asymmetric M, then fine-tune with M = 0: the loss trace"),
    "sparsity-regimes": ("sparsity_regimes", "models trained at p from 0.001 to 1, each evaluated across p, "
                                             "and their input-output behaviour"),
    "baselines": ("baselines", "naive and naive + offset, analytic and Monte Carlo, and the optimal offset"),
    "eigen": ("eigen", "eigen-analysis of a model trained 20k steps on asymmetric σ = 0.03"),
    "small-p": ("small_p", "exact p -> 0 loss against Monte Carlo, and the noise-free small-p optimum"),
    "snmf-sweep": ("snmf", "SNMF baselines (both targets) against trained models, L/p against σ"),
    "low-rank": ("low_rank", "learned σ with low-rank M = U Vᵀ of ranks 10 to 100"),
}


def _add_scale_flags(parser):
    parser.add_argument("--scale", choices=("paper", "quick", "test"), default="paper",
                        help="preset scale (default: %(default)s, the paper's)")
    parser.add_argument("--steps", type=_positive_int, default=None, help="training steps per model")
    parser.add_argument("--eval-points", type=_positive_int, default=None, help="number of evaluation p's")
    parser.add_argument("--sigma-points", type=_positive_int, default=None, help="number of σ values")
    parser.add_argument("--target-stderr", type=_finite_float, default=None,
                        help="standard error of L/p each evaluation samples down to")
    parser.add_argument("--workers", type=_positive_int, default=2,
                        help="parallel training processes, one BLAS thread each (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every training (default: 0)")


def _scale_from(args):
    from .experiments import make_scale

    overrides = {key: value for key, value in (("steps", args.steps), ("eval_points", args.eval_points),
                                               ("sigma_points", args.sigma_points),
                                               ("target_stderr", args.target_stderr)) if value is not None}
    if "target_stderr" in overrides and overrides["target_stderr"] <= 0:
        raise ValueError(f"--target-stderr must be > 0, got {overrides['target_stderr']}")
    return make_scale(args.scale, **overrides)


def add_experiment_parsers(commands):
    for command, (name, text) in EXPERIMENT_COMMANDS.items():
        parser = commands.add_parser(command, help=text, description=text + ". Writes NAME.png, NAME.json "
                                     "(every plotted number) and a cache of trained models into --out.")
        parser.add_argument("--out", default=f"runs/{name}", help="output directory (default: %(default)s)")
        _add_scale_flags(parser)
        parser.set_defaults(func=run_experiment_command, experiment=name)


def run_experiment_command(args):
    from .reproduce import reproduce

    changed = any(getattr(args, key) is not None for key in ("steps", "eval_points", "sigma_points", "target_stderr"))
    reproduce(args.out, scale=_scale_from(args), only=args.experiment, workers=args.workers, seed=args.seed,
              scale_name=args.scale + (" (with overrides)" if changed else ""))


def add_reproduce_parser(commands):
    parser = commands.add_parser(
        "reproduce", help="every experiment, every figure and REPORT.md (claims beside our numbers)",
        description="Reproduce the paper: trains every model (cached, in parallel), writes figures/, numbers/ "
                    "and REPORT.md into --out. Interrupt and rerun at will: finished trainings are kept.")
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="reduced scale: every figure's story in minutes")
    parser.add_argument("--only", choices=[name for name, _ in EXPERIMENT_COMMANDS.values()], default=None,
                        help="run one experiment")
    parser.add_argument("--workers", type=_positive_int, default=2,
                        help="parallel training processes, one BLAS thread each (default: %(default)s)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every training (default: 0)")
    parser.set_defaults(func=run_reproduce)


def run_reproduce(args):
    from .reproduce import reproduce

    reproduce(args.out, scale="quick" if args.quick else "paper", only=args.only, workers=args.workers,
              seed=args.seed)


def add_snmf_parser(commands):
    from .core.data import MIXING_KINDS

    parser = commands.add_parser(
        "snmf", help="build the semi-NMF baseline MLP from a mixing matrix alone",
        description="Factorise the target I + σM (or the authors' I + σMᵀ) as W_out W_in with W_in ≥ 0 by "
                    "semi-NMF and write it like a trained run: weights.npz (W_in, W_out, M, sigma), metrics.json.")
    parser.add_argument("--mixing", choices=MIXING_KINDS, default="asymmetric", help="kind of M (default: %(default)s)")
    parser.add_argument("--sigma", type=_finite_float, default=0.01, help="mixing scale σ (default: %(default)s)")
    parser.add_argument("--target", choices=("ours", "authors"), default="ours",
                        help="ours: I + σM; authors: I + σMᵀ (default: %(default)s)")
    parser.add_argument("--rank", type=_positive_int, default=None, help="rank of a low-rank M")
    parser.add_argument("--d-mlp", type=_positive_int, default=50, help="neurons = factor rank (default: 50)")
    parser.add_argument("--n", type=_positive_int, default=100, help="features (default: 100)")
    parser.add_argument("--iterations", type=_positive_int, default=5000, help="semi-NMF iterations (default: 5000)")
    parser.add_argument("--seed", type=_non_negative_int, default=0,
                        help="seed: M is drawn as in a training run with this seed (default: 0)")
    parser.add_argument("--out", default="runs/snmf", help="output directory (default: %(default)s)")
    parser.set_defaults(func=run_snmf)


def run_snmf(args):
    import numpy as np

    from .analyses.baselines import snmf_baseline
    from .core.data import mixing_matrix, random_streams
    from .core.runs import save_run
    from .analyses.small_p import small_p_loss

    M = mixing_matrix(args.mixing, args.n, random_streams(args.seed)["matrix"], rank=args.rank)
    built = snmf_baseline(M, args.sigma, np.random.default_rng([args.seed, 17]), d_mlp=args.d_mlp,
                          target=args.target, max_iter=args.iterations)
    params = {"W_in": built["W_in"], "W_out": built["W_out"]}
    naive = (args.n - args.d_mlp) / (6 * args.n)
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
    parser = argparse.ArgumentParser(
        prog="python -m cc_numpy",
        description="cc_numpy: the Compressed Computation toy model and its mixing-matrix explanation, in NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished files are complete, unfinished ones were not written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
