"""A physically grounded per-op-class cost model, and its few-shot calibration to a new device.

Run time is modelled as a sum of non-negative terms: compute-bound time per class of MAC (dense
and 1x1 convolutions, depthwise, transposed and attention matmuls run at very different speeds),
memory-bound time per byte moved, and a fixed overhead per kernel launch (convolutions and matmuls apart from
element-wise ops, which runtimes often fuse into them). With many measurements
the coefficients are fitted directly (non-negative least squares on relative error). With a
handful, a prior cost model (the rich local device's, or a generic one) is only rescaled: one free
overall speed plus one log-factor per term pulled towards 1 by a ridge penalty, so six published
points cannot produce a negative or absurd latency for a random architecture.

The plainest model of all, latency = a * MACs ** b (:class:`MacsCalibrator`), is kept here too:
it is what a predictor must beat to be served (``predictors.store.serving_choice``).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np

from predictors.features import FEATURE_INDEX

#: term -> features whose sum the term's coefficient multiplies
COST_TERMS: dict[str, tuple[str, ...]] = {
    "dense_macs": ("dense_conv.macs", "grouped_conv.macs", "pointwise.macs"),
    "depthwise_macs": ("depthwise_conv.macs",),
    "transposed_macs": ("transposed_conv.macs",),
    "attention_macs": ("attention_matmul.macs",),
    "bytes": ("total.bytes",),
    "compute_launches": tuple(f"{c}.ops" for c in ("dense_conv", "depthwise_conv", "grouped_conv",
                                                    "transposed_conv", "pointwise", "attention_matmul")),
    "elementwise_launches": tuple(f"{c}.ops" for c in ("softmax", "norm", "layer_norm", "activation", "add", "pool")),
}
_TERM_COLUMNS = [np.array([FEATURE_INDEX[f] for f in feats]) for feats in COST_TERMS.values()]
_MACS = FEATURE_INDEX["total.macs"]

#: ms per unit of a generic small CPU: 20 GMAC/s dense, depthwise/transposed 4x slower per MAC
#: (the study finds >= 3x on CPUs), 10 GB/s memory, 10 us per convolution or matmul call and
#: 5 us per element-wise call (which graph compilers often fuse away).
GENERIC_COEFFICIENTS = {
    "dense_macs": 5e-8,
    "depthwise_macs": 2e-7,
    "transposed_macs": 2e-7,
    "attention_macs": 5e-8,
    "bytes": 1e-7,
    "compute_launches": 1e-2,
    "elementwise_launches": 5e-3,
}
#: ms per unit of a GPU at batch 1, where launches, not MACs, take the time: 5 TMAC/s dense,
#: depthwise and transposed 5x slower per MAC (memory-bound), 500 GB/s, 20 us per convolution or
#: matmul kernel and 10 us per element-wise one (TITAN RTX, TorchScript: LowFormer-B1's 107
#: convolution and matmul kernels and 129 element-wise ones take 3.4 of its 4.0 ms this way)
LAUNCH_BOUND_COEFFICIENTS = {
    "dense_macs": 2e-10,
    "depthwise_macs": 1e-9,
    "transposed_macs": 1e-9,
    "attention_macs": 2e-10,
    "bytes": 2e-9,
    "compute_launches": 2e-2,
    "elementwise_launches": 1e-2,
}
_FLOOR_MS = 1e-6


def cost_design(features: np.ndarray) -> np.ndarray:
    """(n, len(COST_TERMS)) quantities of each cost term, from a feature matrix."""
    features = np.atleast_2d(features)
    return np.stack([features[:, cols].sum(axis=1) for cols in _TERM_COLUMNS], axis=1)


class CostModel:
    """latency_ms = sum over terms of coefficient * quantity, coefficients >= 0.

    scikit-learn style: ``fit(X, y)`` on feature matrices (see :mod:`predictors.features`).
    """

    def __init__(self, coefficients: dict[str, float] | None = None):
        self.coefficients = coefficients

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> CostModel:
        """Non-negative least squares on relative error (rows divided by the measured latency)."""
        design = cost_design(X)
        y = np.asarray(y, dtype=float)
        root_weight = np.ones(len(y)) if sample_weight is None else np.sqrt(np.asarray(sample_weight, dtype=float))
        scale = np.maximum(design.mean(axis=0), 1e-12)
        from scipy import optimize  # fitting only: predictions load no scipy.optimize

        coef, _ = optimize.nnls(design / scale * (root_weight / y)[:, None], root_weight)
        self.coef_ = coef / scale
        return self

    @property
    def coef(self) -> np.ndarray:
        if hasattr(self, "coef_"):
            return self.coef_
        coefficients = self.coefficients or GENERIC_COEFFICIENTS
        return np.array([coefficients[t] for t in COST_TERMS])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(cost_design(X) @ self.coef, _FLOOR_MS)

    def term_times(self, X: np.ndarray) -> np.ndarray:
        """(n, terms) predicted ms spent in each term: where the time goes."""
        return cost_design(X) * self.coef

    def to_dict(self) -> dict[str, float]:
        return dict(zip(COST_TERMS, map(float, self.coef)))


def loo_log_sigma(loo_predictions: np.ndarray, log_y: np.ndarray, weight: np.ndarray, floor: float) -> float:
    """Root mean square leave-one-out log error (at least ``floor``): the spread of an interval."""
    errors = np.log(loo_predictions) - log_y
    return max(float(np.sqrt(np.average(errors ** 2, weights=weight))), floor)


class _LogNormalInterval:
    """An interval of ``coverage`` from a normal log error of ``log_sigma_`` around ``predict``."""

    coverage: float
    log_sigma_: float
    #: predictions and intervals do not depend on the group of a row
    uses_groups = False

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_interval(self, X: np.ndarray, groups: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        median = self.predict(X)
        half = NormalDist().inv_cdf(0.5 + self.coverage / 2) * self.log_sigma_
        return median, median * np.exp(-half), median * np.exp(half)


def _log_macs(X: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.atleast_2d(X)[:, _MACS], 1.0))


def _power_law_loo(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each point's prediction (exp) by the weighted line through the other points' (x, t), as
    :class:`~predictors.metrics.MacsBaseline` fits it (a constant where the others' x are all
    equal, one point: itself), from the weighted sums less the point's own: O(n), not n fits."""
    if len(t) == 1:
        return np.exp(t)
    s0, sx, st, sxx, sxt = (np.sum(w * v) - w * v for v in (np.ones_like(x), x, t, x * x, x * t))
    spread = s0 * sxx - sx * sx
    flat = spread <= 1e-12 * np.maximum(s0 * sxx, 1e-300)
    slope = np.where(flat, 0.0, (s0 * sxt - sx * st) / np.where(flat, 1.0, spread))
    return np.exp((st - slope * sx) / s0 + slope * x)


class MacsCalibrator(_LogNormalInterval):
    """latency = a * MACs ** b (:class:`~predictors.metrics.MacsBaseline`), with the interval of
    its leave-one-out log error. Served only where the richer kinds did worse on leave-one-out."""

    def __init__(self, coverage: float = 0.9, min_log_sigma: float = 0.05):
        self.coverage = coverage
        self.min_log_sigma = min_log_sigma

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: object = None) -> MacsCalibrator:
        """``groups`` is accepted for a common estimator interface and unused."""
        from predictors.metrics import MacsBaseline  # fitting only: predictions load no scipy.stats

        y = np.asarray(y, dtype=float)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.coef_ = MacsBaseline().fit(X, y, weight).coef_
        self.loo_predictions_ = _power_law_loo(_log_macs(X), np.log(y), weight)
        self.log_sigma_ = loo_log_sigma(self.loo_predictions_, np.log(y), weight, self.min_log_sigma)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.exp(np.polyval(self.coef_, _log_macs(X)))

    def to_dict(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "min_log_sigma": self.min_log_sigma, "coef": self.coef_.tolist(),
                "log_sigma": self.log_sigma_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MacsCalibrator:
        model = cls(data["coverage"], data["min_log_sigma"])
        model.coef_ = np.asarray(data["coef"], dtype=float)
        model.log_sigma_ = float(data["log_sigma"])
        return model


class FewShotCalibrator(_LogNormalInterval):
    """Rescale a prior :class:`CostModel` to a device from a few measurements.

    latency = s * sum_t w_t * prior_t(x); log s is free, each log w_t is penalised by
    ``strength * (log w_t)**2`` (a Gaussian prior around the prior device's balance). The
    interval is the leave-one-out log error (at least ``min_log_sigma``), as a normal quantile.
    """

    def __init__(self, prior: dict[str, float] | None = None, strength: float = 0.03,
                 coverage: float = 0.9, min_log_sigma: float = 0.05):
        self.prior = prior
        self.strength = strength
        self.coverage = coverage
        self.min_log_sigma = min_log_sigma

    def _prior_terms(self, X: np.ndarray) -> np.ndarray:
        return CostModel(self.prior).term_times(X)

    def _solve(self, terms: np.ndarray, log_y: np.ndarray, weight: np.ndarray) -> np.ndarray:
        n_terms = terms.shape[1]
        start = np.zeros(n_terms + 1)
        start[0] = np.median(log_y - np.log(np.maximum(terms.sum(axis=1), _FLOOR_MS)))
        penalty, root_weight = np.sqrt(self.strength), np.sqrt(weight)

        def residuals(p: np.ndarray) -> np.ndarray:
            pred = np.exp(p[0]) * (terms @ np.exp(p[1:]))
            return np.concatenate([root_weight * (np.log(np.maximum(pred, _FLOOR_MS)) - log_y), penalty * p[1:]])

        from scipy import optimize  # fitting only: predictions load no scipy.optimize

        return optimize.least_squares(residuals, start, method="trf").x

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: object = None) -> FewShotCalibrator:
        """``sample_weight``: trust per point, e.g. lower for reconstructed architectures.
        ``groups`` is accepted for a common estimator interface and unused: a few points
        calibrate one interval by leave-one-out over all of them."""
        if self.strength <= 0:
            raise ValueError(f"strength must be > 0 (a prior is what makes few points enough); got {self.strength}")
        terms = self._prior_terms(X)
        log_y = np.log(np.asarray(y, dtype=float))
        n = len(log_y)
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.params_ = self._solve(terms, log_y, weight)
        loo = np.empty(n)
        for i in range(n):
            keep = np.arange(n) != i
            p = self._solve(terms[keep], log_y[keep], weight[keep])
            loo[i] = np.exp(p[0]) * (terms[i] @ np.exp(p[1:]))
        self.loo_predictions_ = loo if n > 1 else np.exp(log_y)
        self.log_sigma_ = loo_log_sigma(self.loo_predictions_, log_y, weight, self.min_log_sigma)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        terms = self._prior_terms(X)
        return np.maximum(np.exp(self.params_[0]) * (terms @ np.exp(self.params_[1:])), _FLOOR_MS)

    @property
    def coefficients(self) -> dict[str, float]:
        """The calibrated cost model: ms per unit of each term on this device."""
        prior = CostModel(self.prior).coef
        return dict(zip(COST_TERMS, map(float, np.exp(self.params_[0]) * np.exp(self.params_[1:]) * prior)))

    def to_dict(self) -> dict[str, Any]:
        return {"prior": CostModel(self.prior).to_dict(), "strength": self.strength,
                "coverage": self.coverage, "min_log_sigma": self.min_log_sigma,
                "params": self.params_.tolist(), "log_sigma": self.log_sigma_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FewShotCalibrator:
        model = cls(data["prior"], data["strength"], data["coverage"], data["min_log_sigma"])
        model.params_ = np.asarray(data["params"], dtype=float)
        model.log_sigma_ = float(data["log_sigma"])
        return model
