"""The whole paper in one call: every experiment's trainings, numbers, figures and REPORT.md.

    reproduce(out_dir, scale="paper" | "quick" | "test" | a scale dict, only=None, workers=2)

1. The jobs of every chosen experiment (``experiments.EXPERIMENTS``) are gathered
   and deduplicated by key: the SNMF figure reuses the σ sweep's models, the
   small-p check the eigen model, the seeds figure the mixing-types models.
2. ``pipeline.jobs.run_jobs`` trains what the cache ``out_dir/cache`` lacks, in
   ``workers`` processes, showing which experiment is running, how many
   trainings are done and an estimate of the time left.
3. As soon as an experiment's trainings are done its numbers are computed (SNMF, L-BFGS,
   eigen-analysis …), in a worker next to the trainings still running (with one worker:
   after the trainings, in this process), with one BLAS thread (seed by seed, in parallel, for an experiment with ``PER_SEED``); they go to ``out_dir/numbers/NAME.json``, its figure to
   ``out_dir/figures/NAME.png``. Last, ``report.write_report`` writes ``out_dir/REPORT.md``.

Interrupting it (Ctrl-C) loses only the trainings and analyses in flight: every finished
training is in the cache, written atomically, and a rerun starts from there (analyses
are not cached: a rerun redoes them).
"""

import os
import sys
import time

import numpy as np

from .core.storage import save_json
from .core import validate
from .core.validate import MEMORY_FRACTION, check_int, format_bytes
from .experiments import EXPERIMENTS, Results, analysis_units, combine_seeds, resolve
from .pipeline.jobs import JobCache, job_cost, job_key, run_jobs
from .pipeline.scale import is_full, make_scale, seeds as scale_seeds
from .report import rows as report_rows, write_report


def _describe(job):
    c = job["config"]
    parts = [c["model"], c["task"]]
    if c["task"] == "mixed":
        parts += [c["mixing"], "learned σ" if c["learn_sigma"] else f"σ={c['sigma']:g}"]
    return " ".join(parts + [f"p={c['p']:g}", f"seed {c['seed']}"])


class Progress:
    """Prints which experiment is running, trainings done of total, and the estimated time left."""

    def __init__(self, owners, pending, stream):
        self.owners, self.stream = owners, stream
        self.start = time.perf_counter()
        self.cost_done, self.cost_total = 0.0, sum(job_cost(job) for job in pending) or 1.0

    def __call__(self, done, total, job, seconds):
        self.cost_done += job_cost(job)
        elapsed = time.perf_counter() - self.start
        left = max(elapsed * (self.cost_total - self.cost_done) / max(self.cost_done, 1e-9), 0.0)
        owner = ", ".join(sorted(self.owners.get(job_key(job), {"?"})))
        print(f"  [{done}/{total} trainings] {owner}: {_describe(job)} ({seconds:.1f} s); "
              f"elapsed {elapsed / 60:.1f} min, about {left / 60:.1f} min left", file=self.stream, flush=True)


def _owners(jobs_by_name):
    """job key -> the experiments that need it (a parent belongs to its child's experiments)."""
    owners = {}
    for name, jobs in jobs_by_name.items():
        for job in jobs:
            while job is not None:
                owners.setdefault(job_key(job), set()).add(name)
                job = job["init_from"]
    return owners


SEED_LIMIT = 2 ** 32    # seeds stay below this: NumPy's usual seed range, and exact as floats on a figure's axis
RESULT_OVERHEAD = 8192  # bytes a finished training holds besides its arrays (its config, key, dicts)
LIST_ENTRY = 200        # bytes per entry of a list of seeds, σ's or p's built while planning (150 measured)
EVAL_POINT = 512        # bytes per evaluation p of one training: its grid in the config, the job's key, the curve
ANCHOR_POINTS = (8, 15) # σ grids the plan is counted at: neither holds 0.025 or 0.03, σ's other figures share
SIZE_KEYS = ("seeds", "sigma_points", "steps", "eval_points")   # the scale keys the command line sets


def _result_bytes(config):
    """Bytes one finished training holds: weights (and M), loss and σ histories, overhead (evaluation apart)."""
    n, d, d_mlp = config["n"], config["d"], config["d_mlp"]
    weights = 2 * n * d_mlp + (d * (n + 2 * d_mlp) if config["model"] == "residual" else 0)
    mixing = n * n if config["task"] == "mixed" else 0
    return 8 * (weights + mixing + 2 * config["steps"]) + RESULT_OVERHEAD


EXACT_UP_TO = {"seeds": 16, "sigma_points": 256}   # plans this small are counted job by job


def _plan(scale, names, first_seed, seeds, points):
    """(trainings, bytes of their results) of the plan at ``seeds`` seeds and ``points`` σ points."""
    small = dict(scale, seeds=seeds, sigma_points=points, eval_points=min(scale["eval_points"], 3))
    seed_list = scale_seeds(small, first_seed)
    unique = {job_key(job): job for name in names for job in EXPERIMENTS[name].jobs(small, seed_list)}
    return np.array([len(unique), sum(_result_bytes(job["config"]) for job in unique.values())], dtype=float)


def estimate_size(scale, names, first_seed=0):
    """(bytes, trainings) a reproduction of ``names`` at ``scale`` holds, without planning it at full size.

    Up to ``EXACT_UP_TO`` seeds and σ points the plan is counted job by job. Beyond, it is planned at
    1, 3 and 4 seeds and at σ grids of ``ANCHOR_POINTS`` and extended linearly in σ points and
    piecewise linearly in seeds (an experiment with a fixed or a least seed count adds what it adds):
    an estimate, a few per cent either way, for refusing what cannot fit. Each training's
    evaluation curve and the lists built while planning are added to its results' bytes.
    """
    S, P = scale["seeds"], scale["sigma_points"]
    if S <= EXACT_UP_TO["seeds"] and P <= EXACT_UP_TO["sigma_points"]:
        trainings, results = _plan(scale, names, first_seed, S, P)
    else:
        low, high = ANCHOR_POINTS
        anchors = {}
        for seeds in (1, 3, 4):
            at = [_plan(scale, names, first_seed, seeds, points) for points in ANCHOR_POINTS]
            anchors[seeds] = at[0] + (P - low) / (high - low) * (at[1] - at[0])      # linear in σ points
        if S <= 3:
            trainings, results = anchors[1] + (S - 1) / 2 * (anchors[3] - anchors[1])
        else:
            trainings, results = anchors[3] + (S - 3) * (anchors[4] - anchors[3])
        trainings, results = max(trainings, 0.0), max(results, 0.0)
    lists = LIST_ENTRY * (S + P + scale["eval_points"])
    return float(results + trainings * EVAL_POINT * (scale["eval_points"] + 1) + lists), int(round(trainings))


def check_size(scale, names, first_seed=0, flags=None):
    """Refuse seeds out of range, and a reproduction whose results cannot fit in memory, before planning it.

    The message names the key (``flags`` maps it to the command line's flag) whose value costs the
    most memory, measured against its smallest value, and the largest value that fits.
    """
    flags = flags or {}
    if first_seed + scale["seeds"] > SEED_LIMIT:
        raise ValueError(f"{flags.get('first_seed', 'first_seed')} + {flags.get('seeds', 'seeds')} must be at most "
                         f"2**32 = {SEED_LIMIT}, got {first_seed} + {scale['seeds']}")
    total, trainings = estimate_size(scale, names, first_seed)
    available = validate.physical_memory()
    if available is None or total <= MEMORY_FRACTION * available:
        return total
    limit = MEMORY_FRACTION * available
    smallest = {key: estimate_size(dict(scale, **{key: 1}), names, first_seed)[0] for key in SIZE_KEYS}
    key = max(SIZE_KEYS, key=lambda k: total - smallest[k])     # the value that costs the most
    per_unit = (total - smallest[key]) / max(scale[key] - 1, 1)
    fits = 1 + int((limit - smallest[key]) // per_unit) if per_unit > 0 and smallest[key] <= limit else None
    allowed = f" (at most {fits} fits here)" if fits is not None and fits < scale[key] else ""
    flag = flags.get(key, key)
    raise ValueError(f"{trainings} trainings would hold about {format_bytes(total)}, more than {MEMORY_FRACTION:.0%} "
                     f"of this machine's {format_bytes(available)} of memory: lower {flag}{allowed}")


def reproduce(out_dir, scale="paper", only=None, workers=2, first_seed=0, stream=None, scale_name=None):
    """Run the chosen experiments into ``out_dir``; return ``{name: numbers}``.

    Parameters
    ----------
    out_dir : folder for cache/, numbers/, figures/ and REPORT.md.
    scale : 'paper', 'quick', 'test', or a scale dict (``pipeline.scale.make_scale``); its ``seeds``
        entry is the number of training seeds.
    only : None for every experiment, or one name (or a list of names), with hyphens or underscores.
    workers : parallel training processes.
    first_seed : the seeds are first_seed, first_seed + 1, ….
    stream : where progress goes (default: the current sys.stderr).
    scale_name : the scale's name in REPORT.md (default: ``scale`` if it is a name, else 'custom').
    """
    started = time.perf_counter()
    stream = sys.stderr if stream is None else stream
    if scale_name is None:
        scale_name = scale if isinstance(scale, str) else "custom"
    scale = make_scale(scale) if isinstance(scale, str) else scale
    names = list(EXPERIMENTS) if only is None else [resolve(n) for n in ([only] if isinstance(only, str) else only)]
    names = list(dict.fromkeys(names))                          # each experiment once, in the order given
    workers, first_seed = check_int(workers, "workers"), check_int(first_seed, "seed", minimum=0)
    check_size(scale, names, first_seed)
    seeds = scale_seeds(scale, first_seed)
    cache = JobCache(os.path.join(out_dir, "cache"), report=lambda text: print(text, file=stream))
    jobs_by_name = {name: EXPERIMENTS[name].jobs(scale, seeds) for name in names}
    all_jobs = [job for jobs in jobs_by_name.values() for job in jobs]
    unique = list({job_key(job): job for job in all_jobs}.values())
    pending = [job for job in unique if not os.path.exists(cache.path(job))]
    print(f"reproduce ({scale_name} scale, seeds {seeds}): {len(names)} experiments, {len(unique)} trainings, "
          f"{len(pending)} not yet in the cache, {workers} worker(s)", file=stream, flush=True)
    everything, analysis, parts = {}, {}, {}
    units = [(name, unit_jobs, unit_seeds) for name in names
             for unit_jobs, unit_seeds in analysis_units(name, scale, seeds)]

    def analysed(index, value):                                  # in this process: write numbers and figure
        name = units[index][0]
        parts.setdefault(name, {})[index] = value
        expected = [i for i, unit in enumerate(units) if unit[0] == name]
        if len(parts[name]) < len(expected):
            return                                              # another seed of it is still being analysed
        per_seed = [parts[name][i][0] for i in expected]
        analysis[name] = sum(parts[name][i][1] for i in expected)
        numbers = dict(combine_seeds(name, per_seed, seeds),
                       _run={"scale_name": scale_name, "full_scale": is_full(scale), "seeds": seeds})
        save_json(os.path.join(out_dir, "numbers", f"{name}.json"), numbers)
        EXPERIMENTS[name].plot(numbers, os.path.join(out_dir, "figures", f"{name}.png"))
        everything[name] = numbers
        print(f"  analysed {name} ({analysis[name]:.1f} s)", file=stream, flush=True)

    analyses = [(unit_jobs, analyse, (name, scale, unit_seeds)) for name, unit_jobs, unit_seeds in units]
    results = run_jobs(unique, cache=cache, workers=workers, progress=Progress(_owners(jobs_by_name), pending, stream),
                       then=analyses, then_done=analysed)
    looked_up = Results({job_key(job): result for job, result in zip(unique, results)})
    everything = {name: everything[name] for name in names}     # the order asked for
    earlier = _earlier_numbers(out_dir, exclude=names, stream=stream)
    seconds = time.perf_counter() - started
    save_json(os.path.join(out_dir, "timings.json"), {                # benchmarks/reproduction_share.py reads it
        "wall_seconds": seconds, "analysis_seconds": analysis,
        "computed": [{"key": job_key(job), "seconds": float(looked_up[job]["seconds"]),
                      "train_seconds": float(looked_up[job].get("train_seconds", np.nan))}
                     for job in pending]})
    write_report(os.path.join(out_dir, "REPORT.md"), dict(earlier, **everything), scale, scale_name, seeds,
                 workers, seconds, {"total": len(unique), "computed": len(pending)}, earlier=sorted(earlier))
    print(f"wrote {out_dir}/REPORT.md and {len(names)} figures in {seconds / 60:.1f} min", file=stream, flush=True)
    return everything


def analyse(results_by_key, name, scale, seeds):
    """One experiment's numbers from its jobs' results (a :func:`run_jobs` follow-up, maybe in a worker).

    Returns (numbers, seconds spent).
    """
    start = time.perf_counter()
    numbers = EXPERIMENTS[name].numbers(Results(results_by_key), scale, seeds)
    return numbers, time.perf_counter() - start


def _earlier_numbers(out_dir, exclude, stream):
    """Numbers that earlier runs left in ``out_dir/numbers`` for experiments not run now.

    An unreadable file is named and skipped (its experiment is left out of the report).
    """
    from .core.storage import CorruptFileError, load_json

    earlier = {}
    for name in EXPERIMENTS:
        path = os.path.join(out_dir, "numbers", f"{name}.json")
        if name not in exclude and os.path.exists(path):
            try:
                numbers = load_json(path)
                report_rows({name: numbers}, full_scale=False)        # readable by this version's claims?
            except CorruptFileError as error:
                print(f"  skipping {path}: {error}", file=stream, flush=True)
            except Exception:                                   # noqa: BLE001  (any old layout: skip, never crash)
                print(f"  skipping {path}: written by another version of cc_numpy (rerun --only {name})",
                      file=stream, flush=True)
            else:
                earlier[name] = numbers
    return earlier
