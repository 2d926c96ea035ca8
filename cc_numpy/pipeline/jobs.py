"""Jobs: one training (plus its evaluation) described by a plain dict, cached on disk, run in parallel.

A *job* is a JSON-able dict

    {"config": {...make_config overrides...},
     "init_from": <another job> or None,      # fine-tuning starts from that job's weights
     "eval": {"ps": [...], "task": ..., "target_stderr": ..., "min_samples": ..., "max_samples": ...} or None}

:func:`run_job` trains it (training its parent first if it has one) and evaluates
L/p at every p of ``eval.ps``. The result is a flat dict of arrays (weights, M,
σ, loss history, evaluation), which :class:`JobCache` stores as ``<key>.npz``,
the key being the SHA-256 of the job's canonical JSON together with
:data:`CACHE_VERSION`: a rerun reuses every finished job, and a changed setting
changes only the keys of the jobs it touches. Files are written atomically; an
unreadable or foreign file is reported, deleted and recomputed, never trusted.

:func:`run_jobs` runs a list of jobs, serially or in ``workers`` processes
started with ``spawn`` (so each worker sets one BLAS thread before NumPy loads).
Each job's numbers depend only on the job, so a parallel run gives the same bits
as a serial one with one BLAS thread.
"""

import hashlib
import json
import os
import time

import numpy as np

from ..core.storage import CorruptFileError, load_npz, save_npz

CACHE_VERSION = 1
EVAL_DEFAULTS = {"task": None, "target_stderr": 3e-4, "min_samples": 20_000, "max_samples": 4_000_000}


_UNSET = object()


def make_job(config, init_from=None, eval_ps=None, eval_task=None, target_stderr=_UNSET,
             min_samples=None, max_samples=None):
    """A job dict. ``config`` holds make_config overrides; ``eval_ps`` the evaluation p's (or None).

    ``target_stderr=None`` evaluates a fixed ``min_samples``; left out, it is EVAL_DEFAULTS'.
    """
    from ..core.train import make_config

    validated = make_config(**config)                           # validate early, with a clear message
    config = {key: validated[key] for key in sorted(config)}    # plain int / float / str values
    evaluation = None
    if eval_ps is not None:
        evaluation = dict(EVAL_DEFAULTS, ps=[float(p) for p in np.atleast_1d(eval_ps)])
        for key, value in (("task", eval_task), ("min_samples", min_samples), ("max_samples", max_samples)):
            if value is not None:
                evaluation[key] = value
        if target_stderr is not _UNSET:
            evaluation["target_stderr"] = target_stderr
    return {"config": config, "init_from": init_from, "eval": evaluation}


def job_key(job):
    """A stable hexadecimal key for a job (its canonical JSON and the cache version)."""
    text = json.dumps({"version": CACHE_VERSION, "job": job}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_job(job, parent_result=None):
    """Train (and evaluate) one job in this process.

    Parameters
    ----------
    job : from :func:`make_job`.
    parent_result : the result of ``job["init_from"]`` (computed here if None).

    Returns
    -------
    dict of arrays: ``W_in``, ``W_out`` (``W_E`` for the residual model), ``M`` (if mixed),
    ``sigma`` (0-d), ``history`` (steps,), ``seconds`` (0-d), and with an evaluation
    ``eval_p``, ``eval_loss_over_p``, ``eval_stderr``, ``eval_n_samples``.
    """
    from ..core.evaluate import loss_over_p_curve
    from ..core.train import make_config, train

    config = make_config(**job["config"])
    init_params = None
    if job["init_from"] is not None:
        parent = parent_result if parent_result is not None else run_job(job["init_from"])
        init_params = {k: parent[k] for k in ("W_in", "W_out") if k in parent}
    start = time.perf_counter()
    trained = train(config, init_params=init_params)
    result = {k: v for k, v in trained["params"].items() if k in ("W_E", "W_in", "W_out")}
    if trained["M"] is not None:
        result["M"] = trained["M"]
    result["sigma"] = np.array(trained["sigma"])
    result["history"] = trained["history"]
    if trained["sigma_history"] is not None:
        result["sigma_history"] = trained["sigma_history"]
    evaluation = job["eval"]
    if evaluation is not None:
        params = {k: np.asarray(result[k], dtype=np.float64) for k in ("W_E", "W_in", "W_out") if k in result}
        task = evaluation["task"] or config["task"]
        M = trained["M"] if task == "mixed" else None
        curve = loss_over_p_curve(params, evaluation["ps"], np.random.default_rng([config["seed"], 99]),
                                  task=task, M=M, sigma=trained["sigma"],
                                  n_samples=evaluation["min_samples"], target_stderr=evaluation["target_stderr"],
                                  max_samples=evaluation["max_samples"])
        result.update({f"eval_{k}": v for k, v in curve.items()})
    result["seconds"] = np.array(time.perf_counter() - start)
    return result


class JobCache:
    """Finished job results as ``<folder>/<key>.npz``; corrupt or foreign files are dropped."""

    def __init__(self, folder, report=None):
        self.folder = os.fspath(folder)
        self.report = report
        os.makedirs(self.folder, exist_ok=True)

    def path(self, job):
        return os.path.join(self.folder, job_key(job) + ".npz")

    def get(self, job):
        """The cached result of ``job``, or None (a corrupt or foreign file is reported and removed)."""
        path = self.path(job)
        if not os.path.exists(path):
            return None
        if not os.path.isfile(path):
            raise CorruptFileError(f"{path} is in the cache's way but is not a file; remove it")
        try:
            arrays = load_npz(path, required=("W_in", "W_out", "sigma", "history", "job_json"))
            if json.loads(str(arrays.pop("job_json"))) != json.loads(json.dumps(job)):
                raise CorruptFileError(f"{path} holds another job's result")
        except (CorruptFileError, ValueError) as error:
            if self.report is not None:
                self.report(f"cache: {error}; recomputing")
            os.remove(path)
            return None
        return arrays

    def put(self, job, result):
        save_npz(self.path(job), dict(result, job_json=json.dumps(job, sort_keys=True)))


def _worker_init():
    from ..core.runtime import keep_freed_memory

    keep_freed_memory()


def _flatten(jobs):
    """Every job and its ancestors, parents before children, each key once."""
    ordered, seen = [], set()

    def visit(job):
        if job["init_from"] is not None:
            visit(job["init_from"])
        key = job_key(job)
        if key not in seen:
            seen.add(key)
            ordered.append(job)

    for job in jobs:
        visit(job)
    return ordered


def run_jobs(jobs, cache=None, workers=1, progress=None):
    """Results for ``jobs`` (in order), from the cache where possible, the rest computed.

    Parameters
    ----------
    jobs : list of job dicts.
    cache : a :class:`JobCache` or None.
    workers : processes; 1 runs in this process.
    progress : optional callable ``progress(done, total, job, seconds)`` after each computed job.

    With ``workers > 1`` the workers are *spawned*: each re-imports the caller's main module,
    so a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    from ..core.validate import check_int

    workers = check_int(workers, "workers")
    ordered = _flatten(jobs)
    results = {}
    for job in ordered:
        cached = cache.get(job) if cache is not None else None
        if cached is not None:
            results[job_key(job)] = cached
    pending = [job for job in ordered if job_key(job) not in results]
    total, done = len(pending), 0

    def finish(job, result):
        nonlocal done
        results[job_key(job)] = result
        if cache is not None:
            cache.put(job, result)
        done += 1
        if progress is not None:
            progress(done, total, job, float(result["seconds"]))

    if workers == 1 or len(pending) <= 1:
        for job in pending:
            parent = results.get(job_key(job["init_from"])) if job["init_from"] is not None else None
            finish(job, run_job(job, parent))
    else:
        _run_parallel(pending, results, workers, finish)
    return [results[job_key(job)] for job in jobs]


def _run_parallel(pending, results, workers, finish):
    """Run jobs in ``workers`` spawned processes with one BLAS thread each; parents before children."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from ..core.runtime import single_thread_blas_env

    saved = dict(os.environ)
    single_thread_blas_env(1, os.environ)                       # inherited by the spawned workers
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init) as pool:
            waiting = list(pending)
            running = {}
            while waiting or running:
                for job in list(waiting):
                    parent_key = job_key(job["init_from"]) if job["init_from"] is not None else None
                    if parent_key is None or parent_key in results:
                        if len(running) >= workers:
                            break
                        waiting.remove(job)
                        parent = results.get(parent_key) if parent_key else None
                        running[pool.submit(run_job, job, parent)] = job
                if not running:
                    raise RuntimeError("no job can start: a parent job is missing from the pending list")
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(running.pop(future), future.result())
    finally:
        os.environ.clear()
        os.environ.update(saved)
