"""Scoring architectures by name, with the database as a cache.

Scores that build a network (zero-cost proxies, micro-task) are stored in ``proxy_scores`` under
(arch_id, score, version, scoring resolution), where the version also encodes the seed and, for
the micro-task, the task and schedule; a changed computation gets a new version and so is
recomputed. Each value is stored as soon as it is computed, so an interrupted run resumes where
it stopped. Micro-task results also go to ``accuracy_results`` (provenance ``micro-task``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select

from explorer.db import Database, ProxyScore, upsert_architecture
from explorer.errors import UserError
from predictors.proxies.microtask import GeneratedTask, MicroTaskSettings, Task, microtask
from predictors.proxies.registry import (
    MICRO_TASK,
    SIZE,
    SURROGATE,
    SURROGATE_STATISTIC,
    ZERO_COST,
    ScoreSpec,
    score_spec,
)
from predictors.proxies.size import macs, params, size_rank
from predictors.proxies.zero_cost import ZERO_COST_PROXIES, default_scoring_resolution
from predictors.results import MICRO_TASK as MICRO_TASK_PROVENANCE
from predictors.results import MICRO_TASK_SOURCE, load_surrogate, store_result
from search_spaces.base import ArchConfig, arch_id

SIZE_SCORES = {"params": params, "macs": macs, "size-rank": size_rank}


class NotCachedError(UserError):
    """An expensive score was requested for architectures without a cached value."""

    def __init__(self, objective: str, missing: int):
        super().__init__(
            f"objective {objective!r} trains a network per architecture and {missing} of the requested "
            "architectures have no cached value; compute them explicitly (compute_expensive=True, or "
            f"'explorer proxy score NAME --objective {objective}') or choose a cheap objective")


@dataclass(frozen=True)
class ScoringOptions:
    """How scores are computed. ``resolution``: scoring resolution of the zero-cost proxies
    (None: the config's resolution scaled by 64/224, see ``default_scoring_resolution``);
    ``seed``: network initialisation and synthetic inputs; ``task``/``microtask``: the
    micro-task and its schedule; ``compute_expensive``: train micro-tasks that are not cached;
    ``threads``: torch threads while computing (restored afterwards). One by default: these are
    small-batch passes that gain little from threads, and on a shared or busy machine OpenMP
    threads waiting for each other make them several times slower."""

    resolution: int | None = None
    seed: int = 0
    task: Task = field(default_factory=GeneratedTask)
    microtask: MicroTaskSettings = field(default_factory=MicroTaskSettings)
    compute_expensive: bool = False
    threads: int = 1

    def scoring_resolution(self, spec: ScoreSpec, config: ArchConfig) -> int:
        if spec.kind == MICRO_TASK:
            return self.task.resolution
        if spec.kind == ZERO_COST:
            return self.resolution or default_scoring_resolution(config)
        return config.resolution

    def cache_version(self, spec: ScoreSpec) -> str:
        """At most 32 characters (the column width): the score version plus a digest of what
        else determines the value."""
        extra = f"seed={self.seed}"
        if spec.kind == MICRO_TASK:
            extra = f"{self.task.name};{self.microtask.key()}"
        return f"{spec.version}-{hashlib.sha256(extra.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class ScoreValue:
    value: float
    seconds: float
    resolution: int
    cached: bool  # read from the database rather than computed now


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _compute(spec: ScoreSpec, config: ArchConfig, options: ScoringOptions) -> tuple[float, float]:
    started = time.perf_counter()
    if spec.kind == SIZE:
        value = SIZE_SCORES[spec.name](config)
    else:
        with torch_threads(options.threads):
            if spec.kind == ZERO_COST:
                value = ZERO_COST_PROXIES[spec.name](config, options.scoring_resolution(spec, config), options.seed)
            else:
                value = microtask(config, options.task, options.microtask).top1
    return float(value), time.perf_counter() - started


def _cached(db: Database, spec: ScoreSpec, keys: Sequence[tuple[str, int]], version: str) -> dict[tuple[str, int], ProxyScore]:
    wanted = set(keys)
    ids = sorted({k for k, _ in keys})
    out: dict[tuple[str, int], ProxyScore] = {}
    with db.session() as session:
        for start in range(0, len(ids), 500):
            query = select(ProxyScore).where(ProxyScore.score == spec.name, ProxyScore.version == version,
                                             ProxyScore.arch_id.in_(ids[start:start + 500]))
            for row in session.scalars(query):
                if (row.arch_id, row.resolution) in wanted:
                    out[(row.arch_id, row.resolution)] = row
    return out


def _store(db: Database, spec: ScoreSpec, config: ArchConfig, version: str, resolution: int, value: float,
           seconds: float, options: ScoringOptions) -> None:
    with db.session() as session:
        upsert_architecture(session, config)
        session.add(ProxyScore(arch_id=arch_id(config), score=spec.name, version=version, resolution=resolution,
                               value=value, seconds=seconds))
        if spec.kind == MICRO_TASK:
            store_result(session, config, options.task.name, value, None,
                         f"{MICRO_TASK_SOURCE}v{spec.version}: {options.microtask.key()}", MICRO_TASK_PROVENANCE)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


def score_values(db: Database | None, configs: Sequence[ArchConfig], objective: str,
                 options: ScoringOptions | None = None, progress: bool = False) -> list[ScoreValue]:
    """Values of one score for many configs with their cost and provenance (see module doc).
    ``db=None`` computes without caching. The surrogate needs ``db`` (its results)."""
    options = options or ScoringOptions()
    spec = score_spec(objective)
    if spec.kind == SURROGATE:
        if db is None:
            raise UserError("the surrogate is fitted on the database's results; pass a database")
        started = time.perf_counter()
        prediction = load_surrogate(db).predict(configs)
        values = getattr(prediction, SURROGATE_STATISTIC[spec.name])
        each = (time.perf_counter() - started) / max(1, len(configs))
        return [ScoreValue(float(v), each, c.resolution, False) for v, c in zip(values, configs)]
    if not spec.cached or db is None:
        if spec.expensive and not options.compute_expensive:
            raise NotCachedError(objective, len(configs))
        return [ScoreValue(*_compute(spec, c, options), options.scoring_resolution(spec, c), False) for c in configs]
    version = options.cache_version(spec)
    keys = [(arch_id(c), options.scoring_resolution(spec, c)) for c in configs]
    found = _cached(db, spec, keys, version)
    values = {k: ScoreValue(row.value, row.seconds, k[1], True) for k, row in found.items()}
    missing = {key: i for i, key in reversed(list(enumerate(keys))) if key not in found}  # first index per key
    if missing and spec.expensive and not options.compute_expensive:
        raise NotCachedError(objective, len(missing))
    with _progress(progress and bool(missing)) as bar:
        job = bar.add_task(objective, total=len(missing))
        for key, i in sorted(missing.items(), key=lambda item: item[1]):
            value, seconds = _compute(spec, configs[i], options)
            _store(db, spec, configs[i], version, key[1], value, seconds, options)
            values[key] = ScoreValue(value, seconds, key[1], False)
            bar.advance(job)
    return [values[key] for key in keys]


def cached_values(db: Database, configs: Sequence[ArchConfig], objective: str,
                  options: ScoringOptions | None = None) -> list[ScoreValue | None]:
    """The stored values of a cached score (None where there is none); computes nothing."""
    options = options or ScoringOptions()
    spec = score_spec(objective)
    if not spec.cached:
        raise ValueError(f"score {objective!r} is not cached; compute it with score_values")
    version = options.cache_version(spec)
    keys = [(arch_id(c), options.scoring_resolution(spec, c)) for c in configs]
    found = _cached(db, spec, keys, version)
    return [ScoreValue(found[k].value, found[k].seconds, k[1], True) if k in found else None for k in keys]


def score_configs(db: Database | None, configs: Sequence[ArchConfig], objective: str,
                  options: ScoringOptions | None = None, progress: bool = False) -> np.ndarray:
    """One accuracy score per config (higher = predicted more accurate), as a float array.

    ``objective``: a name from ``available_objectives()`` (the one with the best measured evidence
    is :func:`predictors.calibration.default_objective`). Cheap scores are computed directly,
    zero-cost proxies are read from or written to the cache, and ``microtask`` raises
    :class:`NotCachedError` for uncached configs unless ``options.compute_expensive``."""
    return np.array([v.value for v in score_values(db, configs, objective, options, progress)], dtype=np.float64)


def surrogate_details(surrogate, config: ArchConfig) -> dict:
    """The surrogate's view of one config: predicted mean and ~90 % interval (top-1 %), standard
    deviation, extrapolation flags and the nearest result it rests on."""
    prediction = surrogate.predict([config])
    nearest = int(prediction.nearest[0])
    return {"mean": float(prediction.mean[0]), "std": float(prediction.std[0]),
            "interval_90": [float(prediction.low[0]), float(prediction.high[0])],
            "extrapolation": bool(prediction.flagged[0]), "reasons": list(prediction.reasons[0]),
            "nearest_result": {"name": surrogate.labels_[nearest], "top1": float(surrogate.targets_[nearest])},
            "surrogate_variant": surrogate.variant}
