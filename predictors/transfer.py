"""A new device from a handful of measurements, by transfer from richly measured devices.

A device with ten or twenty measured architectures cannot train a model of its own, but a device
measured on a thousand can rank any architecture well. The transfer model predicts the new
device's log latency from a source predictor's log latency, plus what the op table says the
source may weigh differently (depthwise share of the work, memory traffic per MAC, attention
score elements per MAC, and the work itself: a runtime with more overhead per kernel, such as
eager PyTorch against a compiled graph, is slower on small models than its speed on large ones
says, which the source's latency alone, mixing work and overhead, cannot tell):

    log y = a + b log source(x) + c . extras(x)

with a strong prior towards a plain scaling of the source (ridge on ``b - 1`` and ``c``). The
source and the ridge strength are chosen by leave-one-out on the device's own points; intervals
are split-conformal from the leave-one-out residuals (the ``ceil((n + 1) coverage)``-th smallest
absolute log residual, each point's under the candidate the other points choose), so they cover
what they claim on points like the ones measured.

Sources are stored by reference (their predictor row ids), not copied: a source model is
megabytes; see :func:`predictors.store.load_predictor`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from predictors.features import FEATURE_INDEX

ALPHAS = (0.03, 0.3, 3.0, 30.0, 1e6)  # 1e6: the plain scaling of the source
MIN_POINTS = 2  # its leave-one-out then fits on one point: the plain scaling
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
    """log y = a + b z + c e with a penalty alpha ((b - 1)^2 + |c|^2) on standardised extras."""
    mean, scale = e.mean(axis=0), e.std(axis=0)
    scale = np.where(scale > _EPS, scale, 1.0)
    design = np.column_stack([z, (e - mean) / scale])
    target = t - z  # b = 1 + beta[0]
    sw = w / w.sum()
    x_mean, t_mean = sw @ design, sw @ target
    centred, tc = design - x_mean, target - t_mean
    gram = centred.T @ (centred * w[:, None]) + alpha * np.eye(design.shape[1])
    beta = np.linalg.solve(gram, centred.T @ (tc * w))
    return {"intercept": float(t_mean - x_mean @ beta), "beta": beta, "mean": mean, "scale": scale}


def _predict_ridge(params: Mapping[str, Any], z: np.ndarray, e: np.ndarray) -> np.ndarray:
    # a model stored before log MACs joined the extras uses the first three
    e = e[:, : len(params["mean"])]
    design = np.column_stack([z, (e - params["mean"]) / params["scale"]])
    return z + params["intercept"] + design @ params["beta"]


def _selection_free_residuals(loo: list[np.ndarray], t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Absolute leave-one-out residual of each point under the candidate (source and strength)
    that the other points' leave-one-out errors choose. The candidate chosen on all points fits
    them best of all candidates, so its own residuals understate the error on a new point."""
    squared = np.stack([(prediction - t) ** 2 for prediction in loo]) * w
    best = np.argmin(squared.sum(axis=1, keepdims=True) - squared, axis=0)
    return np.abs(np.stack(loo)[best, np.arange(len(t))] - t)


class TransferCalibrator:
    """Rescale the best of several source predictors to a device (see module docstring).

    sources: name -> fitted model with ``predict(X)`` in milliseconds (the device's own op-table
    features ``X``). ``source_ids``: name -> stored predictor id (kept in :meth:`to_dict`).
    """

    def __init__(self, sources: Mapping[str, SourceModel], coverage: float = 0.9, alphas=ALPHAS,
                 source_ids: Mapping[str, int] | None = None):
        if not sources:
            raise ValueError("a transfer needs at least one source predictor (a richly measured device)")
        self.sources = dict(sources)
        self.coverage = coverage
        self.alphas = tuple(alphas)
        self.source_ids = dict(source_ids or {})

    def _source_logs(self, X: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.log(np.maximum(model.predict(X), _EPS)) for name, model in self.sources.items()}

    def _loo(self, z: np.ndarray, e: np.ndarray, t: np.ndarray, alpha: float, w: np.ndarray) -> np.ndarray:
        out = np.empty(len(t))
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            params = _fit_ridge(z[keep], e[keep], t[keep], alpha, w[keep])
            out[i] = _predict_ridge(params, z[i:i + 1], e[i:i + 1])[0]
        return out

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> TransferCalibrator:
        t = np.log(np.asarray(y, dtype=float))
        w = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if len(t) < MIN_POINTS:
            raise ValueError(f"a transfer needs at least {MIN_POINTS} measured architectures, got {len(t)}")
        e = extras(X)
        scores = {}
        for name, z in self._source_logs(X).items():
            for alpha in self.alphas:
                loo = self._loo(z, e, t, alpha, w)
                scores[(name, alpha)] = (float(np.sqrt(np.average((loo - t) ** 2, weights=w))), loo)
        (self.source_, self.alpha_), (_, loo) = min(scores.items(), key=lambda item: item[1][0])
        self.selection_ = {f"{name}@{alpha:g}": rmse for (name, alpha), (rmse, _) in scores.items()}
        self.params_ = _fit_ridge(self._source_logs(X)[self.source_], e, t, self.alpha_, w)
        self.loo_predictions_ = np.exp(loo)
        residuals = np.sort(_selection_free_residuals([v for _, v in scores.values()], t, w))
        rank = math.ceil((len(t) + 1) * self.coverage)
        # fewer points than the coverage needs: the largest residual, widened by half
        self.log_half_width_ = float(residuals[rank - 1] if rank <= len(t) else 1.5 * residuals[-1])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = np.log(np.maximum(self.sources[self.source_].predict(X), _EPS))
        return np.exp(_predict_ridge(self.params_, z, extras(X)))

    def predict_interval(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        median = self.predict(X)
        return median, median * math.exp(-self.log_half_width_), median * math.exp(self.log_half_width_)

    def to_dict(self) -> dict[str, Any]:
        params = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.params_.items()}
        return {"source": self.source_, "source_ids": self.source_ids, "alpha": self.alpha_,
                "coverage": self.coverage, "params": params, "log_half_width": self.log_half_width_,
                "selection": self.selection_}

    @classmethod
    def from_dict(cls, data: dict[str, Any], sources: Mapping[str, SourceModel]) -> TransferCalibrator:
        model = cls(sources, data["coverage"], source_ids=data["source_ids"])
        model.source_, model.alpha_ = data["source"], data["alpha"]
        model.params_ = {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v) for k, v in data["params"].items()}
        model.log_half_width_ = data["log_half_width"]
        model.selection_ = data.get("selection", {})
        return model
