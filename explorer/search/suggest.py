"""Which architectures to train next: the few whose results would most improve the accuracy
available within a latency budget.

The candidates are random architectures of the searched families and mutations of the ones with
known results, kept when the latency predictor's upper bound meets the budget. Each is scored by
its **expected improvement** over the best known result within the budget, under the accuracy
surrogate's predictive distribution (an unexplored shape with a wide interval can be worth
training even if its mean is modest; one predicted well below the best is not). A batch is kept
diverse by **local penalisation**: once a candidate is picked, the expected improvement of its
neighbours (in the surrogate's own metric) shrinks, so the batch does not spend several training
runs on one corner of the space.

The suggested configs are kept in the architectures table (:func:`keep_suggestions`), so the ids
the command prints resolve wherever an arch id is taken: ``results import``, ``predict``,
``space show``, ``measure --file``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from explorer.db import Database, upsert_architecture
from explorer.search.space import flat_spaces
from predictors.surrogate import descriptors, feature_matrix
from search_spaces.base import ArchConfig, arch_id

DEFAULT_POOL = 2000
MUTATIONS_PER_RESULT = 20


@dataclass(frozen=True)
class Suggestion:
    config: ArchConfig
    expected_improvement: float
    mean: float
    low: float
    high: float
    latency_ms: float
    latency_high_ms: float
    nearest_result: str

    def to_dict(self) -> dict:
        return {"arch_id": arch_id(self.config), "family": self.config.space, "resolution": self.config.resolution,
                "expected_improvement": self.expected_improvement, "top1_mean": self.mean,
                "top1_interval_90": [self.low, self.high], "latency_ms": self.latency_ms,
                "latency_high_ms": self.latency_high_ms, "latency_provenance": "predicted",
                "nearest_result": self.nearest_result,
                "config": {"space": self.config.space, **self.config.to_dict()}}


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """E[max(0, f - best)] for f ~ N(mean, std^2)."""
    std = np.maximum(std, 1e-9)
    z = (mean - best) / std
    return (mean - best) * stats.norm.cdf(z) + std * stats.norm.pdf(z)


def candidate_pool(space: str, known: Sequence[ArchConfig], n: int, seed: int, resolution: int) -> list[ArchConfig]:
    """Random architectures of ``space``'s families plus mutations of the known ones in it."""
    spaces = flat_spaces(space)
    rng = np.random.default_rng(seed)
    per_space = max(1, n // len(spaces))
    pool = [c for i, s in enumerate(spaces.values()) for c in s.sample(per_space, seed + i, resolution=resolution)]
    for config in known:
        flat = spaces.get(config.space)
        if flat is None or not flat.contains(config):
            continue
        pool += [flat.mutate(config, rng, n_knobs=int(rng.integers(1, 4))) for _ in range(MUTATIONS_PER_RESULT)]
    return list({arch_id(c): c for c in pool}.values())


def suggest_batch(candidates: Sequence[ArchConfig], surrogate, latency, budget_ms: float, k: int,
                  known: Sequence[ArchConfig] = (), known_top1: Sequence[float] = ()) -> list[Suggestion]:
    """``k`` diverse candidates with the highest expected improvement over the best known result
    whose predicted latency meets the budget (over the best pessimistic bound of a feasible
    candidate when none does)."""
    known_ids = {arch_id(c) for c in known}
    candidates = [c for c in candidates if arch_id(c) not in known_ids]
    if not candidates or k < 1:
        return []
    median, _, high = (np.asarray(v, dtype=float) for v in latency.predict(candidates))
    feasible = np.flatnonzero(high <= budget_ms)
    if feasible.size == 0:
        return []
    candidates = [candidates[i] for i in feasible]
    median, high = median[feasible], high[feasible]
    features = feature_matrix(candidates, surrogate.features)
    prediction = surrogate.predict_features(features, [descriptors(c) for c in candidates])
    best = -np.inf
    if known:
        _, _, known_high = (np.asarray(v, dtype=float) for v in latency.predict(list(known)))
        within = [t for t, h in zip(known_top1, known_high) if h <= budget_ms]
        best = max(within, default=-np.inf)
    if not np.isfinite(best):
        best = float(np.max(prediction.low))
    gain = expected_improvement(prediction.mean, prediction.std, best)
    picked: list[int] = []
    penalty = np.ones(len(candidates))
    for _ in range(min(k, len(candidates))):
        score = gain * penalty
        score[picked] = -np.inf
        choice = int(np.argmax(score))
        picked.append(choice)
        penalty *= 1.0 - np.exp(-0.5 * surrogate.distance_features(features, features[choice])[:, 0])
    return [Suggestion(candidates[i], float(gain[i]), float(prediction.mean[i]), float(prediction.low[i]),
                       float(prediction.high[i]), float(median[i]), float(high[i]),
                       surrogate.labels_[int(prediction.nearest[i])]) for i in picked]


def keep_suggestions(db: Database, suggestions: Sequence[Suggestion]) -> None:
    """Store the suggested configs (with params and MACs), so their printed ids resolve."""
    with db.session() as session:
        for suggestion in suggestions:
            upsert_architecture(session, suggestion.config)
