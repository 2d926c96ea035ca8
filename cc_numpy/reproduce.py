"""The whole paper in one call: every experiment's trainings, numbers, figures and REPORT.md.

    reproduce(out_dir, scale="paper" | "quick" | "test", only=None, workers=2)

1. The jobs of every chosen experiment are gathered and deduplicated (the SNMF
   figure reuses the σ sweep's models, the small-p check the eigen model).
2. ``jobs.run_jobs`` trains what the cache ``out_dir/cache`` lacks, in
   ``workers`` spawned processes with one BLAS thread each, showing which
   experiment is running, how many trainings are done and an estimate of the
   time left.
3. Each experiment's numbers go to ``out_dir/numbers/NAME.json`` and its figure
   to ``out_dir/figures/NAME.png``; ``out_dir/REPORT.md`` puts every claim of the
   paper beside our number.

Interrupting it (Ctrl-C) loses only the trainings in flight: every finished
one is in the cache, written atomically, and a rerun starts from there.
"""

import json
import os
import platform
import sys
import time

import numpy as np

from . import experiments
from .pipeline import plots
from .pipeline.jobs import JobCache, job_key, run_jobs
from .core.storage import save_json, save_text
from .core.validate import check_choice, check_int

NAIVE = 1.0 / 12.0


def _describe(job):
    c = job["config"]
    parts = [c.get("model", "mlp"), c.get("task", "mixed")]
    if c.get("task", "mixed") == "mixed":
        parts.append(c.get("mixing", "asymmetric"))
        parts.append("learned σ" if c.get("learn_sigma") else f"σ={c.get('sigma', 0.03):g}")
    parts.append(f"p={c.get('p', 0.01):g}")
    return " ".join(parts)


def _job_cost(job):
    """A rough relative cost: steps, heavier at dense p (more non-empty rows)."""
    c = job["config"]
    p = c.get("p", 0.01)
    return c["steps"] * (1.0 + 4.0 * (1.0 - (1.0 - p) ** 100)) * (2.0 if c.get("model") == "residual" else 1.0)


class Progress:
    """Prints which experiment is running, trainings done of total, and the estimated time left."""

    def __init__(self, owners, stream=None):
        self.owners, self.stream = owners, (sys.stderr if stream is None else stream)
        self.start = time.perf_counter()
        self.cost_done, self.cost_total = 0.0, None

    def set_pending(self, jobs):
        self.cost_total = sum(_job_cost(job) for job in jobs) or 1.0

    def __call__(self, done, total, job, seconds):
        self.cost_done += _job_cost(job)
        elapsed = time.perf_counter() - self.start
        left = max(elapsed * (self.cost_total - self.cost_done) / max(self.cost_done, 1e-9), 0.0)
        owner = ", ".join(sorted(self.owners.get(job_key(job), {"?"})))
        print(f"  [{done}/{total} trainings] {owner}: {_describe(job)} ({seconds:.1f} s); "
              f"elapsed {elapsed / 60:.1f} min, about {left / 60:.1f} min left", file=self.stream, flush=True)


def reproduce(out_dir, scale="paper", only=None, workers=2, seed=0, stream=None, scale_name=None):
    """Run the chosen experiments into ``out_dir``; return ``{name: numbers}``.

    Parameters
    ----------
    out_dir : folder for cache/, numbers/, figures/ and REPORT.md.
    scale : 'paper', 'quick', 'test', or a scale dict (``experiments.make_scale``).
    only : None for every experiment, or one name (or a list of names) of ``experiments.EXPERIMENTS``.
    workers : parallel training processes.
    seed : the seed of every training.
    stream : where progress goes (default: the current sys.stderr).
    scale_name : the scale's name in REPORT.md (default: ``scale`` if it is a name, else 'custom').
    """
    started = time.perf_counter()
    stream = sys.stderr if stream is None else stream
    if scale_name is None:
        scale_name = scale if isinstance(scale, str) else "custom"
    scale = experiments.make_scale(scale) if isinstance(scale, str) else scale
    names = list(experiments.EXPERIMENTS) if only is None else ([only] if isinstance(only, str) else list(only))
    for name in names:
        check_choice(name, "experiment", tuple(experiments.EXPERIMENTS))
    workers, seed = check_int(workers, "workers"), check_int(seed, "seed", minimum=0)
    cache = JobCache(os.path.join(out_dir, "cache"), report=lambda text: print(text, file=stream))
    jobs_by_name = {name: experiments.EXPERIMENTS[name][0](scale, seed) for name in names}
    owners = {}
    for name, jobs in jobs_by_name.items():
        for job in jobs:
            owners.setdefault(job_key(job), set()).add(name)
            parent = job["init_from"]
            while parent is not None:
                owners.setdefault(job_key(parent), set()).add(name)
                parent = parent["init_from"]
    all_jobs = [job for jobs in jobs_by_name.values() for job in jobs]
    progress = Progress(owners, stream)
    pending = [job for job in _unique(all_jobs) if not os.path.exists(cache.path(job))]
    progress.set_pending(pending)
    print(f"reproduce ({scale_name} scale): {len(names)} experiments, {len(_unique(all_jobs))} trainings, "
          f"{len(pending)} not yet in the cache, {workers} worker(s)", file=stream, flush=True)
    results = run_jobs(all_jobs, cache=cache, workers=workers, progress=progress)
    by_key = {job_key(job): result for job, result in zip(all_jobs, results)}
    everything = {}
    for name in names:
        print(f"  analysing {name} …", file=stream, flush=True)
        own = [by_key[job_key(job)] for job in jobs_by_name[name]]
        numbers = experiments.EXPERIMENTS[name][1](own, scale, seed)
        save_json(os.path.join(out_dir, "numbers", f"{name}.json"), numbers)
        plots.PLOTS[name](numbers, os.path.join(out_dir, "figures", f"{name}.png"))
        everything[name] = numbers
    earlier = _earlier_numbers(out_dir, exclude=names)
    seconds = time.perf_counter() - started
    trainings = {"total": len(_unique(all_jobs)), "computed": len(pending)}
    write_report(os.path.join(out_dir, "REPORT.md"), dict(earlier, **everything), scale, scale_name, seed,
                 workers, seconds, trainings, earlier=sorted(earlier))
    print(f"wrote {out_dir}/REPORT.md and {len(names)} figures in {seconds / 60:.1f} min", file=stream, flush=True)
    return everything


def _earlier_numbers(out_dir, exclude):
    """Numbers that earlier runs left in ``out_dir/numbers`` for experiments not run now (unreadable ones skipped)."""
    from .core.storage import CorruptFileError, load_json

    earlier = {}
    for name in experiments.EXPERIMENTS:
        path = os.path.join(out_dir, "numbers", f"{name}.json")
        if name not in exclude and os.path.exists(path):
            try:
                earlier[name] = load_json(path)
            except CorruptFileError:
                continue
    return earlier


def _unique(jobs):
    seen, unique = set(), []
    for job in jobs:
        key = job_key(job)
        if key not in seen:
            seen.add(key)
            unique.append(job)
    return unique


# --- the report -----------------------------------------------------------------------------

def _at(curve, p):
    """The value and stderr of a curve at the grid point nearest p (log distance)."""
    ps = np.array(curve["p"])
    index = int(np.argmin(np.abs(np.log(ps) - np.log(p))))
    return curve["loss_over_p"][index], curve["stderr"][index], ps[index]


def _crossing(curve, level=NAIVE):
    """The p (log-interpolated) where a curve first rises above ``level``, or None."""
    ps, values = np.array(curve["p"]), np.array(curve["loss_over_p"])
    for i in range(1, len(ps)):
        if values[i - 1] <= level < values[i]:
            t = (level - values[i - 1]) / (values[i] - values[i - 1])
            return float(np.exp(np.log(ps[i - 1]) + t * (np.log(ps[i]) - np.log(ps[i - 1]))))
    return None


def _row(claim, paper, ours, stderr=None, tolerance=0.003, figure="", check=None, note=""):
    if check is None:
        check = ours is not None and paper is not None and abs(ours - paper) <= tolerance
    ours_text = "—" if ours is None else (f"{ours:.4f}" if stderr is None else f"{ours:.4f} ± {stderr:.4f}")
    paper_text = paper if isinstance(paper, str) else f"{paper:.4g}"
    return {"claim": claim, "paper": paper_text, "ours": ours_text, "ok": bool(check), "figure": figure,
            "note": note}


def claim_rows(numbers):
    """One row per claim of PAPER_NOTES' "Results to reproduce" that the numbers cover."""
    rows = []
    if "seeds" in numbers:
        seeds, fig = numbers["seeds"], "seeds.png"
        for name, paper, tolerance in (("residual CC model", 0.067, 0.003), ("clean MLP", NAIVE, 0.002)):
            for s, value, err in zip(seeds["seeds"], seeds[name]["loss_over_p"], seeds[name]["stderr"]):
                rows.append(_row(f"{name} at the paper's settings, seed {s}: L/p at p = 0.01", paper, value, err,
                                 tolerance=tolerance, figure=fig, note=f"tolerance ±{tolerance}"))
    if "mixing_types" in numbers:
        curves, fig = numbers["mixing_types"]["curves"], "mixing_types.png"
        for name, key in (("embedding, authors' sign (σ = 1)", "embedding, authors' sign"),
                          ("symmetric, learned σ", "symmetric, learned σ")):
            for p, paper in ((0.001, 0.060), (0.01, 0.066)):
                value, err, _ = _at(curves[name], p)
                rows.append(_row(f"{key}: L/p at p = {p}", paper, value, err, figure=fig))
            cross = _crossing(curves[name])
            rows.append(_row(f"{key}: crosses naive near p ≈ 0.07", 0.07, cross, None,
                             check=cross is not None and 0.035 <= cross <= 0.14, figure=fig,
                             note="tolerance: a factor 2 in p"))
        value, err, _ = _at(curves["asymmetric, learned σ"], 0.001)
        rows.append(_row("asymmetric, learned σ: L/p at low p (0.001)", 0.072, value, err, figure=fig))
        clean = curves["clean (M = 0)"]
        worst = max((abs(v - NAIVE), v, e) for p, v, e in zip(clean["p"], clean["loss_over_p"], clean["stderr"])
                    if p <= 0.3)
        rows.append(_row("clean M = 0: ≈ naive for every p ≤ 0.3 (largest deviation shown)", NAIVE, worst[1],
                         worst[2], figure=fig))
        rows.append(_row("learned σ, asymmetric", 0.025, curves["asymmetric, learned σ"]["sigma"], None,
                         tolerance=0.003, figure=fig))
        rows.append(_row("learned σ, symmetric", 0.033, curves["symmetric, learned σ"]["sigma"], None,
                         tolerance=0.003, figure=fig))
        for name in ("embedding, our sign (σ = 1)", "residual CC model"):
            for p, paper in ((0.001, 0.063), (0.01, 0.067)):
                value, err, _ = _at(curves[name], p)
                rows.append(_row(f"{name}: L/p at p = {p} (PAPER_NOTES' own measurement)", paper, value, err,
                                 figure=fig))
    if "sigma_sweep" in numbers:
        sweep, fig = numbers["sigma_sweep"], "sigma_sweep.png"
        for kind, minimum, at, above in (("symmetric", 0.065, 0.03, 0.062), ("asymmetric", 0.075, 0.028, 0.048)):
            entry = sweep[kind]
            rows.append(_row(f"σ sweep, {kind}: L/p at σ = 0", 0.083, entry["loss_over_p"][0], entry["stderr"][0],
                             figure=fig))
            rows.append(_row(f"σ sweep, {kind}: minimum L/p", minimum, entry["min_loss_over_p"],
                             entry["min_stderr"], figure=fig))
            rows.append(_row(f"σ sweep, {kind}: σ at the minimum", at, entry["argmin_sigma"], None,
                             tolerance=0.008, figure=fig, note="tolerance ±0.008 (flat minimum)"))
            rows.append(_row(f"σ sweep, {kind}: above naive again from σ ≈", above,
                             entry["first_sigma_above_naive"], None, tolerance=0.006, figure=fig,
                             note="tolerance ±0.006 (grid step 0.002)"))
    if "sparsity_regimes" in numbers:
        regimes, fig = numbers["sparsity_regimes"], "sparsity_regimes.png"
        paper = {0.001: 0.072, 0.01: 0.076, 0.1: 0.080, 0.5: 0.072, 1.0: 0.054}
        for model in regimes["models"]:
            if model["train_p"] in paper:
                rows.append(_row(f"sparsity regime: trained and evaluated at p = {model['train_p']:g}",
                                 paper[model["train_p"]], model["own_loss_over_p"], model["own_stderr"],
                                 figure=fig))
        sparse_slopes = np.array(regimes["input_output"]["sparsest"]["slope_positive"])
        dense_slopes = np.array(regimes["input_output"]["densest"]["slope_positive"])
        inside = float(np.mean((sparse_slopes >= 0.3) & (sparse_slopes <= 0.85)))
        rows.append(_row("sparsest model: every feature's slope ≈ 0.4–0.75 (fraction within 0.3–0.85)",
                         "≈ all", inside, None, check=inside >= 0.9, figure=fig,
                         note=f"median slope {np.median(sparse_slopes):.2f}"))
        high = float(np.mean(dense_slopes > 0.7))
        rows.append(_row("densest model: about half the slopes ≈ 1, half ≈ 0.1 (fraction above 0.7)", "≈ 0.5",
                         high, None, check=0.35 <= high <= 0.65, figure=fig))
    if "finetune" in numbers:
        tune, fig = numbers["finetune"], "finetune.png"
        rows.append(_row("fine-tuning with M = 0: the loss climbs back to about naive", NAIVE,
                         tune["finetuned_loss_over_p"], tune["finetuned_stderr"], figure=fig,
                         note=f"with M: {tune['mixed_phase_loss_over_p']:.4f} on mixed labels"))
    if "baselines" in numbers:
        base, fig = numbers["baselines"], "baselines.png"
        for check in base["checks"]:
            if check["p"] == 0.1:
                rows.append(_row("optimal offset b at p = 0.1", 0.013, check["offset"], None, tolerance=0.002,
                                 figure=fig))
            if check["p"] == 1.0:
                rows.append(_row("optimal offset b at p = 1", 0.019, check["offset"], None, tolerance=0.002,
                                 figure=fig))
                rows.append(_row("naive + offset at p = 1 (analytic)", 0.053, check["offset_analytic"], None,
                                 figure=fig))
                rows.append(_row("naive + offset at p = 1 (Monte Carlo)", 0.053, check["offset_measured"],
                                 check["offset_stderr"], figure=fig))
    if "eigen" in numbers:
        summary, fig = numbers["eigen"]["summary"], "eigen.png"
        rows.append(_row("W_out W_in vs σM: off-diagonal slope", 1.86, summary["offdiag_slope"], None,
                         tolerance=0.15, figure=fig, note="tolerance ±0.15 (a fitted slope)"))
        rows.append(_row("W_out W_in vs σM: diagonal slope", 3.38, summary["diag_slope"], None, tolerance=0.4,
                         figure=fig, note="tolerance ±0.4 (100 points)"))
        rows.append(_row("W_out W_in vs σM: diagonal intercept", 0.62, summary["diag_intercept"], None,
                         tolerance=0.05, figure=fig))
        rows.append(_row("cos(E_k, W_out W_in E_k), mean over k ≤ 40", "≈ 0.97–1.0 (≥ 0.9)",
                         summary["cos_mean_head"], None, check=summary["cos_mean_head"] >= 0.9, figure=fig))
        rows.append(_row("cos(E_k, W_out W_in E_k), largest beyond k = 60", "≈ 0.1–0.3 (≤ 0.5)",
                         summary["cos_max_tail"], None, check=summary["cos_max_tail"] <= 0.5, figure=fig))
        rows.append(_row("input weights inside the top-50 eigen-subspace", "almost all (≥ 0.8; random 0.5)",
                         summary["input_fraction_total"], None, check=summary["input_fraction_total"] >= 0.8,
                         figure=fig))
    if "snmf" in numbers:
        snmf, fig = numbers["snmf"], "snmf.png"
        sigmas, entry = np.array(snmf["sigma"]), snmf["asymmetric"]
        authors = np.array(entry["snmf_authors"])
        rows.append(_row("SNMF (authors' target), asymmetric: L/p at σ = 0", 0.0835, float(authors[0]), None,
                         figure=fig))
        best = int(np.argmin(authors))
        rows.append(_row("SNMF (authors' target), asymmetric: minimum L/p", 0.078, float(authors[best]), None,
                         figure=fig, note=f"at σ = {sigmas[best]:.3f} (paper ≈ 0.01–0.015)"))
        for sigma, paper in ((0.03, 0.092),):
            index = int(np.argmin(np.abs(sigmas - sigma)))
            if abs(sigmas[index] - sigma) < 1e-9:
                rows.append(_row(f"SNMF (authors' target), asymmetric: L/p at σ = {sigma}", paper,
                                 float(authors[index]), None, figure=fig))
        trained = np.array(entry["trained_small_p"])
        gaps = authors - trained                                # SNMF − trained, exact p → 0 L/p
        below = [f"{s:.3f}" for s, g in zip(sigmas, gaps) if s > 0 and g < 0]
        rows.append(_row("SNMF (authors' target) lies above the trained model (smallest gap SNMF − trained)",
                         "above", float(gaps[1:].min()) if len(gaps) > 1 else None, None,
                         check=len(gaps) > 1 and bool(gaps[1:].min() >= -0.003), figure=fig,
                         note="exact p → 0 L/p of both; within ±0.003 counts as above"
                              + (f"; strictly below at σ = {', '.join(below)}" if below else "")))
    if "small_p" in numbers:
        small, fig = numbers["small_p"], "small_p.png"
        trained = small["trained"]
        rows.append(_row("exact p → 0 L/p agrees with one-active Monte Carlo", trained["exact"],
                         trained["monte_carlo"], trained["monte_carlo_stderr"],
                         check=abs(trained["exact"] - trained["monte_carlo"]) <= 4 * trained["monte_carlo_stderr"],
                         figure=fig, note="within 4 standard errors"))
        rows.append(_row("naive model, exact p → 0 L/p", NAIVE, small["naive_exact"], None, tolerance=1e-12,
                         figure=fig))
        clean = small["optimum"]["clean"]["loss_over_p"]
        rows.append(_row("noise-free small-p optimum, clean labels: cannot beat 1/12", NAIVE, clean, None,
                         check=clean >= NAIVE - 1e-9, figure=fig))
    return rows


def write_report(path, numbers, scale, scale_name, seed, workers, seconds, trainings=None, earlier=()):
    """REPORT.md: claims beside our numbers, then settings, versions and wall time.

    ``trainings`` is ``{"total": …, "computed": …}``: how many of the trainings this run computed
    (the others came from the cache, so the wall time covers only the computed ones). ``earlier`` names
    the experiments whose numbers come from an earlier run in the same folder.
    """
    import scipy

    rows = claim_rows(numbers)
    lines = ["# cc_numpy reproduction report", "",
             f"Scale: **{scale_name}**; seed {seed}; {workers} worker(s); wall time {seconds / 60:.1f} min"
             + (f" ({trainings['computed']} of {trainings['total']} trainings computed in this run, the rest "
                "from the cache)." if trainings else "."), "",
             ] + ([f"Rows of {', '.join(earlier)} come from an earlier run in this folder.", ""] if earlier else []) + [
             f"{sum(r['ok'] for r in rows)} of {len(rows)} claims reproduced within tolerance "
             "(±0.003 unless the note says otherwise).", "",
             "| claim | paper | ours | ok | figure | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['claim']} | {r['paper']} | {r['ours']} | {'✓' if r['ok'] else '✗'} | "
                     f"[{r['figure']}](figures/{r['figure']}) | {r['note']} |")
    if "low_rank" in numbers:
        low = numbers["low_rank"]
        lines += ["", "## Low-rank M (no published numbers; ours)", "",
                  "| rank | Gaussian U Vᵀ: L/p | learned σ | orthonormal: L/p | learned σ |", "|---|---|---|---|---|"]
        collapsed = [f"{kind} rank {rank}" for kind in ("lowrank", "lowrank_orthonormal")
                     for rank, sigma in zip(low["rank"], low[kind]["sigma"]) if sigma < 0.002]
        if collapsed:
            lines.insert(len(lines) - 2, "Learned σ collapsed to about 0 (|σ| has a kink at 0 where AdamW can stall "
                                         f"before the weights exploit M) for: {', '.join(collapsed)}.\n")
        for i, rank in enumerate(low["rank"]):
            lines.append(f"| {rank} | {low['lowrank']['loss_over_p'][i]:.4f} ± {low['lowrank']['stderr'][i]:.4f} | "
                         f"{low['lowrank']['sigma'][i]:.4f} | {low['lowrank_orthonormal']['loss_over_p'][i]:.4f} ± "
                         f"{low['lowrank_orthonormal']['stderr'][i]:.4f} | {low['lowrank_orthonormal']['sigma'][i]:.4f} |")
    if "snmf" in numbers:
        snmf = numbers["snmf"]
        lines += ["", "## SNMF baselines against trained models (exact p → 0 L/p)", "",
                  "| M | σ | SNMF, I + σM (ours) | SNMF, I + σMᵀ (authors') | trained | trained, sampled at p = 0.01 |",
                  "|---|---|---|---|---|---|"]
        for kind in ("asymmetric", "symmetric"):
            e = snmf[kind]
            for i, sigma in enumerate(snmf["sigma"]):
                lines.append(f"| {kind} | {sigma:.3f} | {e['snmf_ours'][i]:.4f} | {e['snmf_authors'][i]:.4f} | "
                             f"{e['trained_small_p'][i]:.4f} | {e['trained_sampled'][i]:.4f} |")
    lines += ["", "## Settings", "", "```", json.dumps(scale, indent=1), "```", "",
              f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
              f"{platform.platform()}; {os.cpu_count()} CPUs.", ""]
    save_text(path, "\n".join(lines))
    return rows
