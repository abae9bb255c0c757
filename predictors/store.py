"""Predictors in the database: training sets from measurements, training, storing and loading.

A model is stored as JSON text (XGBoost boosters as their JSON model, everything else as plain
coefficients), never as a pickle, together with its held-out metrics, the feature version, the
ids of the architectures it was trained on and the library versions that made it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from explorer.architectures import FAMILIES, config_from_dict, family_of
from explorer.db import (
    BUSY_FLAG,
    Architecture,
    Database,
    Device,
    Measurement,
    Predictor,
    ok_measurements,
    resolve_device,
)
from explorer.errors import UserError
from explorer.reference import SPACE as REFERENCE_SPACE
from predictors.features import FEATURE_VERSION, OpFeaturizer
from predictors.fewshot import CostModel
from predictors.latency import (
    DEFAULT_KIND,
    FEW_POINT_KINDS,
    KINDS,
    LatencyPredictor,
    NoPredictorError,
    TrainingDataError,
    estimator_from_json,
    estimator_to_json,
    interval_groups,
    make_estimator,
)
from predictors.metrics import MacsBaseline, cross_validate, regression_metrics
from predictors.transfer import mixture_sources
from search_spaces.base import ArchConfig, KnobError

#: below this many measured architectures a device gets the few-shot cost model by default
FEW_SHOT_LIMIT = 40
#: points from which a transfer meets the new-device targets (Spearman >= 0.95, MAPE <= 10 %,
#: ~90 % intervals covering 85-95 %): benchmarks/new_device.py measures 9.6 % MAPE at k = 10
#: random points (9.8 % chosen ones) and 11.6 % at k = 5. Without a transfer source the few-shot
#: model stays at 12-16 % from 10 to 50 points there, so such a device is pointed to
#: ``FEW_SHOT_LIMIT``, from which it gets a model of its own
TRANSFER_POINTS = 10
#: training weight of an architecture that only approximates the measured one (``exact`` False,
#: e.g. the study's toy-conv models whose layers per stage were not published)
INEXACT_WEIGHT = 0.1
PRIORS = ("generic", "local")
#: latency targets a training set can use (see :class:`TrainingSet`)
TARGETS = ("absolute", "relative", "drift-corrected")
#: measurements on each side whose reference timings are pooled for the drift correction: wide
#: enough that one slow reference run does not move a latency, narrow enough (a few minutes of a
#: campaign) to follow the machine's slow drift
DRIFT_WINDOW = 25
#: fewer repeat pairs than this cannot rank the targets (a 10-point calibration campaign has the 2
#: of its drift checks): then each median over its own reference timing (``relative``), which
#: follows a machine whose speed changes within minutes. On a 2-vCPU VM whose speed moved by 40 %
#: within a campaign, its repeat pairs differed by a median 5.4 %, drift-corrected ones by 13.5 %
#: (162 pairs, ``benchmarks/new_host.py --repeat``); on a quiet machine it costs the reference's noise.
MIN_RANKING_PAIRS = 10
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "xgboost")


class DamagedPredictorError(UserError):
    """A stored predictor whose model cannot be read back; the other predictors stay usable."""


def _estimator(row: Predictor, sources: dict[str, Any] | None = None) -> Any:
    """The estimator stored in ``row``; a damaged model (cut or edited JSON) is a clear error
    naming the row and how to replace it, not a decoder traceback."""
    try:
        return estimator_from_json(row.kind, row.model_blob, sources)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise _damaged(row, err) from None


def _damaged(row: Predictor, err: Exception) -> DamagedPredictorError:
    detail = (str(err).splitlines() or [""])[0]
    return DamagedPredictorError(
        f"stored predictor #{row.id} of {row.device!r} ({row.kind}) cannot be read ({type(err).__name__}: "
        f"{detail:.120}); retrain it with `explorer predictor train --device {row.device}`")


@dataclass(frozen=True)
class Setup:
    """What a latency depends on besides the architecture."""

    device: str
    backend: str
    batch: int
    threads: int | None


@dataclass(frozen=True)
class TrainingSet:
    """One setup's current measurements as configs and per-image latencies.

    target: how a measured median became ``latency_ms`` (:data:`TARGETS`): ``absolute`` (the
    median itself), ``relative`` (its ratio to the reference model timed beside it, times
    ``reference_ms``) or ``drift-corrected`` (the median divided by the running median of the
    reference over the :data:`DRIFT_WINDOW` neighbouring measurements of its campaign, times
    ``reference_ms``); the one whose repeat pairs agree best (``relative`` with too few of them
    to tell, :data:`MIN_RANKING_PAIRS`).
    repeatability: agreement of repeated measurements of the same architectures, if any.
    exact: per architecture, False where the stored config only approximates the measured model.
    """

    setup: Setup
    configs: tuple[ArchConfig, ...]
    arch_ids: tuple[str, ...]
    latency_ms: np.ndarray
    provenance: str
    target: str
    reference_ms: float | None
    repeatability: dict[str, float] | None
    exact: tuple[bool, ...]

    @property
    def weights(self) -> np.ndarray:
        return np.where(self.exact, 1.0, INEXACT_WEIGHT)


def _per_image_ms(m: Measurement) -> float | None:
    if m.median_ms is not None:
        return m.median_ms
    if m.value is None or m.value <= 0:
        return None
    return 1000.0 / m.value if m.metric == "throughput_img_s" else m.value


def _pick_setup(rows: list[Measurement], device: Device) -> tuple[str, int, int | None]:
    """The setup with most measurements (the device's defaults win ties)."""
    counts: dict[tuple, int] = defaultdict(int)
    for m in rows:
        counts[(m.backend, m.batch, m.threads)] += 1

    def rank(key: tuple) -> tuple:
        return counts[key], key[1] == device.default_batch, key[2] == device.default_threads

    return max(counts, key=rank)


def setup_rows(session: Session, setup: Setup) -> list[Measurement]:
    """Every successful measurement of one setup, repeats included, in measurement order;
    measurements taken on a busy machine are left out, as they are from training."""
    query = select(Measurement).where(
        Measurement.device == setup.device, Measurement.status == "ok", Measurement.backend == setup.backend,
        Measurement.batch == setup.batch,
        Measurement.threads.is_(None) if setup.threads is None else Measurement.threads == setup.threads)
    return [m for m in session.scalars(query.order_by(Measurement.id))
            if BUSY_FLAG not in (m.flags or ()) and _per_image_ms(m) is not None]


def target_latencies(rows: Sequence[Measurement], target: str) -> tuple[np.ndarray, float | None]:
    """Per-image latency of each row under ``target`` and the reference scale it is expressed in.

    The reference timing of a row is its median over its ``relative_to_reference``. A single
    reference run is as noisy as the candidate's, so dividing by it (``relative``) removes drift
    but adds that noise; the running median over the row's campaign neighbours keeps the first
    and drops most of the second."""
    ms = np.array([_per_image_ms(m) for m in rows], dtype=float)
    if target == "absolute":
        return ms, None
    if target not in TARGETS:
        raise ValueError(f"unknown latency target {target!r}; allowed: {', '.join(TARGETS)}")
    reference = ms / np.array([m.relative_to_reference for m in rows], dtype=float)
    scale = float(np.median(reference))
    if target == "relative":
        return ms / reference * scale, scale
    smoothed = np.empty_like(reference)
    by_campaign: dict[str | None, list[int]] = defaultdict(list)
    for i, m in enumerate(rows):
        by_campaign[m.campaign].append(i)
    for members in by_campaign.values():
        for j, i in enumerate(members):
            smoothed[i] = np.median(reference[members[max(0, j - DRIFT_WINDOW): j + DRIFT_WINDOW + 1]])
    return ms / smoothed * scale, scale


def repeatability(arch_ids: Sequence[str], latency_ms: np.ndarray) -> dict[str, float] | None:
    """How well repeated measurements of the same architectures agree: ``pairs_within_10`` is the
    share of repeat pairs (two measurements of one architecture) within +-10 % of each other;
    ``median_deviation_pct`` / ``within_*`` the deviation of each from its architecture's median."""
    values: dict[str, list[float]] = defaultdict(list)
    for key, value in zip(arch_ids, latency_ms):
        values[key].append(float(value))
    deviations = [abs(v / np.median(vs) - 1) for vs in values.values() if len(vs) >= 2 for v in vs]
    if not deviations:
        return None
    from explorer.measure.probe import pair_deviations  # the measurement package loads its backends (torch)

    deviations = np.asarray(deviations)
    pairs = np.asarray([d for vs in values.values() for d in pair_deviations(vs)])
    return {"architectures": sum(len(vs) >= 2 for vs in values.values()),
            "median_deviation_pct": float(100 * np.median(deviations)),
            "within_5": float(100 * np.mean(deviations <= 0.05)),
            "within_10": float(100 * np.mean(deviations <= 0.10)),
            "pairs": int(pairs.size), "pairs_within_10": float(100 * np.mean(pairs <= 0.10)),
            "pairs_within_5": float(100 * np.mean(pairs <= 0.05)),
            "median_pair_deviation_pct": float(100 * np.median(pairs))}


def _most_repeatable_target(rows: Sequence[Measurement]) -> tuple[str, np.ndarray, float | None, dict | None]:
    """(target, latencies, scale, repeatability) of the target whose repeat pairs agree best;
    with fewer than :data:`MIN_RANKING_PAIRS` of them, ``relative`` where every row has a
    reference timing."""
    candidates = TARGETS if all(m.relative_to_reference for m in rows) else ("absolute",)
    arch_ids = [m.arch_id for m in rows]
    if "relative" in candidates and sum(k * (k - 1) // 2 for k in Counter(arch_ids).values()) < MIN_RANKING_PAIRS:
        candidates = ("relative",)
    best = None
    for target in candidates:
        latency, scale = target_latencies(rows, target)
        rep = repeatability(arch_ids, latency)
        rank = (rep["median_pair_deviation_pct"] if rep else 0.0, target != candidates[-1])
        if best is None or rank < best[0]:
            best = (rank, (target, latency, scale, rep))
    return best[1]


def load_training_set(session: Session, device: str, backend: str | None = None, batch: int | None = None,
                      threads: int | None = None) -> TrainingSet:
    """The current successful measurements of one setup of ``device`` (name or alias)."""
    dev = resolve_device(session, device)
    # the reference networks are measured to stand beside a search, not to train its predictor
    references = set(session.scalars(select(Architecture.arch_id).where(Architecture.space == REFERENCE_SPACE)))
    rows = [m for m in ok_measurements(session, dev, backend, batch, threads) if m.arch_id not in references]
    if not rows:
        raise TrainingDataError(
            f"no successful measurements on device '{dev.name}'"
            + (f" with backend={backend}, batch={batch}, threads={threads}" if backend or batch or threads else "")
            + f"; measure some with `explorer measure --device {dev.name} --n 50`")
    setup = Setup(dev.name, *_pick_setup(rows, dev))
    history = [m for m in setup_rows(session, setup) if m.arch_id not in references]
    target, latency, reference_ms, rep = _most_repeatable_target(history)
    current = {m.arch_id: i for i, m in enumerate(history)}  # the latest measurement of each
    keep = sorted(current.values())
    rows = [history[i] for i in keep]
    archs = [session.get_one(Architecture, m.arch_id) for m in rows]
    configs = tuple(config_from_dict(a.config_json) for a in archs)
    provenance = "published" if all(m.provenance == "published" for m in rows) else "measured"
    return TrainingSet(setup, configs, tuple(m.arch_id for m in rows), latency[keep], provenance, target,
                       reference_ms, rep, tuple(a.exact for a in archs))


def _library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in _LIBRARIES}


def local_prior(session: Session, exclude: str | None = None) -> dict[str, float] | None:
    """Cost-model coefficients fitted on the measured device with most measurements (the prior
    of few-shot calibration), or None if no measured device has enough."""
    best: tuple[int, str] | None = None
    for dev in session.scalars(select(Device).where(Device.provenance == "measured")):
        n = len(ok_measurements(session, dev))
        if dev.name != exclude and n >= FEW_SHOT_LIMIT and (best is None or n > best[0]):
            best = (n, dev.name)
    if best is None:
        return None
    data = load_training_set(session, best[1])
    return CostModel().fit(OpFeaturizer().transform(data.configs), data.latency_ms).to_dict()


def estimator_params(kind: str, seed: int, prior: dict[str, float] | None = None,
                     sources: Sources | None = None) -> dict[str, Any]:
    """Constructor arguments of ``kind``: the few-shot prior (also the transfer's few-shot
    candidate's), the transfer's sources, a seed."""
    if kind == "fewshot":
        return {"prior": prior}
    if kind == "macs":
        return {}
    if kind == "transfer":
        if not sources:
            raise TrainingDataError("no transfer source: a measured device with a trained predictor and at least "
                                    f"{FEW_SHOT_LIMIT} usable measurements is needed (explorer measure, then "
                                    "explorer predictor train on it)")
        return {"sources": {name: model for name, (_, model) in sources.items()},
                "source_ids": {name: key for name, (key, _) in sources.items()}, "prior": prior}
    return {"random_state": seed}


def evaluate(data: TrainingSet, kind: str, folds: int = 5, seed: int = 0, prior: dict[str, float] | None = None,
             on_fold: Callable[[int, int], None] | None = None, max_train: int | None = None,
             features: np.ndarray | None = None, sources: Sources | None = None) -> dict[str, Any]:
    """Held-out metrics of ``kind`` and of the MACs-only baseline on the same folds.

    Few-shot models are scored leave-one-out; the others by ``folds``-fold cross-validation,
    and per backbone family within it and across families (:func:`family_metrics`).
    The out-of-fold predictions are kept (``points``) for the predicted-versus-measured plot.
    ``max_train`` caps the training architectures per fold; ``features`` replaces the computed
    feature matrix (for ablations).
    """
    n = len(data.latency_ms)
    if n < 3:
        raise TrainingDataError(f"{n} measured architectures on '{data.setup.device}'; at least 3 are needed")
    X = OpFeaturizer().transform(data.configs) if features is None else features
    folds = n if kind in FEW_POINT_KINDS else folds
    params = estimator_params(kind, seed, prior, sources)
    cv = cross_validate(lambda: make_estimator(kind, **params), X, data.latency_ms, folds, seed, on_fold,
                        data.weights, max_train, interval_groups(data.configs))
    y = data.latency_ms
    exact = np.asarray(data.exact)
    by_family = {} if kind in FEW_POINT_KINDS else family_metrics(data, X, cv, kind, seed)
    return {
        "kind": kind,
        "protocol": "leave-one-out" if folds >= n else f"{folds}-fold cross-validation by architecture",
        "model": regression_metrics(y, cv["predicted"], cv["low"], cv["high"]),
        "macs_baseline": regression_metrics(y, cv["macs"]),
        "exact_only": None if exact.all() or exact.sum() < 3 else {
            "model": regression_metrics(y[exact], cv["predicted"][exact], cv["low"][exact], cv["high"][exact]),
            "macs_baseline": regression_metrics(y[exact], cv["macs"][exact])},
        # rows whose stored config only approximates the measured model train at a lower weight
        "down_weighted": None if exact.all() else {
            "rows": int((~exact).sum()), "weight": INEXACT_WEIGHT,
            "arch_ids": [key for key, ok in zip(data.arch_ids, data.exact) if not ok],
            "reason": "the stored architecture only approximates the measured one (layers not published)"},
        "by_family": by_family,
        "repeatability": data.repeatability,
        "target": data.target,
        "reference_ms": data.reference_ms,
        "points": {"arch_ids": list(data.arch_ids), "measured": y.tolist(),
                   **{key: cv[key].tolist() for key in ("predicted", "low", "high", "macs")}},
    }


def family_metrics(data: TrainingSet, X: np.ndarray, cv: dict[str, np.ndarray], kind: str,
                   seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per backbone family with at least 3 architectures: ``within`` (the cross-validated
    predictions of that family's architectures) and, when other families are measured too,
    ``cross`` (a model trained without the family, scored on all of it), each with the MACs-only
    baseline fitted on the same training data."""
    families = np.array([family_of(c.space) for c in data.configs])
    y, weights = data.latency_ms, data.weights
    out: dict[str, dict[str, Any]] = {}
    for family in FAMILIES:
        held = families == family
        if held.sum() < 3:
            continue
        result: dict[str, Any] = {"within": {"model": regression_metrics(y[held], cv["predicted"][held]),
                                             "macs_baseline": regression_metrics(y[held], cv["macs"][held])}}
        train = ~held & np.isin(families, FAMILIES)
        if train.sum() >= 3:
            model = make_estimator(kind, random_state=seed).fit(X[train], y[train], sample_weight=weights[train])
            macs = MacsBaseline().fit(X[train], y[train], weights[train])
            result["cross"] = {"trained_on": sorted(set(families[train])),
                               "model": regression_metrics(y[held], model.predict(X[held])),
                               "macs_baseline": regression_metrics(y[held], macs.predict(X[held]))}
        out[family] = result
    return out


def default_kind(data: TrainingSet) -> str:
    return "fewshot" if len(data.latency_ms) < FEW_SHOT_LIMIT else DEFAULT_KIND


#: name -> (stored predictor id, loaded estimator) of a richly measured device
Sources = dict[str, tuple[int, Any]]


def transfer_sources(session: Session, exclude: str | None = None) -> Sources:
    """Rich predictors of measured devices with at least ``FEW_SHOT_LIMIT`` usable measurements,
    other than ``exclude``: each device's default predictor (keyed by the device's name) and the
    newest stored predictor of each other kind that has a model of its own (keyed
    ``device/kind``). Kinds rank the same architectures differently away from the sampled
    distribution (presets, ablations), so the transfer chooses among them by leave-one-out."""
    out: Sources = {}
    for dev in session.scalars(select(Device).where(Device.provenance == "measured").order_by(Device.name)):
        if dev.name == exclude or len(ok_measurements(session, dev)) < FEW_SHOT_LIMIT:
            continue
        rows = session.scalars(select(Predictor).where(
            Predictor.device == dev.name, Predictor.kind.not_in(FEW_POINT_KINDS),
            Predictor.feature_version == FEATURE_VERSION).order_by(Predictor.is_default.desc(), Predictor.id.desc()))
        default_kind = None
        for row in rows:
            if default_kind is None and row.is_default:
                default_kind, key = row.kind, dev.name
            elif row.kind != default_kind and f"{dev.name}/{row.kind}" not in out:
                key = f"{dev.name}/{row.kind}"
            else:
                continue
            out[key] = (row.id, _estimator(row))
    return out


def serving_choice(evaluated: dict[str, dict[str, Any]], asked: str | None = None) -> dict[str, Any]:
    """Which kind to serve from held-out evaluations (kind -> :func:`evaluate`'s metrics, in order
    of preference): the first whose MAPE is no worse than any other evaluated kind's, nor than the
    MACs-only power law's on the same folds (``macs`` when that beats them all). A kind the user
    ``asked`` for is served as asked; the choice then says what it is worse than."""
    mape = {kind: metrics["model"]["mape"] for kind, metrics in evaluated.items()}
    mape.setdefault("macs", min(metrics["macs_baseline"]["mape"] for metrics in evaluated.values()))
    best = min(mape.values())
    served = asked or next(kind for kind, error in mape.items() if error <= best)
    return {"rule": "the kind with the lowest held-out MAPE among those evaluated and MACs-only; ties go to "
                    "the richer kind", "mape": mape, "served": served,
            "worse_than": sorted(kind for kind, error in mape.items() if error < mape[served])}


def more_points(n: int, kind: str, device: str, sources: bool) -> dict[str, Any] | None:
    """How many more architectures to measure on a device that has ``n`` (None: enough): up to
    :data:`TRANSFER_POINTS` where a transfer source exists, else up to :data:`FEW_SHOT_LIMIT`."""
    target = TRANSFER_POINTS if sources else FEW_SHOT_LIMIT
    if kind not in FEW_POINT_KINDS or n >= target:
        return None
    sampler = "calibrate" if sources else "random"
    return {"measured": n, "target": target, "more": target - n,
            "why": (f"a transfer meets MAPE <= 10 % and Spearman >= 0.95 from {TRANSFER_POINTS} points "
                    "(benchmarks/new_device.py)" if sources else
                    f"from {FEW_SHOT_LIMIT} points a device gets a model of its own; the few-shot model stays at "
                    "12-16 % MAPE up to 50 points (benchmarks/new_device.py)"),
            "command": f"explorer measure --device {device} --sampler {sampler} --n {target - n}"}


def source_device(source: str) -> str:
    """The device of a transfer source key (``device`` or ``device/kind``)."""
    return source.split("/", 1)[0]


def train_predictor(db: Database, device: str, kind: str | None = None, *, backend: str | None = None,
                    batch: int | None = None, threads: int | None = None, folds: int = 5, seed: int = 0,
                    prior: str = "generic", make_default: bool = True,
                    on_fold: Callable[[int, int], None] | None = None) -> LatencyPredictor:
    """Evaluate ``kind`` (default: few-shot or transfer below ``FEW_SHOT_LIMIT`` architectures,
    else :data:`~predictors.latency.DEFAULT_KIND`)
    on held-out architectures, fit it on all of them and store it (as the device's default).

    prior: of the few-shot model, ``generic`` (:data:`~predictors.fewshot.GENERIC_COEFFICIENTS`)
    or ``local`` (a cost model fitted on the measured device with most measurements).
    """
    if kind is not None and kind not in KINDS:
        raise KnobError("kind", kind, "one of " + ", ".join(KINDS))
    if prior not in PRIORS:
        raise KnobError("prior", prior, "one of " + ", ".join(PRIORS))
    with db.session() as session:
        data = load_training_set(session, device, backend, batch, threads)
        coefficients = None
        if prior == "local":
            coefficients = local_prior(session, exclude=data.setup.device)
            if coefficients is None and kind in (None, "fewshot"):
                raise TrainingDataError(f"no measured device has the {FEW_SHOT_LIMIT} measurements a local prior "
                                        "needs; use the generic prior")
        few_points = len(data.latency_ms) < FEW_SHOT_LIMIT
        sources = transfer_sources(session, exclude=data.setup.device) if kind == "transfer" or (
            kind is None and few_points) else {}
    if kind:
        candidates = [kind]
    elif few_points:
        # the transfer weighs the few-shot model in among its candidates by leave-one-out and is
        # preferred; it serves unless the few-shot model alone or MACs alone scored better (such a
        # choice by leave-one-out errors also picks noise: 11.4 % against the transfer's 10.7 % MAPE
        # at k = 10 in benchmarks/new_device.py, when it reported choosing between the two; the
        # price of never serving a model that did worse than a simpler one on the device's own
        # points). Its choices are themselves a leave-one-out: scored by an outer one it needs
        # three points at least
        candidates = ["transfer", "fewshot"] if sources and len(data.latency_ms) >= 3 else ["fewshot"]
    else:
        candidates = [DEFAULT_KIND]
    evaluated = {k: evaluate(data, k, folds, seed, coefficients, on_fold, sources=sources) for k in candidates}
    # never a kind worse on held-out points than a simpler one evaluated beside it (a transfer from
    # 3 points scored 122 % MAPE where the few-shot model scored 18.6 % and MACs alone 44.1 %)
    choice = serving_choice(evaluated, kind)
    kind = choice["served"]
    if kind not in evaluated:
        evaluated[kind] = evaluate(data, kind, folds, seed, coefficients, on_fold, sources=sources)
    metrics = evaluated[kind]
    metrics["choice"] = choice
    metrics["more_points"] = more_points(len(data.latency_ms), kind, data.setup.device, bool(sources))
    metrics["prior"] = prior if kind in FEW_POINT_KINDS else None
    metrics["alternatives"] = {k: {"model": m["model"], "protocol": m["protocol"]} for k, m in evaluated.items()
                               if k != kind}
    params = estimator_params(kind, seed, coefficients, sources)
    estimator = make_estimator(kind, **params).fit(OpFeaturizer().transform(data.configs), data.latency_ms,
                                                   sample_weight=data.weights, groups=interval_groups(data.configs))
    if kind == "transfer":
        source_id = sources[estimator.source_][0]
        with db.session() as session:
            source_kind = session.get_one(Predictor, source_id).kind
        metrics["transfer_source"] = {"device": source_device(estimator.source_), "predictor_id": source_id,
                                      "kind": source_kind, "ridge_alpha": estimator.alpha_,
                                      "weights": {key: round(weight, 4) for key, weight in
                                                  estimator.source_weights.items()},
                                      "family_factors": {family: round(factor, 4) for family, factor in
                                                         estimator.family_factors.items()}}
    setup = data.setup
    row = Predictor(device=setup.device, backend=setup.backend, batch=setup.batch, threads=setup.threads,
                    kind=kind, feature_version=FEATURE_VERSION,
                    model_format="xgboost-json" if kind.startswith("xgboost") else "json",
                    model_blob=estimator_to_json(estimator), metrics=metrics,
                    training_arch_ids=list(data.arch_ids), library_versions=_library_versions(),
                    is_default=make_default)
    with db.session() as session:
        if make_default:
            session.execute(update(Predictor).where(Predictor.device == setup.device).values(is_default=False))
        session.add(row)
        session.flush()
        predictor_id = row.id
    return LatencyPredictor(estimator, setup.device, setup.backend, setup.batch, setup.threads, kind, metrics,
                            data.arch_ids, FEATURE_VERSION, predictor_id)


def predictor_row(session: Session, device: str, kind: str | None = None) -> Predictor:
    """The stored predictor of ``device`` (name or alias): the default one, else the newest
    (of ``kind`` if given)."""
    dev = resolve_device(session, device)
    query = select(Predictor).where(Predictor.device == dev.name)
    if kind is not None:
        query = query.where(Predictor.kind == kind)
    row = session.scalars(query.order_by(Predictor.is_default.desc(), Predictor.id.desc())).first()
    if row is None:
        measured = len(ok_measurements(session, dev))
        if dev.provenance == "measured" and measured < FEW_SHOT_LIMIT:
            raise NoPredictorError(dev.name, f" (this host's profile has {measured} usable measurements): measure "
                                             f"first, e.g. `explorer measure --device {device} --sampler presets` "
                                             f"and `explorer measure --device {device} --n 200`, then")
        raise NoPredictorError(dev.name, f" of kind '{kind}'" if kind else "")
    return row


def _stored_sources(session: Session, row: Predictor) -> dict[str, Any] | None:
    """The source predictor a stored transfer refers to, loaded; a clear error if it is gone."""
    if row.kind != "transfer":
        return None
    try:
        data = json.loads(row.model_blob)
        keys = {name: data["source_ids"][name] for name in mixture_sources(data)}
    except (ValueError, KeyError, TypeError) as err:
        raise _damaged(row, err) from None
    loaded = {}
    for name, key in keys.items():
        source = session.get(Predictor, key)
        if source is None:
            raise NoPredictorError(row.device, f" (its transfer source, predictor #{key} of '{name}', is gone: "
                                               "retrain it with `explorer predictor train`)")
        loaded[name] = _estimator(source)
    return loaded


def load_predictor(db: Database, device: str, kind: str | None = None) -> LatencyPredictor:
    """The device's stored predictor, ready for ``predict(configs)``.

    Raises ``UnknownDeviceError`` (lists the known devices) or :class:`NoPredictorError` (says
    how to train one).
    """
    with db.session() as session:
        row = predictor_row(session, device, kind)
        return LatencyPredictor(_estimator(row, _stored_sources(session, row)),
                                row.device, row.backend,
                                row.batch, row.threads, row.kind, row.metrics, row.training_arch_ids,
                                row.feature_version, row.id)

