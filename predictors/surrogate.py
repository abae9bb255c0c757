"""A surrogate of ImageNet top-1 (%): Bayesian ridge regression on a few architecture features,
fitted on the known results (published and imported ImageNet top-1).

Only a handful of results exist, so the model is deliberately low-capacity: by default two
features (log #params, log MACs at the config's resolution), standardised, with a Gaussian prior
(ridge ``alpha``) on the coefficients. Its noise level is the mean squared leave-one-out error,
so the reported uncertainty reflects how well it generalises rather than how well it fits.

It never extrapolates silently: :meth:`AccuracySurrogate.predict` flags a config when a feature
lies outside the fitted range (widened by ``RANGE_MARGIN`` of its span) or when the config has a
property no fitted architecture has (another space, an attention type, MLP presence, the unfused
variant). The fitted state is plain JSON (``to_json`` / ``from_json``), never a pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from search_spaces.base import ArchConfig

SURROGATE_FORMAT = "explorer-accuracy-surrogate/1"
RANGE_MARGIN = 0.1


def _depth(config: ArchConfig) -> float:
    return float(sum(getattr(config, "depths", (0,))))


def _attention_fraction(config: ArchConfig) -> float:
    depths = getattr(config, "depths", None)
    if depths is None:
        return 0.0
    blocks = depths[3] + depths[4]
    with_attention = sum(d for d, s in ((depths[3], config.stage3), (depths[4], config.stage4)) if s.has_attention)
    return with_attention / blocks if blocks else 0.0


#: feature name -> function of a config; all cheap (op table or knobs, no network build)
FEATURES: dict[str, Callable[[ArchConfig], float]] = {
    "log_params": lambda c: math.log(c.op_table().params),
    "log_macs": lambda c: math.log(c.op_table().macs),
    "depth": _depth,
    "attention_fraction": _attention_fraction,
    "log_resolution": lambda c: math.log(c.resolution),
}
DEFAULT_FEATURES = ("log_params", "log_macs")


def descriptors(config: ArchConfig) -> set[str]:
    """Categorical properties whose unseen values make a prediction an extrapolation."""
    out = {f"space={config.space}"}
    if config.space == "lowformer":
        for i in (3, 4):
            stage = config.stage(i)
            out.add(f"stage{i}.attention={stage.attention if config.depths[i] else 'empty'}")
            out.add(f"stage{i}.mlp={stage.mlp if config.depths[i] else 'empty'}")
        out.add(f"unfused={config.unfused}")
    return out


def feature_matrix(configs: Sequence[ArchConfig], features: Sequence[str] = DEFAULT_FEATURES) -> np.ndarray:
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown surrogate feature {unknown[0]!r}; allowed: {', '.join(FEATURES)}")
    return np.array([[FEATURES[f](c) for f in features] for c in configs], dtype=np.float64).reshape(
        len(configs), len(features))


@dataclass(frozen=True)
class SurrogatePrediction:
    """Predicted ImageNet top-1 (%), its standard deviation, and extrapolation flags."""

    mean: np.ndarray
    std: np.ndarray
    flagged: np.ndarray  # bool: outside what the surrogate was fitted on
    reasons: tuple[tuple[str, ...], ...]


class AccuracySurrogate:
    """Bayesian ridge regression of top-1 on standardised features (scikit-learn style).

    alpha: prior precision of the standardised coefficients (ridge strength).
    features: names from :data:`FEATURES`.
    """

    def __init__(self, alpha: float = 1.0, features: Sequence[str] = DEFAULT_FEATURES):
        self.alpha = alpha
        self.features = tuple(features)

    # -- fitting -------------------------------------------------------------------------------

    def _solve(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)  # a constant feature gets a zero coefficient
        z = (x - mean) / scale
        intercept = float(y.mean())
        precision = z.T @ z + self.alpha * np.eye(z.shape[1])
        coef = np.linalg.solve(precision, z.T @ (y - intercept))
        return mean, scale, intercept, coef, np.linalg.inv(precision)

    def fit(self, x: np.ndarray, y: np.ndarray, descriptor_sets: Sequence[set[str]] = ()) -> AccuracySurrogate:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(y) < 3:
            raise ValueError(f"the surrogate needs at least 3 results to fit, got {len(y)}")
        self.mean_, self.scale_, self.intercept_, self.coef_, self.covariance_ = self._solve(x, y)
        self.loo_predictions_ = self._loo(x, y)
        residuals = self.loo_predictions_ - y
        self.noise_ = float(np.sqrt(np.mean(residuals**2)))
        self.range_ = np.stack([x.min(axis=0), x.max(axis=0)])
        self.descriptors_ = sorted(set().union(*descriptor_sets)) if descriptor_sets else []
        self.n_ = len(y)
        self.targets_ = y
        return self

    def _loo(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.empty(len(y))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            mean, scale, intercept, coef, _ = self._solve(x[keep], y[keep])
            out[i] = intercept + ((x[i] - mean) / scale) @ coef
        return out

    # -- prediction ----------------------------------------------------------------------------

    def predict_features(self, x: np.ndarray, descriptor_sets: Sequence[set[str]] | None = None) -> SurrogatePrediction:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = (x - self.mean_) / self.scale_
        mean = self.intercept_ + z @ self.coef_
        leverage = np.einsum("ij,jk,ik->i", z, self.covariance_, z)
        std = self.noise_ * np.sqrt(1.0 + 1.0 / self.n_ + leverage)
        low, high = self.range_
        margin = RANGE_MARGIN * (high - low)
        known = set(self.descriptors_)
        reasons = []
        for i, row in enumerate(x):
            why = [f"{name} {value:.3g} outside fitted range [{lo:.3g}, {hi:.3g}]"
                   for name, value, lo, hi, m in zip(self.features, row, low, high, margin)
                   if value < lo - m or value > hi + m]
            if descriptor_sets is not None and known:
                why += [f"{d} not in fitted data" for d in sorted(descriptor_sets[i] - known)]
            reasons.append(tuple(why))
        return SurrogatePrediction(mean, std, np.array([bool(r) for r in reasons]), tuple(reasons))

    def predict(self, configs: Sequence[ArchConfig]) -> SurrogatePrediction:
        return self.predict_features(feature_matrix(configs, self.features), [descriptors(c) for c in configs])

    # -- evaluation and serialisation ----------------------------------------------------------

    def loo_metrics(self) -> dict[str, float]:
        """Leave-one-out errors (top-1 points) and rank agreement on the fitted results."""
        errors = self.loo_predictions_ - self.targets_
        tau = stats.kendalltau(self.loo_predictions_, self.targets_).statistic if self.n_ > 2 else float("nan")
        return {"n": self.n_, "mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2))),
                "max_abs_error": float(np.max(np.abs(errors))), "kendall_tau": float(tau)}

    def to_json(self) -> str:
        return json.dumps({
            "format": SURROGATE_FORMAT, "alpha": self.alpha, "features": list(self.features),
            "mean": self.mean_.tolist(), "scale": self.scale_.tolist(), "intercept": self.intercept_,
            "coef": self.coef_.tolist(), "covariance": self.covariance_.tolist(), "noise": self.noise_,
            "range": self.range_.tolist(), "descriptors": self.descriptors_, "n": self.n_,
            "targets": self.targets_.tolist(), "loo_predictions": self.loo_predictions_.tolist(),
        })

    @classmethod
    def from_json(cls, text: str) -> AccuracySurrogate:
        data = json.loads(text)
        if data.get("format") != SURROGATE_FORMAT:
            raise ValueError(f"not an accuracy surrogate: format {data.get('format')!r}, expected {SURROGATE_FORMAT!r}")
        model = cls(alpha=data["alpha"], features=data["features"])
        for key in ("mean", "scale", "coef", "covariance", "range", "targets", "loo_predictions"):
            setattr(model, f"{key}_", np.asarray(data[key], dtype=np.float64))
        model.intercept_, model.noise_, model.n_ = data["intercept"], data["noise"], data["n"]
        model.descriptors_ = list(data["descriptors"])
        return model


def fit_surrogate(configs: Sequence[ArchConfig], top1: Sequence[float], alpha: float = 1.0,
                  features: Sequence[str] = DEFAULT_FEATURES) -> AccuracySurrogate:
    """Fit on configs and their ImageNet top-1 (%)."""
    return AccuracySurrogate(alpha, features).fit(
        feature_matrix(configs, features), np.asarray(top1, dtype=np.float64), [descriptors(c) for c in configs])
