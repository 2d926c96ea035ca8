"""The experiments: one module per figure, each holding everything about it.

An experiment module ``NAME.py`` defines

    ORDER                          its place in REPORT.md and in ``reproduce``
    HELP                           one line for ``python -m cc_numpy NAME-with-hyphens --help``
    jobs(scale, seeds)             -> the trainings it needs (job dicts of ``pipeline.jobs``)
    numbers(results, scale, seeds) -> a plain JSON-able dict of every plotted number;
                                      ``results[job]`` looks a training up by what it is
    plot(numbers, path)            -> a PNG (drawn through ``pipeline.plotting``)
    CLAIMS                         what the paper says, with its value and source (``pipeline.claims``)
    CHECKS                         our own measurements, with their own expectations
    table(numbers)                 optional: extra markdown lines for REPORT.md
    BEYOND_THE_PAPER               optional, True for experiments the paper leaves open
    PER_SEED                       optional: the keys of ``numbers`` that hold one entry per seed
                                   (a list, or a dict of lists, with seeds as the first axis) when
                                   every other key is the same for any seeds; ``reproduce`` then
                                   analyses each seed on its own, in parallel (:func:`combine_seeds`)

The registry below finds the modules on disk, so adding an experiment is one new
file (and its chapter). The command-line name of an experiment is its module name
with hyphens (``sigma_sweep`` -> ``sigma-sweep``); ``--only`` takes either spelling.
"""

import importlib
import pkgutil

from ..pipeline.jobs import job_key, make_job

REQUIRED = ("ORDER", "HELP", "jobs", "numbers", "plot", "CLAIMS", "CHECKS")


def _discover():
    modules = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [name for name in REQUIRED if not hasattr(module, name)]
        if missing:
            raise ImportError(f"experiment module {module.__name__} lacks {missing}")
        modules[info.name] = module
    return dict(sorted(modules.items(), key=lambda item: item[1].ORDER))



def analysis_units(name, scale, seeds):
    """How ``reproduce`` analyses an experiment: a list of (jobs, seeds) units, one per seed if it has
    ``PER_SEED`` (then :func:`combine_seeds` joins their numbers), else one for all seeds."""
    module = EXPERIMENTS[name]
    if hasattr(module, "PER_SEED") and len(seeds) > 1:
        return [(module.jobs(scale, [seed]), [seed]) for seed in seeds]
    return [(module.jobs(scale, seeds), list(seeds))]


def combine_seeds(name, per_seed, seeds):
    """One experiment's numbers for ``seeds`` from its numbers for each seed alone (``PER_SEED`` keys joined)."""
    if len(per_seed) == 1:
        return per_seed[0]
    combined = dict(per_seed[0], seeds=list(seeds))
    for key in EXPERIMENTS[name].PER_SEED:
        first = per_seed[0][key]
        if isinstance(first, dict):
            combined[key] = {sub: [row for numbers in per_seed for row in numbers[key][sub]] for sub in first}
        else:
            combined[key] = [row for numbers in per_seed for row in numbers[key]]
    return combined


def paper_experiments():
    """The names of the experiments that reproduce the paper's figures (``reproduce --paper-only``)."""
    return [name for name, module in EXPERIMENTS.items() if not getattr(module, "BEYOND_THE_PAPER", False)]


def command_name(name):
    """The command-line spelling of an experiment: ``sigma_sweep`` -> ``sigma-sweep``."""
    return name.replace("_", "-")


def resolve(name):
    """An experiment's module name from either spelling; a clear error for anything else."""
    key = name.replace("-", "_")
    if key not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(map(command_name, EXPERIMENTS))}")
    return key


class Results:
    """Trained results looked up by their job: ``results[job]`` (never by position)."""

    def __init__(self, by_key):
        self.by_key = by_key

    def __getitem__(self, job):
        return self.by_key[job_key(job)]


def job(scale, seed, eval_ps, eval_task=None, init_from=None, **config):
    """A training at this scale's steps and batch size, evaluated at ``eval_ps`` to the scale's precision."""
    config = dict({"steps": scale["steps"], "batch_size": scale["batch_size"], "seed": seed}, **config)
    return make_job(config, init_from=init_from, eval_ps=eval_ps, eval_task=eval_task,
                    target_stderr=scale["target_stderr"], min_samples=scale["min_samples"],
                    max_samples=scale["max_samples"])


def at_p(result, p):
    """(L/p, stderr) of an evaluated result at the evaluation p equal to ``p``."""
    index = int(abs(result["eval_p"] - p).argmin())
    if abs(result["eval_p"][index] - p) > 1e-12 * max(p, 1e-300):
        raise KeyError(f"the result was not evaluated at p = {p}")
    return float(result["eval_loss_over_p"][index]), float(result["eval_stderr"][index])


def run_experiment(name, scale=None, seeds=(0,), runner=None):
    """Numbers of one experiment. ``runner(jobs) -> results`` defaults to serial, uncached ``run_jobs``."""
    from ..pipeline.jobs import run_jobs
    from ..pipeline.scale import PAPER

    module = EXPERIMENTS[resolve(name)]
    scale = PAPER if scale is None else scale
    jobs = module.jobs(scale, list(seeds))
    results = (runner or run_jobs)(jobs) if jobs else []
    return module.numbers(Results({job_key(j): r for j, r in zip(jobs, results)}), scale, list(seeds))


EXPERIMENTS = _discover()          # last: the modules import the helpers above
