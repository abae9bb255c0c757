"""From a finished study to a shortlist to train: the feasible Pareto front (accuracy score up,
predicted latency down), thinned to a few architectures spread evenly along its latency range
(or topped up from the next non-dominated layers when the front is small), with the published
models of the searched families predicted the same way beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import optuna

from explorer.architectures import FLAT_SPACES, family_of
from explorer.search.nearest import nearest_preset
from explorer.search.space import DEFAULT_SPACE, reference_configs, study_resolutions, study_space, trial_config
from explorer.search.study import Evaluation, Evaluator, evaluations, feasible
from search_spaces.base import ArchConfig
from search_spaces.lowformer import LowFormerConfig

DEFAULT_TOP = 8
#: For objectives in top-1 points (the surrogate's), the shortlist keeps the part of the front
#: within this many points of its best entry: a network predicted several points below what the
#: budget affords is not one to train for it, however fast it is.
TOP1_WINDOW = 3.0


@dataclass(frozen=True)
class Candidate:
    """A row of the shortlist (``trial`` set) or of the reference models (``name`` set)."""

    config: ArchConfig
    evaluation: Evaluation
    meets_budget: bool
    trial: int | None = None
    name: str | None = None

    @property
    def family(self) -> str:
        return family_of(self.config.space)

    def as_dict(self, accuracy: dict | None = None) -> dict:
        """JSON-ready row; ``accuracy`` is the surrogate's view of the config (key ``accuracy``:
        predicted top-1 mean, ``interval_90``, ``nearest_result``, ``extrapolation``)."""
        nearest, distance = nearest_preset(self.config)
        return {
            "trial": self.trial, "name": self.name, "family": self.family, **asdict(self.evaluation),
            "latency_provenance": "predicted", "meets_budget": self.meets_budget,
            "nearest_preset": nearest, "preset_distance": round(distance, 3),
            "knobs": key_knobs(self.config), "config": {"space": self.config.space, **self.config.to_dict()},
            "resolution": self.config.resolution, "accuracy": accuracy,
        }


def key_knobs(config: ArchConfig) -> dict:
    """The knobs that tell architectures apart at a glance: LowFormer's grouped by kind (widths,
    depths, attention, ...), any other family's its flat knob table."""
    if not isinstance(config, LowFormerConfig):
        return FLAT_SPACES[config.space].to_flat(config)
    return {
        "widths": list(config.widths), "depths": list(config.depths),
        "attention": [config.stage3.attention, config.stage4.attention],
        "mlp": [config.stage3.mlp, config.stage4.mlp],
        "expansions": [config.stem_expansion, config.downsample_expansion, config.block_expansion],
        "head_widths": list(config.head_widths),
    }


Row = tuple[optuna.trial.FrozenTrial, Evaluation]


def _split_front(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """(non-dominated rows sorted by latency, the others) of feasible rows with unique ids."""
    ordered = sorted(rows, key=lambda r: (r[1].latency_ms, -r[1].score))
    front, rest, best = [], [], -np.inf
    for row in ordered:
        (front if row[1].score > best else rest).append(row)
        best = max(best, row[1].score)
    return front, rest


def _feasible_unique(rows: Sequence[Row]) -> list[Row]:
    unique: dict[str, Row] = {}
    for trial, evaluation in rows:
        if feasible(trial):
            unique.setdefault(evaluation.arch_id, (trial, evaluation))
    return list(unique.values())


def pareto_front(rows: Sequence[Row]) -> list[Row]:
    """Feasible, non-dominated rows (one per architecture), sorted by predicted latency."""
    return _split_front(_feasible_unique(rows))[0]


def spread(front: Sequence, top: int) -> list:
    """``top`` members at evenly spaced positions of the latency-sorted front (ends included)."""
    if len(front) <= top:
        return list(front)
    return [front[i] for i in np.unique(np.round(np.linspace(0, len(front) - 1, top)).astype(int))]


def shortlist_rows(rows: Sequence[Row], top: int, window: float | None = None) -> list[Row]:
    """``top`` rows spread along the front; a front smaller than ``top`` is topped up from the
    next non-dominated layers (the runners-up), so there are always enough to train. With
    ``window``, only rows scoring within ``window`` of the best feasible score are considered."""
    picked, remaining = [], _feasible_unique(rows)
    if window is not None and remaining:
        best = max(evaluation.score for _, evaluation in remaining)
        remaining = [row for row in remaining if row[1].score >= best - window]
    while remaining and len(picked) < top:
        layer, remaining = _split_front(remaining)
        picked += spread(layer, top - len(picked))
    return sorted(picked, key=lambda r: (r[1].latency_ms, -r[1].score))


def score_window(objective: str) -> float | None:
    """The shortlist's window below the best score: :data:`TOP1_WINDOW` for scores in top-1 points."""
    return TOP1_WINDOW if objective.startswith("surrogate") else None


def shortlist(study: optuna.Study, top: int = DEFAULT_TOP) -> list[Candidate]:
    window = score_window(study.user_attrs.get("objective", ""))
    return [Candidate(trial_config(study, trial), evaluation, True, trial=trial.number)
            for trial, evaluation in shortlist_rows(evaluations(study), top, window)]


def reference_candidates(evaluator: Evaluator, resolution: int, budget_ms: float,
                         space: str = DEFAULT_SPACE, resolutions: tuple[int, ...] = ()) -> list[Candidate]:
    """The published models of the families ``space`` searches, predicted and scored like any
    candidate (at their published resolutions when the search searches resolution)."""
    configs = reference_configs(resolution, space, resolutions)
    return [Candidate(config, evaluation, evaluation.high_ms <= budget_ms, name=name)
            for (name, config), evaluation in zip(configs.items(), evaluator.evaluate(list(configs.values())))]


def search_report(study: optuna.Study, evaluator: Evaluator, top: int = DEFAULT_TOP) -> dict:
    """Everything ``explorer search`` prints, as JSON-ready data (keys: see :mod:`explorer.search`)."""
    attrs = study.user_attrs
    rows = evaluations(study)
    front = pareto_front(rows)
    return {
        "study": study.study_name,
        "space": study_space(study),
        "device": attrs["device"],
        "budget_ms": attrs["budget_ms"],
        "resolution": attrs["resolution"],
        "resolutions": list(study_resolutions(study)),
        "objective": attrs["objective"],
        "objective_label": attrs["objective_label"],
        "predictor": attrs["predictor"],
        "trials": len(rows),
        "unique_architectures": len({e.arch_id for _, e in rows}),
        "feasible_trials": sum(feasible(t) for t, _ in rows),
        "pareto_size": len(front),
        "shortlist_window": score_window(attrs["objective"]),
        "shortlist": _rows(shortlist(study, top), evaluator),
        "references": _rows(reference_candidates(evaluator, attrs["resolution"], attrs["budget_ms"],
                                                 study_space(study), study_resolutions(study)), evaluator),
    }


def frontier_positions(macs: Sequence[int], means: Sequence[float | None]) -> list[dict]:
    """Where each architecture stands against the published state of the art at its compute: the
    best clean ImageNet-1k top-1 published at no more MACs (:func:`predictors.reference.best_published`),
    the network that holds it, and ``distance``, the predicted ``mean`` minus that top-1 (points;
    positive: the prediction claims to beat every published network of its compute). Nulls where no
    published network is that small or there is no prediction."""
    from predictors.reference import best_published

    macs_m = np.asarray(macs, dtype=np.float64) / 1e6
    best, labels = best_published(macs_m) if len(macs_m) else (np.array([]), [])
    out = []
    for m, top1, label, mean in zip(macs_m, best, labels, means):
        known = bool(np.isfinite(top1))
        out.append({"best_top1": round(float(top1), 3) if known else None, "best_model": label or None,
                    "macs_m_at_most": round(float(m), 1),
                    "distance": round(mean - float(top1), 2) if known and mean is not None else None})
    return out


def dominating_reference(entry: dict, measured: Sequence[dict]) -> dict | None:
    """The measured reference network (``explorer.space.reference_within_budget`` rows) that beats
    a shortlist entry on both axes, or None: measured latency at most the entry's predicted median,
    and a published top-1 above the entry's pessimistic bound (the low end of the surrogate's
    ~90 % interval). Only ImageNet-1k-only, undistilled figures count: a distilled or pre-trained
    network's top-1 is not what training the entry's way would give it. Of several, the most
    accurate."""
    accuracy = entry.get("accuracy") or {}
    if not accuracy.get("interval_90"):
        return None
    low = accuracy["interval_90"][0]
    beaten = [r for r in measured if r.get("top1") is not None and not r.get("distilled") and not r.get("extra_data")
              and r["latency_ms"] <= entry["latency_ms"] and r["top1"] > low]
    if not beaten:
        return None
    best = max(beaten, key=lambda r: r["top1"])
    return {"name": best["name"], "latency_ms": best["latency_ms"], "top1": best["top1"],
            "entry_pessimistic_top1": round(low, 2), "entry_latency_ms": round(entry["latency_ms"], 3)}


def _rows(candidates: Sequence[Candidate], evaluator: Evaluator) -> list[dict]:
    describe = getattr(evaluator.objective, "describe", None)
    views = describe([c.config for c in candidates]) if describe is not None else [None] * len(candidates)
    frontier = frontier_positions([c.evaluation.macs for c in candidates],
                                  [view["mean"] if view else None for view in views])
    return [{**c.as_dict(view), "published_frontier": position}
            for c, view, position in zip(candidates, views, frontier)]
