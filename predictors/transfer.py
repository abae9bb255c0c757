"""A new device from a handful of measurements, by transfer from richly measured devices.

A device with ten or twenty measured architectures cannot train a model of its own, but a device
measured on a thousand can rank any architecture well. The transfer model predicts the new
device's log latency from source predictors' log latencies, plus what the op table says the
sources may weigh differently (depthwise share of the work, memory traffic per MAC, attention
score elements per MAC, and the work itself: a runtime with more overhead per kernel, such as
eager PyTorch against a compiled graph, is slower on small models than its speed on large ones
says, which the source's latency alone, mixing work and overhead, cannot tell):

    log y = a + sum_s b_s log source_s(x) + c . extras(x)

with a strong prior towards a plain scaling of the sources' mean (ridge on ``b_s - 1/S`` and
``c``). The candidates are each source alone and all sources together, each at several ridge
strengths; each source plus a per-kernel overhead (``y = a source(x) + b launches(x)``, both
non-negative: a runtime that spends a fixed time per convolution or matmul call, as eager
PyTorch does, adds time that no power of a compiled source's latency follows); and the few-shot
cost model (:class:`~predictors.fewshot.FewShotCalibrator`), which knows no source, twice: with
the prior of a CPU, where MACs take the time, and with that of a GPU at batch 1
(``launch-bound``), where kernel launches do (a TITAN RTX runs LowFormer-B1's 236 kernels in
4.0 ms; no power of a CPU source's latency, nor MACs, says that). Each is
scored by leave-one-out on the device's own points, and the prediction averages the candidates'
log latencies with pseudo-BMA+ weights (Yao et al. 2018: the Bayesian-bootstrapped
leave-one-out log density of each candidate): with ten points, picking the single best
candidate mostly picks noise (``benchmarks/new_device.py`` measures each part).
Intervals are split-conformal from the leave-one-out
residuals (the ``ceil((n + 1) coverage)``-th smallest absolute log residual, each point's under
the weights the other points give, each point counting with its sample weight: a reconstruction
whose layers are unknown widens the interval a tenth as much), normalised by novelty: an architecture's log half-width is
``q (1 + d)``, with ``d`` its distance to the nearest calibration point in the transfer's design
(the sources' mean log latency and the extras, standardised over the calibration points) in units
of the calibration points' median distance to their nearest neighbour, and ``q`` the conformal
quantile of each point's residual over ``1 + d`` of its distance to the others. The search
proposes architectures unlike every calibration point (an attention type, fusion or depth pattern
none of them has); a width that holds for the points' own neighbours understates their errors
(on the published profiles held out by knob group, ``benchmarks/new_device.py --published``,
constant intervals covered 54-73 % of the held-out points of four of them).

Given the backbone family of each point (``groups``), each candidate also gets an offset per
family: its mean leave-one-out log residual on the family's points, shrunk towards zero as a
random effect (sum over ``n_f + FAMILY_SHRINKAGE``). How much one runtime is faster than another
depends on the family beyond what the op table tells (on the development host, PyTorch eager
runs FMViT slower and MCGA faster than ONNX Runtime's latencies say; the offsets of the families
spread about as widely as the residuals within one, hence a shrinkage of one point). A
candidate's leave-one-out prediction of a point takes the offset from the other points of its
family only, so the weights and intervals score the offsets too; a family without calibration
points gets none.

Sources are stored by reference (their predictor row ids), not copied: a source model is
megabytes; see :func:`predictors.store.load_predictor`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from predictors.features import FEATURE_INDEX
from predictors.fewshot import COST_TERMS, LAUNCH_BOUND_COEFFICIENTS, FewShotCalibrator, cost_design

ALPHAS = (0.03, 0.3, 3.0, 30.0, 1e6)  # 1e6: the plain scaling of the source
MIN_POINTS = 2  # its leave-one-out then fits on one point: the plain scaling
BOOTSTRAP_DRAWS = 200  # Bayesian bootstrap draws of the pseudo-BMA+ weights
MIN_WEIGHT = 1e-3  # candidates below this weight are dropped (and the rest renormalised)
#: the distance (in multiples of the calibration points' median distance to their nearest
#: neighbour) at which an interval is twice as wide as on a calibration point
NOVELTY_UNIT = 1.0
#: the smallest spread of each column of the novelty's design (the sources' mean log latency,
#: then the extras), a quarter of the spread over random architectures of one family: a column
#: on which the calibration points barely differ would make every other value look novel
NOVELTY_FLOORS = np.array([0.05, 0.005, 0.05, 3e-5, 0.05])
#: the smallest typical nearest-neighbour distance of calibration points, in standardised units
MIN_TYPICAL = 0.1
#: how far (in log latency) the term of one op-mix extra may go beyond its largest size on the
#: fit's points: a depthwise share or attention density unlike every calibration point would
#: otherwise multiply the latency by the exponential of a line fitted where the extra barely
#: varied (1e31 on a held-out knob group of a40-torch-b200)
EXTRAS_MARGIN = 1.0
FAMILY_SHRINKAGE = 1.0  # a family's offset: its residuals' sum over (its points + this)
FEWSHOT = "fewshot"  # the candidate without a source
LAUNCH_BOUND = "launch-bound"  # the same with the prior of a GPU at batch 1
OVERHEAD = "overhead"  # marks a source-plus-kernel-overhead candidate
OFFSETS = "family_offsets"  # a part's log offset per family
_LAUNCHES = list(COST_TERMS).index("compute_launches")
_SIZE = 3  # the column of extras() that is log MACs
_UNBOUNDED = 1e9  # a bound that never binds (finite: models are stored as plain JSON)
_EPS = 1e-12


class SourceModel(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


def extras(X: np.ndarray) -> np.ndarray:
    """What the op table says besides the source's latency: depthwise share of the MACs, log
    bytes moved per MAC, attention score elements per MAC, log MACs."""
    macs = np.maximum(X[:, FEATURE_INDEX["total.macs"]], 1.0)
    depthwise = X[:, FEATURE_INDEX["depthwise_conv.macs"]] / macs
    traffic = np.log(np.maximum(X[:, FEATURE_INDEX["total.bytes"]], 1.0) / macs)
    scores = X[:, FEATURE_INDEX["attention.score_elements"]] / macs
    return np.column_stack([depthwise, traffic, scores, np.log(macs)])


def _fit_ridge(z: np.ndarray, e: np.ndarray, t: np.ndarray, alpha: float, w: np.ndarray) -> dict[str, Any]:
    """log y = a + z (1/S + b) + c e for the (n, S) source log latencies ``z`` (or one source's
    (n,)), with a penalty alpha (|b|^2 + |c|^2) on standardised extras."""
    z = z.reshape(len(t), -1)
    mean, scale = e.mean(axis=0), e.std(axis=0)
    scale = np.where(scale > _EPS, scale, 1.0)
    design = np.column_stack([z, (e - mean) / scale])
    target = t - z.mean(axis=1)
    sw = w / w.sum()
    x_mean, t_mean = sw @ design, sw @ target
    centred, tc = design - x_mean, target - t_mean
    gram = centred.T @ (centred * w[:, None]) + alpha * np.eye(design.shape[1])
    beta = np.linalg.solve(gram, centred.T @ (tc * w))
    reach = np.abs(design[:, -e.shape[1]:] * beta[-e.shape[1]:]).max(axis=0) + EXTRAS_MARGIN
    reach[_SIZE:] = _UNBOUNDED  # a power of the MACs extrapolates sanely
    return {"intercept": float(t_mean - x_mean @ beta), "beta": beta, "mean": mean, "scale": scale,
            "reach": reach}


def _predict_ridge(params: Mapping[str, Any], z: np.ndarray, e: np.ndarray) -> np.ndarray:
    z = z.reshape(len(e), -1)
    # a model stored before log MACs joined the extras uses the first three
    e = e[:, : len(params["mean"])]
    n_z = z.shape[1]
    beta = params["beta"]
    terms = (e - params["mean"]) / params["scale"] * beta[n_z:]
    if "reach" in params:  # stored before the op-mix terms were bounded: unbounded
        terms = np.clip(terms, -params["reach"], params["reach"])
    return z.mean(axis=1) + params["intercept"] + z @ beta[:n_z] + terms.sum(axis=1)


def pseudo_bma_weights(loo: np.ndarray, t: np.ndarray, w: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pseudo-BMA+ weights of candidates from their leave-one-out predictions ``loo`` (C, n).

    Each candidate's pointwise log density is that of a normal around its leave-one-out
    prediction with its own leave-one-out mean squared error; the weights are the softmax of the
    summed densities, averaged over Bayesian-bootstrap (Dirichlet) reweightings of the points,
    which keeps them from putting everything on a candidate that won by the luck of a few points.
    """
    mse = np.maximum(np.average((loo - t) ** 2, axis=1, weights=w), _EPS)[:, None]
    density = -0.5 * np.log(2 * np.pi * mse) - 0.5 * (loo - t) ** 2 / mse
    rng = np.random.default_rng(seed)
    draws = rng.dirichlet(w / w.mean(), size=BOOTSTRAP_DRAWS)
    z = len(t) * draws @ density.T
    z -= z.max(axis=1, keepdims=True)
    weights = np.exp(z)
    return (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)


def _held_out_residuals(loo: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Absolute leave-one-out residual of each point under the weights the other points give.
    The weights of all points favour what fits them, so residuals under them understate the
    error on a new point."""
    out = np.empty(len(t))
    for i in range(len(t)):
        keep = np.arange(len(t)) != i
        weights = pseudo_bma_weights(loo[:, keep], t[keep], w[keep], seed=i + 1)
        out[i] = abs(weights @ loo[:, i] - t[i])
    return out


class TransferCalibrator:
    """Average of transfers from source predictors and the few-shot cost model (see module docstring).

    sources: name -> fitted model with ``predict(X)`` in milliseconds (the device's own op-table
    features ``X``). ``source_ids``: name -> stored predictor id (kept in :meth:`to_dict`).
    fewshot: whether the few-shot cost model (with ``prior``, default generic) is a candidate.
    """

    def __init__(self, sources: Mapping[str, SourceModel], coverage: float = 0.9, alphas=ALPHAS,
                 source_ids: Mapping[str, int] | None = None, fewshot: bool = True,
                 prior: dict[str, float] | None = None, novelty_unit: float = NOVELTY_UNIT):
        if not sources:
            raise ValueError("a transfer needs at least one source predictor (a richly measured device)")
        self.sources = dict(sources)
        self.coverage = coverage
        self.alphas = tuple(alphas)
        self.source_ids = dict(source_ids or {})
        self.fewshot = fewshot
        self.prior = prior
        self.novelty_unit = novelty_unit
        self.novelty_: dict[str, Any] | None = None

    def _source_logs(self, X: np.ndarray, names=None) -> dict[str, np.ndarray]:
        return {name: np.log(np.maximum(self.sources[name].predict(X), _EPS)) for name in names or self.sources}

    def _loo(self, z: np.ndarray, e: np.ndarray, t: np.ndarray, alpha: float, w: np.ndarray) -> np.ndarray:
        return _leave_one_out(len(t), lambda keep, i: _predict_ridge(
            _fit_ridge(z[keep], e[keep], t[keep], alpha, w[keep]), z[i:i + 1], e[i:i + 1])[0])

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: Sequence[str] | None = None) -> TransferCalibrator:
        """``groups``: the backbone family of each point (:func:`predictors.latency.interval_groups`),
        for offsets per family when the points span two families or more."""
        y = np.asarray(y, dtype=float)
        t = np.log(y)
        w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if len(t) < MIN_POINTS:
            raise ValueError(f"a transfer needs at least {MIN_POINTS} measured architectures, got {len(t)}")
        e = extras(X)
        logs = self._source_logs(X)
        source_sets = [(name,) for name in logs] + ([tuple(logs)] if len(logs) > 1 else [])
        candidates: list[dict[str, Any]] = [{"sources": list(names), "alpha": alpha}
                                            for names in source_sets for alpha in self.alphas]
        rows = [self._loo(np.column_stack([logs[name] for name in c["sources"]]), e, t, c["alpha"], w)
                for c in candidates]
        launches = cost_design(X)[:, _LAUNCHES]
        for name in logs:
            candidates.append({"sources": [name], OVERHEAD: True})
            rows.append(_overhead_loo(np.exp(logs[name]), launches, y, w))
        if self.fewshot:
            for name, prior in ((FEWSHOT, self.prior), (LAUNCH_BOUND, LAUNCH_BOUND_COEFFICIENTS)):
                fewshot = FewShotCalibrator(prior).fit(X, y, sample_weight=w)
                candidates.append({FEWSHOT: fewshot, "label": name})
                rows.append(np.log(fewshot.loo_predictions_))
        loo = np.stack(rows)
        families = None if groups is None else np.asarray([str(g) for g in groups], dtype=object)
        offsets: dict[str, np.ndarray] = {}
        if families is not None and len(set(families)) > 1:
            offsets, left_out = _family_offsets(t - loo, families, w)
            loo = loo + left_out
        rmse = np.sqrt(np.average((loo - t) ** 2, axis=1, weights=w))
        self.selection_ = {_label(c): float(r) for c, r in zip(candidates, rmse)}
        weights = pseudo_bma_weights(loo, t, w)
        kept = np.flatnonzero(weights >= MIN_WEIGHT)
        weights = weights[kept] / weights[kept].sum()
        self.mixture_ = []
        for c, weight in sorted(zip(kept, weights), key=lambda item: -item[1]):
            part = {**candidates[c], "weight": float(weight),
                    OFFSETS: {family: float(offset[c]) for family, offset in offsets.items()}}
            if part.get(OVERHEAD):
                part["params"] = _fit_overhead(np.exp(logs[part["sources"][0]]), launches, y, w)
            elif "sources" in part:
                z = np.column_stack([logs[name] for name in part["sources"]])
                part["params"] = _fit_ridge(z, e, t, part["alpha"], w)
            self.mixture_.append(part)
        self._set_top_source()
        self.loo_predictions_ = np.exp(weights @ loo[kept])
        self.novelty_ = _fit_novelty(_novelty_columns(X, logs, self._mixture_sources()), self.novelty_unit,
                                    self._mixture_sources())
        # each point's residual as a multiple of the width at its novelty among the other points
        scores = _held_out_residuals(loo, t, w) / (1.0 + self.novelty_["loo"])
        self.log_half_width_ = _weighted_conformal_quantile(scores, w, self.coverage)
        return self

    def _mixture_sources(self) -> list[str]:
        return sorted({name for part in self.mixture_ for name in part.get("sources", ())})

    def novelty(self, X: np.ndarray, logs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Distance of each row to its nearest calibration point, in units of the calibration
        points' typical distance to their nearest neighbour (0 without a stored design)."""
        if self.novelty_ is None:
            return np.zeros(len(X))
        names = self.novelty_["sources"]
        logs = self._source_logs(X, names) if logs is None else logs
        return _distance(self.novelty_, _novelty_columns(X, logs, names)) / self.novelty_["unit"]

    def _set_top_source(self) -> None:
        """``source_``: the source with the largest share (a joint part counts for each of its
        sources equally), or the first source when the few-shot model takes it all; ``alpha_``:
        the ridge strength of the heaviest part with a source (None without one)."""
        share = dict.fromkeys(self.sources, 0.0)
        for part in self.mixture_:
            for name in part.get("sources", ()):
                share[name] += part["weight"] / len(part["sources"])
        self.source_ = max(share, key=share.get)
        self.alpha_ = next((part["alpha"] for part in self.mixture_ if "alpha" in part), None)

    @property
    def source_weights(self) -> dict[str, float]:
        """Weight of each candidate group in the prediction, summed over its ridge strengths:
        a source's name, ``a+b`` for sources together, ``a + kernel overhead`` for a source plus
        a time per kernel, ``fewshot`` for the cost model."""
        out: dict[str, float] = {}
        for part in self.mixture_:
            key = _group(part)
            out[key] = out.get(key, 0.0) + part["weight"]
        return out

    def _family_log_offsets(self) -> dict[str, float]:
        """Per family with calibration points, the parts' log offsets weighed as the parts are
        (the prediction averages the parts' log latencies, so it shifts by exactly this)."""
        out: dict[str, float] = {}
        for part in self.mixture_:
            for family, offset in part.get(OFFSETS, {}).items():
                out[family] = out.get(family, 0.0) + part["weight"] * offset
        return out

    @property
    def family_factors(self) -> dict[str, float]:
        """Per family with calibration points, the factor its offsets multiply the prediction by:
        0.8 means 20 % faster than the rest says."""
        return {family: math.exp(offset) for family, offset in self._family_log_offsets().items()}

    @property
    def uses_groups(self) -> bool:
        """Whether predictions depend on the family of each row (offsets were fitted)."""
        return any(part.get(OFFSETS) for part in self.mixture_)

    def predict(self, X: np.ndarray, groups: Sequence[str] | None = None,
                logs: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Milliseconds; ``groups``, the family of each row, applies the offsets per family
        (none without it); ``logs``: the sources' log latencies of ``X`` if known."""
        e = extras(X)
        logs = self._source_logs(X, self._mixture_sources()) if logs is None else logs
        launches = cost_design(X)[:, _LAUNCHES]
        offsets = self._family_log_offsets() if groups is not None else {}
        total = np.array([offsets.get(str(g), 0.0) for g in groups]) if offsets else np.zeros(len(X))
        for part in self.mixture_:
            if FEWSHOT in part:
                total += part["weight"] * np.log(part[FEWSHOT].predict(X))
            elif part.get(OVERHEAD):
                total += part["weight"] * _predict_overhead(part["params"], np.exp(logs[part["sources"][0]]), launches)
            else:
                z = np.column_stack([logs[name] for name in part["sources"]])
                total += part["weight"] * _predict_ridge(part["params"], z, e)
        return np.exp(total)

    def predict_interval(self, X: np.ndarray, groups: Sequence[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The interval's log half-width grows in proportion to 1 + novelty (see module docstring)."""
        logs = self._source_logs(X, self._mixture_sources())
        median = self.predict(X, groups, logs)
        half = self.log_half_width_ * (1.0 + self.novelty(X, logs))
        return median, median * np.exp(-half), median * np.exp(half)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source_, "source_ids": self.source_ids, "alpha": self.alpha_,
                "coverage": self.coverage, "mixture": [_part_to_dict(part) for part in self.mixture_],
                "log_half_width": self.log_half_width_, "selection": self.selection_,
                "novelty": None if self.novelty_ is None else
                {**{key: self.novelty_[key] for key in ("sources", "unit")},
                 **{key: self.novelty_[key].tolist() for key in ("mean", "scale", "points")}}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], sources: Mapping[str, SourceModel]) -> TransferCalibrator:
        """Also reads the layouts stored before: one source and strength (``params``), and
        mixture parts of one ``source`` each."""
        model = cls(sources, data["coverage"], source_ids=data["source_ids"])
        mixture = data.get("mixture") or [{"source": data["source"], "alpha": data["alpha"], "weight": 1.0,
                                           "params": data["params"]}]
        model.mixture_ = [_part_from_dict(part) for part in mixture]
        model.source_, model.alpha_ = data["source"], data["alpha"]
        model.log_half_width_ = data["log_half_width"]
        model.selection_ = data.get("selection", {})
        stored = data.get("novelty")  # None: stored before intervals widened with novelty
        model.novelty_ = None if stored is None else {
            **stored, **{key: np.asarray(stored[key], dtype=float) for key in ("mean", "scale", "points")}}
        return model


def _part_to_dict(part: Mapping[str, Any]) -> dict[str, Any]:
    if FEWSHOT in part:
        return {FEWSHOT: part[FEWSHOT].to_dict(), "label": part["label"], "weight": part["weight"],
                OFFSETS: part.get(OFFSETS, {})}
    return {**part, "params": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in part["params"].items()}}


def _part_from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """A mixture part as :meth:`TransferCalibrator.fit` makes it; a part stored with one
    ``source`` (the layout before sources were combined) gets ``sources``."""
    if FEWSHOT in data:
        return {FEWSHOT: FewShotCalibrator.from_dict(data[FEWSHOT]), "label": data.get("label", FEWSHOT),
                "weight": data["weight"], OFFSETS: data.get(OFFSETS, {})}
    part = {key: value for key, value in data.items() if key != "source"}
    part["sources"] = data["sources"] if "sources" in data else [data["source"]]
    part["params"] = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in data["params"].items()}
    return part


def _group(part: Mapping[str, Any]) -> str:
    if FEWSHOT in part:
        return part["label"]
    return "+".join(part["sources"]) + (" + kernel overhead" if part.get(OVERHEAD) else "")


def _label(candidate: Mapping[str, Any]) -> str:
    return f"{_group(candidate)}@{candidate['alpha']:g}" if "alpha" in candidate else _group(candidate)


def _fit_overhead(source_ms: np.ndarray, launches: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """y = scale * source + per_launch_ms * launches, both non-negative, by weighted least
    squares on the relative error."""
    root = np.sqrt(w)
    design = np.column_stack([source_ms, launches]) / y[:, None] * root[:, None]
    from scipy.optimize import nnls  # fitting only: predictions load no scipy.optimize

    (scale, per_launch), _ = nnls(design, root)
    return {"scale": float(scale), "per_launch_ms": float(per_launch)}


def _predict_overhead(params: Mapping[str, float], source_ms: np.ndarray, launches: np.ndarray) -> np.ndarray:
    """Log latency of a source-plus-overhead part."""
    return np.log(np.maximum(params["scale"] * source_ms + params["per_launch_ms"] * launches, _EPS))


def _overhead_loo(source_ms: np.ndarray, launches: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _leave_one_out(len(y), lambda keep, i: _predict_overhead(
        _fit_overhead(source_ms[keep], launches[keep], y[keep], w[keep]), source_ms[i:i + 1], launches[i:i + 1])[0])


def _family_offsets(residuals: np.ndarray, families: np.ndarray,
                    w: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per family, each candidate's (row of ``residuals``) weighted log residual sum over the
    family's weight plus ``FAMILY_SHRINKAGE`` (the posterior mean of a normal random effect);
    and (candidates, n) the same offset of each point's family from the family's other points."""
    weighted = residuals * w
    offsets, left_out = {}, np.empty_like(residuals)
    for family in dict.fromkeys(families):
        own = families == family
        total, weight = weighted[:, own].sum(axis=1), w[own].sum()
        offsets[family] = total / (weight + FAMILY_SHRINKAGE)
        left_out[:, own] = (total[:, None] - weighted[:, own]) / (weight - w[own] + FAMILY_SHRINKAGE)
    return offsets, left_out


def _weighted_conformal_quantile(scores: np.ndarray, w: np.ndarray, coverage: float) -> float:
    """The smallest score whose points, with the new one counted as a point of full weight, hold
    ``coverage`` of the weight (with equal weights: the ``ceil((n + 1) coverage)``-th smallest);
    a point trusted less (a reconstruction) counts less. Too little weight for the coverage: the
    largest score, widened by half."""
    order = np.argsort(scores)
    held = np.cumsum(w[order])
    enough = np.flatnonzero(held >= coverage * (w.sum() + w.max()) - 1e-9)
    return float(scores[order[enough[0]]] if len(enough) else 1.5 * scores.max())


def _novelty_columns(X: np.ndarray, logs: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Where an architecture lies in the transfer's design: the mean predicted log latency of
    the sources ``names`` (none: the extras alone) and the extras."""
    latency = [np.mean([logs[name] for name in names], axis=0)] if names else []
    return np.column_stack([*latency, extras(X)])


def _fit_novelty(columns: np.ndarray, unit: float, sources: Sequence[str]) -> dict[str, Any]:
    """The calibration points in the design of ``sources``, standardised (spreads floored); the
    unit of distance, ``unit`` times their median distance to their nearest neighbour (at least
    ``MIN_TYPICAL``: points measured twice would make it zero); each one's novelty among the others
    (``loo``, in that unit)."""
    mean, scale = columns.mean(axis=0), np.maximum(columns.std(axis=0), NOVELTY_FLOORS[-columns.shape[1]:])
    points = (columns - mean) / scale
    distance = _euclidean(points, points)
    np.fill_diagonal(distance, np.inf)
    nearest = distance.min(axis=1) if len(points) > 1 else np.zeros(len(points))
    typical = max(float(np.median(nearest)), MIN_TYPICAL) if len(points) > 1 else 1.0
    model = {"sources": sources, "mean": mean, "scale": scale, "points": points, "unit": max(unit * typical, _EPS)}
    return {**model, "loo": nearest / model["unit"]}


def _distance(novelty: Mapping[str, Any], columns: np.ndarray) -> np.ndarray:
    return _euclidean((columns - novelty["mean"]) / novelty["scale"], novelty["points"]).min(axis=1)


def _euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances, rows of ``a`` against rows of ``b`` (numpy only: importing
    scipy.spatial would cost a prediction a third of a second)."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _leave_one_out(n: int, predict_left_out: Callable[[np.ndarray, int], float]) -> np.ndarray:
    """Each point's prediction by a fit on the others (``keep``: the mask of the others)."""
    out = np.empty(n)
    for i in range(n):
        out[i] = predict_left_out(np.arange(n) != i, i)
    return out


def mixture_sources(data: Mapping[str, Any]) -> list[str]:
    """The sources a stored transfer (its ``to_dict``) predicts from."""
    parts = data.get("mixture") or [{"source": data["source"]}]
    return list(dict.fromkeys(name for part in parts for name in part.get("sources", [part.get("source")])
                              if name is not None))
