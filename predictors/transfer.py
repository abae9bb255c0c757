"""A new device from a handful of measurements, by transfer from richly measured devices.

A device with ten or twenty measured architectures cannot train a model of its own, but a device
measured on a thousand can rank any architecture well. The transfer model predicts the new
device's log latency from a source predictor's log latency, plus what the op table says the
source may weigh differently (depthwise share of the work, memory traffic per MAC, attention
score elements per MAC, and the work itself: a runtime with more overhead per kernel, such as
eager PyTorch against a compiled graph, is slower on small models than its speed on large ones
says, which the source's latency alone, mixing work and overhead, cannot tell):

    log y = a + b log source(x) + c . extras(x)

with a strong prior towards a plain scaling of the source (ridge on ``b - 1`` and ``c``). Every
source and ridge strength is a candidate scored by leave-one-out on the device's own points, and
the prediction averages the candidates' log latencies with pseudo-BMA+ weights (Yao et al. 2018:
the Bayesian-bootstrapped leave-one-out log density of each candidate): with ten points, picking
the single best candidate mostly picks noise, and the weighted mean has a 5-16 % lower MAPE at
k = 5-20 (``benchmarks/new_device.py``). Intervals are split-conformal from the leave-one-out
residuals (the ``ceil((n + 1) coverage)``-th smallest absolute log residual, each point's under
the weights the other points give), so they cover what they claim on points like the ones
measured.

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
BOOTSTRAP_DRAWS = 200  # Bayesian bootstrap draws of the pseudo-BMA+ weights
MIN_WEIGHT = 1e-3  # candidates below this weight are dropped (and the rest renormalised)
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
        logs = self._source_logs(X)
        candidates = [(name, alpha) for name in logs for alpha in self.alphas]
        loo = np.stack([self._loo(logs[name], e, t, alpha, w) for name, alpha in candidates])
        rmse = np.sqrt(np.average((loo - t) ** 2, axis=1, weights=w))
        self.selection_ = {f"{name}@{alpha:g}": float(r) for (name, alpha), r in zip(candidates, rmse)}
        weights = pseudo_bma_weights(loo, t, w)
        kept = np.flatnonzero(weights >= MIN_WEIGHT)
        weights = weights[kept] / weights[kept].sum()
        self.mixture_ = [{"source": candidates[c][0], "alpha": candidates[c][1], "weight": float(weight),
                          "params": _fit_ridge(logs[candidates[c][0]], e, t, candidates[c][1], w)}
                         for c, weight in sorted(zip(kept, weights), key=lambda item: -item[1])]
        self.source_, self.alpha_ = self.mixture_[0]["source"], self.mixture_[0]["alpha"]
        self.loo_predictions_ = np.exp(weights @ loo[kept])
        residuals = np.sort(_held_out_residuals(loo, t, w))
        rank = math.ceil((len(t) + 1) * self.coverage)
        # fewer points than the coverage needs: the largest residual, widened by half
        self.log_half_width_ = float(residuals[rank - 1] if rank <= len(t) else 1.5 * residuals[-1])
        return self

    @property
    def source_weights(self) -> dict[str, float]:
        """Weight of each source in the prediction (summed over its ridge strengths)."""
        out: dict[str, float] = {}
        for part in self.mixture_:
            out[part["source"]] = out.get(part["source"], 0.0) + part["weight"]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        e = extras(X)
        logs = {name: np.log(np.maximum(self.sources[name].predict(X), _EPS)) for name in self.source_weights}
        return np.exp(sum(part["weight"] * _predict_ridge(part["params"], logs[part["source"]], e)
                          for part in self.mixture_))

    def predict_interval(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        median = self.predict(X)
        return median, median * math.exp(-self.log_half_width_), median * math.exp(self.log_half_width_)

    def to_dict(self) -> dict[str, Any]:
        mixture = [{**part, "params": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                       for k, v in part["params"].items()}} for part in self.mixture_]
        return {"source": self.source_, "source_ids": self.source_ids, "alpha": self.alpha_,
                "coverage": self.coverage, "mixture": mixture, "log_half_width": self.log_half_width_,
                "selection": self.selection_}

    @classmethod
    def from_dict(cls, data: dict[str, Any], sources: Mapping[str, SourceModel]) -> TransferCalibrator:
        """Also reads a model stored before the mixture (one source and strength, ``params``)."""
        model = cls(sources, data["coverage"], source_ids=data["source_ids"])
        model.source_, model.alpha_ = data["source"], data["alpha"]
        mixture = data.get("mixture") or [{"source": data["source"], "alpha": data["alpha"], "weight": 1.0,
                                           "params": data["params"]}]
        model.mixture_ = [{**part, "params": {k: (np.asarray(v, dtype=float) if isinstance(v, list) else v)
                                              for k, v in part["params"].items()}} for part in mixture]
        model.log_half_width_ = data["log_half_width"]
        model.selection_ = data.get("selection", {})
        return model


def mixture_sources(data: Mapping[str, Any]) -> list[str]:
    """The sources a stored transfer (its ``to_dict``) predicts from."""
    return list(dict.fromkeys(part["source"] for part in data.get("mixture") or [{"source": data["source"]}]))
