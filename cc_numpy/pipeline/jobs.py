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
as a serial one with one BLAS thread. Only the calling process writes the cache.
Ctrl-C stops it at once: the workers ignore SIGINT and are terminated, and
:class:`JobsInterrupted` says how many results are kept; a rerun resumes.
"""

import hashlib
import json
import os
import time

import numpy as np

from ..core.config import WEIGHT_KEYS
from ..core.storage import CorruptFileError, load_npz, save_npz

CACHE_VERSION = 2          # the layout of a cached result
NUMERICS_VERSION = 4       # bump whenever a change to training or evaluation alters any result's bits
EVAL_DEFAULTS = {"task": None, "target_stderr": 3e-4, "min_samples": 20_000, "max_samples": 4_000_000}


def make_job(config, init_from=None, eval_ps=None, eval_task=None, target_stderr=None,
             min_samples=None, max_samples=None):
    """A job dict: the *fully resolved* config (every default filled in), its parent, its evaluation.

    ``config`` holds make_config overrides; ``eval_ps`` the evaluation p's (or None: no evaluation).
    ``target_stderr=None`` evaluates a fixed ``min_samples``. Because the key hashes the resolved
    config, changing a default changes the key of every job it touches.
    """
    from ..core.train import make_config

    resolved = make_config(**config)
    evaluation = None
    if eval_ps is not None:
        evaluation = dict(EVAL_DEFAULTS, ps=[float(p) for p in np.atleast_1d(eval_ps)], target_stderr=target_stderr)
        for key, value in (("task", eval_task), ("min_samples", min_samples), ("max_samples", max_samples)):
            if value is not None:
                evaluation[key] = value
    return {"config": json.loads(json.dumps(resolved)), "init_from": init_from, "eval": evaluation}


def job_key(job):
    """A stable hexadecimal key: the job's canonical JSON with the cache and numerics versions."""
    text = json.dumps({"cache": CACHE_VERSION, "numerics": NUMERICS_VERSION, "job": job},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def run_job(job, parent_result=None, progress=None, checkpoint_path=None, checkpoint_every=1000):
    """Train (and evaluate) one job in this process: the one way a run is trained and scored
    (``python -m cc_numpy train`` and the job runner both call it).

    Parameters
    ----------
    job : from :func:`make_job`.
    parent_result : the result of ``job["init_from"]`` (computed here if None).
    progress, checkpoint_path, checkpoint_every : passed to ``core.train.train``.

    Returns
    -------
    dict of arrays: ``W_in``, ``W_out`` (``W_E`` for the residual model), ``M`` (if mixed),
    ``sigma`` (0-d), ``history`` (steps,), ``seconds`` and ``train_seconds`` (0-d: all, and training alone),
    and with an evaluation
    ``eval_p``, ``eval_loss_over_p``, ``eval_stderr``, ``eval_n_samples`` (evaluated with the
    seed's named "eval" stream, so the same job always gets the same numbers).
    """
    from ..core.train import make_config, train

    config = make_config(**job["config"])
    init_params = None
    if job["init_from"] is not None:
        parent = parent_result if parent_result is not None else run_job(job["init_from"])
        init_params = trained_weights(parent)
    start = time.perf_counter()
    trained = train(config, init_params=init_params, progress=progress, checkpoint_path=checkpoint_path,
                    checkpoint_every=checkpoint_every)
    result = result_from_training(trained)
    trained_at = time.perf_counter()
    result.update(evaluate_job(job, result))
    result["train_seconds"] = np.array(trained_at - start)
    result["seconds"] = np.array(time.perf_counter() - start)
    return result


def trained_weights(result):
    """The trained W_in, W_out of a result: where a fine-tuning child starts (W_E stays the child's own)."""
    from ..core.mlp import PARAM_KEYS

    return {key: result[key] for key in PARAM_KEYS}


def result_from_training(trained):
    """The arrays of a ``train()`` return value that a job result keeps."""
    result = {k: v for k, v in trained["params"].items() if k in WEIGHT_KEYS}
    if trained["M"] is not None:
        result["M"] = trained["M"]
    result["sigma"] = np.array(trained["sigma"])
    result["history"] = trained["history"]
    if trained["sigma_history"] is not None:
        result["sigma_history"] = trained["sigma_history"]
    return result


def evaluate_job(job, result):
    """``eval_*`` arrays for a trained result (empty dict when the job has no evaluation)."""
    from ..core.data import random_streams
    from ..core.evaluate import loss_over_p_curve

    evaluation, config = job["eval"], job["config"]
    if evaluation is None:
        return {}
    params = {k: np.asarray(result[k], dtype=np.float64) for k in WEIGHT_KEYS if k in result}
    task = evaluation["task"] or config["task"]
    M = result.get("M") if task == "mixed" else None
    curve = loss_over_p_curve(params, evaluation["ps"], random_streams(config["seed"])["eval"],
                              task=task, M=M, sigma=float(result["sigma"]),
                              n_samples=evaluation["min_samples"], target_stderr=evaluation["target_stderr"],
                              max_samples=evaluation["max_samples"])
    return {f"eval_{k}": v for k, v in curve.items()}


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
            _check_result(arrays, job, path)
        except (CorruptFileError, ValueError) as error:
            if self.report is not None:
                self.report(f"cache: {error}; recomputing")
            os.remove(path)
            return None
        return arrays

    def put(self, job, result):
        save_npz(self.path(job), dict(result, job_json=json.dumps(job, sort_keys=True)))


def _check_result(arrays, job, path):
    """Raise CorruptFileError unless a cached result has the shapes of ``job`` and finite real values."""
    from ..core.storage import stored_array
    from ..core.train import make_config

    config = make_config(**job["config"])
    n, d, d_mlp = config["n"], config["d"], config["d_mlp"]
    width = d if config["model"] == "residual" else n
    shapes = {"W_E": (d, n), "W_in": (d_mlp, width), "W_out": (width, d_mlp), "M": (n, n), "sigma": (),
              "history": (config["steps"],), "sigma_history": (config["steps"],), "seconds": ()}
    if job["eval"] is not None:
        shapes.update({f"eval_{k}": (len(job["eval"]["ps"]),) for k in ("p", "loss_over_p", "stderr", "n_samples")})
    for key in arrays:
        stored_array(arrays, key, path, shape=shapes.get(key), finite=key != "eval_stderr")


class JobsInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_jobs`; ``kept`` says which results are safe (e.g. '3 of 8 trainings are in the cache')."""

    def __init__(self, kept):
        super().__init__(kept)
        self.kept = kept


class WorkerDied(OSError):
    """A worker process ended without a result (killed, e.g. by the system for lack of memory)."""


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, shown as the cause of the re-raised error."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return self.text


MAX_GROUP = 48              # models trained in one pass: enough to share the batch work, small enough to balance


def _parent_key(job):
    return None if job["init_from"] is None else job_key(job["init_from"])


def group_key(job):
    """Jobs with equal keys can be trained in one pass (``fast.batched``: same batch stream and schedule)."""
    from ..core.fast.batched import shared_keys

    config = job["config"]
    if config["engine"] != "fast":
        return ("alone", job_key(job))
    return tuple(config[key] for key in shared_keys(config))


def job_cost(job):
    """A rough relative cost of a training: its steps, heavier at dense p (more non-empty rows) and for the
    residual model (its d-dimensional weights)."""
    from ..core.data import nonempty_fraction

    config = job["config"]
    weight = 2.0 if config["model"] == "residual" else 1.0
    return config["steps"] * (1.0 + 4.0 * nonempty_fraction(config["p"], config["n"])) * weight


def _cost(group):
    return len(group) * job_cost(group[0])


def plan_groups(ready, workers):
    """Split jobs into groups that share a batch stream, at most MAX_GROUP each, largest first.

    With several workers a large group is split so that each worker gets a share; a model's
    result is the same bits whatever group it is trained in (``fast.batched``), so the plan
    never changes a number.
    """
    by_key = {}
    for job in ready:
        by_key.setdefault(group_key(job), []).append(job)
    groups = []
    for members in by_key.values():
        parts = -(-len(members) // MAX_GROUP)                   # ceil: no group above MAX_GROUP
        size = -(-len(members) // parts)
        groups += [members[i:i + size] for i in range(0, len(members), size)]
    groups.sort(key=_cost, reverse=True)
    while groups and len(groups) < workers and len(groups[0]) > 1:      # idle workers: halve the largest group
        largest = groups.pop(0)
        half = len(largest) // 2
        groups = sorted(groups + [largest[:half], largest[half:]], key=_cost, reverse=True)
    return groups


def run_group(group, parents):
    """Results of jobs that share one batch stream, trained together in one pass, each then evaluated.

    ``parents`` holds each job's parent result (None for a job without ``init_from``).
    """
    from ..core.train import make_config
    from ..core.fast.batched import train_batched

    if len(group) == 1:
        return [run_job(group[0], parents[0])]
    start = time.perf_counter()
    inits = [None if parent is None else trained_weights(parent) for parent in parents]
    trained = train_batched([make_config(**job["config"]) for job in group], init_params_list=inits)
    train_share = (time.perf_counter() - start) / len(group)   # one pass trained them all: an equal share each
    results = []
    for job, one in zip(group, trained):
        result = result_from_training(one)
        evaluated_from = time.perf_counter()
        result.update(evaluate_job(job, result))
        result["train_seconds"] = np.array(train_share)
        result["seconds"] = np.array(train_share + time.perf_counter() - evaluated_from)
        results.append(result)
    return results


def _worker(tasks, outputs):
    """A worker process: run ``(index, function, args)`` tasks (:func:`run_group`, follow-ups) until a None arrives.

    Ctrl-C goes to the whole process group; workers ignore it and are stopped by the parent.
    A worker whose parent died without stopping it (e.g. killed) exits at once, even in the
    middle of a training, and even if the parent died before the worker got here
    (:func:`_exit_when_orphaned`).
    """
    import pickle
    import signal
    import threading
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    while True:
        task = tasks.get()
        if task is None:
            return
        index, function, args = task
        try:
            value = function(*args)
            pickle.dumps(value)                                 # an unpicklable value fails here, not in the queue
            outputs.put((index, "ok", value))
        except BaseException as error:                          # noqa: BLE001  (sent to the parent, re-raised there)
            text = traceback.format_exc()
            try:
                pickle.dumps(error)
            except Exception:                                   # noqa: BLE001
                error = RuntimeError(f"{type(error).__name__}: {error}")
            outputs.put((index, "error", (error, text)))


def _exit_when_orphaned():
    """A worker's watchdog thread: end the process once its parent is gone (nobody would read its
    results, and it may be in the middle of an hour-long training).

    It waits on the parent's sentinel, which multiprocessing gives every child: a pipe that
    reads as ready once the parent process has ended (also if it ended before this call).
    """
    import multiprocessing
    from multiprocessing import connection

    connection.wait([multiprocessing.parent_process().sentinel])
    os._exit(1)


def ancestors_first(jobs):
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


def run_jobs(jobs, cache=None, workers=1, progress=None, then=(), then_done=None):
    """Results for ``jobs`` (in order), from the cache where possible, the rest computed.

    Parameters
    ----------
    jobs : list of job dicts.
    cache : a :class:`JobCache` or None.
    workers : processes; 1 runs in this process.
    progress : optional callable ``progress(done, total, job, seconds)`` after each computed job.
    then : follow-ups, a list of ``(needs, function, args)``: as soon as every job in ``needs``
        (a list of jobs, each also in ``jobs`` or an ancestor of one) has its result,
        ``function({key: result of each needed job and its ancestors}, *args)`` runs, in a worker
        next to the remaining trainings when ``workers > 1`` (ahead of them: follow-ups are the
        long serial tails), after every training when ``workers == 1``, always with one BLAS
        thread. ``function`` must be a module-level function (workers import it by name) and
        return something picklable.
    then_done : callable ``then_done(index, value)`` in this process with each follow-up's value.

    A follow-up that fails (or whose ``then_done`` fails) does not stop the trainings or the other
    follow-ups: the first such error is raised once they are all done.

    With ``workers > 1`` the workers are *spawned*: each re-imports the caller's main module,
    so a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    from ..core.validate import check_int

    workers = check_int(workers, "workers")
    ordered = ancestors_first(jobs)
    results = {}
    for job in ordered:
        cached = cache.get(job) if cache is not None else None
        if cached is not None:
            results[job_key(job)] = cached
    pending = [job for job in ordered if job_key(job) not in results]
    total, done = len(pending), 0
    follow_ups = [([job_key(job) for job in ancestors_first(needs)], function, args) for needs, function, args in then]
    known = {job_key(job) for job in ordered}
    if any(key not in known for keys, _, _ in follow_ups for key in keys):
        raise ValueError("a follow-up needs a job that is not in jobs")

    def finish(job, result):
        nonlocal done
        results[job_key(job)] = result
        if cache is not None:
            cache.put(job, result)
        done += 1
        if progress is not None:
            progress(done, total, job, float(result["seconds"]))

    def ready_follow_ups(started):
        """(index, function, args) of the follow-ups not yet started whose jobs are all done."""
        ready = [index for index, (keys, _, _) in enumerate(follow_ups)
                 if index not in started and all(key in results for key in keys)]
        started.update(ready)
        return [(index, _call_follow_up, (follow_ups[index][1], {key: results[key] for key in follow_ups[index][0]},
                                          follow_ups[index][2])) for index in ready]

    failures = []                                               # a follow-up's error waits for the trainings

    def follow_up_done(index, value):
        if then_done is not None:
            try:
                then_done(index, value)
            except Exception as error:                          # noqa: BLE001  (raised after the trainings)
                failures.append(error)

    try:
        if workers == 1 or len(pending) + len(follow_ups) <= 1:
            waiting = list(pending)
            while waiting:
                ready = [job for job in waiting if _parent_key(job) is None or _parent_key(job) in results]
                for group in plan_groups(ready, workers=1):
                    for job, result in zip(group, run_group(group, [results.get(_parent_key(j)) for j in group])):
                        finish(job, result)
                waiting = [job for job in waiting if job_key(job) not in results]
            for index, function, args in ready_follow_ups(set()):
                try:
                    value = function(*args)
                except Exception as error:                      # noqa: BLE001  (the other follow-ups still run)
                    failures.append(error)
                else:
                    follow_up_done(index, value)
        else:                                                   # never more processes than there is work
            _run_parallel(pending, results, min(workers, len(pending) + len(follow_ups)), finish, ready_follow_ups,
                          follow_up_done, failures)
        if failures:
            raise failures[0]
    except KeyboardInterrupt:
        kept = (f"{len(ordered) - total + done} of {len(ordered)} trainings are in the cache" if cache is not None
                else f"{done} of {total} trainings finished, none kept (no cache)")
        raise JobsInterrupted(kept) from None
    return [results[job_key(job)] for job in jobs]


def _call_follow_up(function, results, args):
    """Run one follow-up with one BLAS thread (its bits must not depend on the machine)."""
    from ..core.runtime import single_blas_thread

    with single_blas_thread():
        return function(results, *args)


def _run_parallel(pending, results, workers, finish, ready_follow_ups, follow_up_done, failures):
    """Run jobs in ``workers`` spawned processes with one BLAS thread each; parents before children.

    Follow-ups (:func:`run_jobs`'s ``then``) join the queue, ahead of the trainings, as soon as
    their jobs are done. A failed follow-up is appended to ``failures`` (with the worker's
    traceback as its cause) and the trainings go on; a failed training stops everything. The
    workers start with SIGINT blocked and ignore it (:func:`_start_workers`); on any exit other
    than success (an error, Ctrl-C) the parent terminates them, so an interrupt never waits for
    a running job and never leaves a process behind. Only the parent writes files (``finish``).
    """
    import multiprocessing
    import queue

    context = multiprocessing.get_context("spawn")
    tasks, outputs = context.Queue(), context.Queue()
    processes = [context.Process(target=_worker, args=(tasks, outputs), daemon=True) for _ in range(workers)]
    try:
        _start_workers(processes)
        waiting, running, queued, started = list(pending), {}, [], set()
        follow_ups = ready_follow_ups(started)                  # (index, function, args) ready to go
        while waiting or running or queued or follow_ups:
            if not queued:                                      # plan the groups whose parents are done
                ready = [job for job in waiting if _parent_key(job) is None or _parent_key(job) in results]
                queued = plan_groups(ready, workers) if ready else []
                waiting = [job for job in waiting if job not in ready]
            while (follow_ups or queued) and len(running) < workers:
                if follow_ups:
                    index, function, args = follow_ups.pop(0)
                    running[("then", index)] = None
                    tasks.put((("then", index), function, args))
                    continue
                group = queued.pop(0)
                index = job_key(group[0])
                running[index] = group
                tasks.put((index, run_group, (group, [results.get(_parent_key(job)) for job in group])))
            if not running:
                raise RuntimeError("no job can start: a parent job is missing from the pending list")
            try:
                index, status, payload = outputs.get(timeout=0.2)
            except queue.Empty:
                dead = [process.exitcode for process in processes if not process.is_alive()]
                if dead:
                    raise WorkerDied(f"a worker process died (exit code {dead[0]}), e.g. killed for lack of "
                                     "memory; finished trainings are in the cache") from None
                continue
            group = running.pop(index)
            if status == "error" and group is None:             # a follow-up: keep training, raise at the end
                error, text = payload
                error.__cause__ = _RemoteTraceback(text)
                failures.append(error)
                continue
            if status == "error":
                error, text = payload
                raise error from _RemoteTraceback(text)
            if group is None:                                   # a follow-up
                follow_up_done(index[1], payload)
                continue
            for job, result in zip(group, payload):
                finish(job, result)
            follow_ups += ready_follow_ups(started)
        for _ in processes:
            tasks.put(None)
        for process in processes:
            process.join(timeout=10)
    finally:
        _stop(processes, tasks, outputs)


def _start_workers(processes):
    """Start ``processes`` with SIGINT blocked in them from their first instruction, while the
    calling (main) thread stays ready for a Ctrl-C.

    A signal mask is inherited through fork and exec, so a helper thread that blocks SIGINT
    starts the workers: no Ctrl-C reaches a worker before it ignores SIGINT (``_worker``), and
    the kernel delivers the parent's Ctrl-C to the main thread, which never blocks it. A Ctrl-C
    meanwhile lets the helper finish the start under way, starts no more, and is raised here,
    inside the caller's ``try`` that stops every worker started. (Blocking SIGINT in the main
    thread instead raised it when unblocked, before that ``try``: a worker already started kept
    running, and the signal could be handled by another thread first.) The resource tracker is
    started beforehand, as its own start unblocks SIGINT in the thread that starts it.
    """
    import signal
    import threading
    from multiprocessing import resource_tracker

    from ..core.runtime import child_blas_threads

    resource_tracker.ensure_running()
    stop, done, failure = threading.Event(), threading.Event(), []

    def start_all():
        try:
            if hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})   # this thread only
            for process in processes:
                if stop.is_set():
                    return
                process.start()
        except BaseException as error:                          # noqa: BLE001  (raised in the main thread)
            failure.append(error)
        finally:
            done.set()

    helper = None
    with child_blas_threads(1):                                 # inherited by the spawned workers
        try:
            helper = threading.Thread(target=start_all, name="cc_numpy worker start", daemon=True)
            helper.start()
            done.wait()                                         # a Ctrl-C interrupts this wait
        except BaseException:
            stop.set()                                          # start no more; the caller stops the rest
            if helper is not None and helper.ident is not None:    # it runs (or will, and then sees stop)
                _wait_through_interrupts(done)
            raise
    if failure:
        raise failure[0]


def _wait_through_interrupts(event):
    """Wait for ``event`` even if further Ctrl-Cs arrive meanwhile (the first one is already being raised).

    (An Event, not ``Thread.join``: a join interrupted by Ctrl-C may mark a running thread as stopped.)
    """
    while not event.is_set():
        try:
            event.wait()
        except KeyboardInterrupt:
            continue


def _stop(processes, tasks, outputs):
    """Terminate (then kill) every worker still alive and release the queues without waiting on them."""
    processes = [process for process in processes if process.pid is not None]   # a Ctrl-C may stop the start
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    for channel in (tasks, outputs):
        channel.cancel_join_thread()
        channel.close()
