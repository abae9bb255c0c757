"""Budgeted architecture search: ``explorer search --device raspi5 --budget 40ms``.

Library entry points::

    from explorer.search import SearchSettings, ModelSource, run_search, search_report
    settings = SearchSettings(device="raspi5", budget_ms=40.0, objective="default", space="all")
    study = run_search(settings, storage_url, ModelSource(db_url, "raspi5"), workers=1)

``space`` is a name of :data:`explorer.architectures.FLAT_SPACES` or ``all`` (every family; see
:mod:`explorer.search.space`). ``search_report`` (and ``explorer search --json``) returns a dict
with the keys

* ``study``, ``storage``, ``space``, ``device``, ``budget_ms``, ``resolution`` (the fixed one, or
  224 when resolution is searched), ``resolutions`` (the searched input sides; empty when fixed), ``objective``
  (score name), ``objective_label`` (what the score is, e.g. "surrogate top-1 (predicted),
  ImageNet %"), ``predictor`` (name of the latency model);
* ``trials`` (completed), ``unique_architectures``, ``feasible_trials``, ``pareto_size``,
  ``shortlist_window`` (for top-1 objectives, the shortlist keeps the front within this many points
  of its best score; null otherwise);
* ``shortlist``: 5-10 architectures spread along the feasible Pareto front, fastest first, and
  ``references``: the published models of the searched families at the same resolution. Each
  entry has ``trial`` (study trial number, null for references), ``name`` (preset name, null for
  trials), ``family`` (lowformer, efficientvit, fmvit or mcga), ``arch_id``, ``score``,
  ``latency_ms``, ``low_ms``, ``high_ms`` (predicted median and ~90 % interval),
  ``latency_provenance`` ("predicted"), ``meets_budget`` (upper bound within budget), ``macs``,
  ``params``, ``nearest_preset``, ``preset_distance`` (the closest published model of the same
  family and knob table, see :mod:`explorer.search.nearest`), ``knobs`` (LowFormer: widths,
  depths, attention, mlp, expansions, head_widths; other families: their flat knobs) and
  ``config`` (the full config with its ``space``, loadable with ``explorer.resolve``),
  ``resolution`` (input side) and ``accuracy`` (the surrogate's view, whatever the objective:
  ``mean`` predicted top-1 %, ``interval_90``, ``std``, ``nearest_result`` with ``name`` and
  ``top1``, ``extrapolation`` and ``reasons``; null without enough known results) and
  ``published_frontier`` (where the entry stands against the published state of the art at its
  compute: ``best_top1``, the best clean ImageNet-1k top-1 published at no more MACs,
  ``best_model`` the network that holds it, e.g. "ghostnetv2_100.in1k @ 224", ``macs_m_at_most``
  the entry's MACs in millions, ``distance`` the surrogate's mean minus ``best_top1``, in points;
  nulls where no published network is that small or there is no mean; see
  :func:`explorer.search.shortlist.frontier_positions`);
* ``dashboard``: path of the HTML dashboard, or null.

``explorer search --json`` adds ``score_evidence`` (what the stored scores rest on: ``objective``,
``objective_version`` and, for the surrogate's scores, ``accuracy_evidence``, the digest of the
results it is fitted on) and ``study_rescored``: null, or, when this run found the stored study
scored on other evidence and re-scored its trials, ``trials``, ``changed`` (each changed part:
[stored, now]) and ``message``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from queue import Empty

import optuna

from explorer.search.budget import BudgetError, parse_budget
from explorer.search.journal import default_storage_url, open_storage
from explorer.search.models import (
    ModelSource,
    ScoreObjective,
    load_latency_model,
    stale_study_message,
    study_evaluator,
)
from explorer.search.shortlist import DEFAULT_TOP, pareto_front, search_report, shortlist
from explorer.search.space import ALL, DEFAULT_SPACE, check_space, space_names, trial_config
from explorer.search.study import (
    SAMPLERS,
    Evaluation,
    Evaluator,
    LatencyModel,
    Objective,
    Rescore,
    SearchSettings,
    SearchSetupError,
    completed,
    load_study,
    open_study,
    run_batches,
    start_study,
    worker_shares,
)

ModelFactory = Callable[[], "tuple[LatencyModel, Objective]"]


def _worker(storage_url: str, settings: SearchSettings, models: ModelFactory, worker: int, n_trials: int,
            seed_presets: bool, queue) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    latency, objective = models()
    study = optuna.load_study(study_name=settings.name, storage=open_storage(storage_url))
    run_batches(study, settings, Evaluator(latency, objective), n_trials, worker=worker, seed_presets=seed_presets,
                on_batch=queue.put)


def run_search(settings: SearchSettings, storage_url: str, models: ModelFactory, *, workers: int = 1,
               on_batch: Callable[[int], None] | None = None,
               evaluator: Evaluator | None = None,
               on_rescore: Callable[[Rescore], None] | None = None) -> optuna.Study:
    """Bring the study to ``settings.trials`` completed trials (resuming it if it exists; a
    stored study scored on other evidence is re-scored first and ``on_rescore`` told).

    ``workers > 1`` runs that many processes on the shared storage, each loading its own models
    from the picklable ``models`` factory. ``evaluator`` lets a caller that already holds the
    models (and their caches) reuse them in-process.
    """
    if workers < 1:
        raise SearchSetupError(f"invalid --workers {workers}; allowed: an integer >= 1")
    evaluator = evaluator or Evaluator(*models())
    study = start_study(storage_url, settings, evaluator, on_rescore)
    done = completed(study)
    shares = [n for n in worker_shares(settings.trials - done, workers) if n]
    if len(shares) <= 1:
        if shares:
            run_batches(study, settings, evaluator, shares[0], seed_presets=done == 0, on_batch=on_batch)
        return study
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_worker, args=(storage_url, settings, models, i, n, done == 0 and i == 0,
                                                       queue))
                 for i, n in enumerate(shares)]
    for process in processes:
        process.start()
    try:
        remaining = sum(shares)
        while (remaining > 0 and any(p.is_alive() for p in processes)) or not queue.empty():
            try:
                size = queue.get(timeout=0.5)
            except Empty:
                continue
            remaining -= size
            if on_batch is not None:
                on_batch(size)
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise SearchSetupError(f"{len(failed)} search worker(s) failed (exit codes {failed}); "
                               "finished trials are stored, re-run the command to resume")
    return optuna.load_study(study_name=settings.name, storage=open_storage(storage_url))


__all__ = [
    "ALL",
    "DEFAULT_SPACE",
    "DEFAULT_TOP",
    "SAMPLERS",
    "BudgetError",
    "Evaluation",
    "Evaluator",
    "LatencyModel",
    "ModelSource",
    "Objective",
    "Rescore",
    "ScoreObjective",
    "SearchSettings",
    "SearchSetupError",
    "check_space",
    "completed",
    "default_storage_url",
    "load_latency_model",
    "load_study",
    "open_storage",
    "open_study",
    "pareto_front",
    "parse_budget",
    "run_search",
    "search_report",
    "shortlist",
    "space_names",
    "stale_study_message",
    "start_study",
    "study_evaluator",
    "trial_config",
]
