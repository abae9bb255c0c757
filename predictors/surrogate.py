"""A surrogate of ImageNet top-1 (%) anchored in the published state of the art, that sees an
architecture's shape and says how sure it is.

Few results of our spaces exist (tens), all at a few published sizes; hundreds of published
networks of every size exist outside them (:mod:`predictors.reference`). So the model is built
in three layers, each answering what the one below cannot:

1. a **reference curve**: what top-1 published networks reach at given MACs, #params and input
   resolution, a quadratic ridge regression of the log error rate on their logs, fitted on the
   ImageNet-1k-only, undistilled reference set (hundreds of networks from 30 M to 10 G MACs).
   Downward and upward in size, a prediction follows the field's networks, not an extrapolation
   of a few in-space points;
2. **family offsets**: where each family of our spaces lies against that curve (the mean residual
   of its results, shrunk towards the mean of all in-space results by ``FAMILY_SHRINKAGE``);
3. a **Gaussian process** (scikit-learn's ``GaussianProcessRegressor``) on what is left, with an
   RBF kernel with one length scale per shape feature (:data:`SHAPE_FEATURES`: size, blocks and
   their spread over stages, widest feature map, attention and depthwise shares) plus a linear
   kernel whose variance grows without bound away from the evidence; beyond the evidence's range
   in a shape feature the reference set cannot speak for (blocks, their spread, widest map,
   attention and depthwise shares), the published networks' spread around the curve is added,
   times the squared distance in standard deviations of the evidence. A network unlike any
   trained one (two blocks instead of fifteen) gets a wide interval and a low pessimistic bound.

Two rules keep the claims honest:

- **a cap**: no predicted mean exceeds the best published top-1 at no more MACs (the
  reference set and the in-space evidence) by more than :func:`predictors.reference.frontier_margin`
  (nine in ten published designs end at most that far above the best before them);
- **a floor on the interval**: any architecture that is not itself a trained result carries the
  spread of published one-knob effects (:func:`predictors.reference.one_knob_spread`) on top of the
  model's uncertainty: a one-knob change of a published network is as uncertain as the ablation
  tables say such changes are.

**Calibration by leave-one-out**: every result is predicted by a model fitted without it; the
predictive standard deviation is widened (never narrowed) so that ~90 % intervals hold on those
held-out results, and the coverage is reported with the scale itself left out as well. Further
held-out views (:meth:`AccuracySurrogate.leave_smallest_out`, :meth:`leave_one_family_out`) say
how the model extrapolates downward and to a family it has not seen.

Which variant serves (shape GP, size GP, or the reference curve with family offsets alone) is
chosen by leave-one-out error. The fitted state is plain JSON (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from predictors.reference import best_published, clean_reference, frontier_margin, one_knob_spread
from search_spaces.base import ArchConfig
from search_spaces.optable import OpTable

SURROGATE_FORMAT = "explorer-accuracy-surrogate/3"
SURROGATE_VERSION = "3"
RANGE_MARGIN = 0.1
FAMILIES = ("lowformer", "efficientvit", "fmvit", "mcga")
#: two-sided coverage the reported interval aims at, and the quantiles of its ends
INTERVAL = 0.90
PESSIMISTIC_QUANTILE = (1 - INTERVAL) / 2
OPTIMISTIC_QUANTILE = 1 - PESSIMISTIC_QUANTILE
#: a family's offset is the sum of its residuals over (its number of results + this): one result
#: moves the family half-way from the mean of all in-space results
FAMILY_SHRINKAGE = 1.0
#: the reference curve: ridge penalty chosen by leave-one-out among these
REFERENCE_ALPHAS = tuple(np.logspace(-3, 3, 13))
#: bounds of the GP's hyperparameters (log error rate; 0.05 is about 1 point at 80 % top-1):
#: RBF length scales in standard deviations of the evidence, amplitudes, noise
LENGTH_SCALE_BOUNDS = (0.3, 10.0)
AMPLITUDE_BOUNDS = (1e-4, 0.1)
LINEAR_BOUNDS = (1e-6, 1e-2)
NOISE_BOUNDS = (1e-6, 1e-2)
#: a feature row this close (in standardised units) to a fitted result is that result
SAME_ARCHITECTURE = 1e-6


def _family(config: ArchConfig) -> str:
    space = config.space
    return next((f for f in FAMILIES if space.startswith(f)), space)


def _depths(config: ArchConfig) -> tuple[int, ...]:
    return tuple(getattr(config, "depths", ()) or (0,))


def _blocks(config: ArchConfig) -> float:
    return float(sum(_depths(config)))


def _deep_share(config: ArchConfig) -> float:
    depths = _depths(config)
    total = sum(depths)
    return sum(depths[-2:]) / total if total else 0.0


def _class_share(table: OpTable, classes: tuple[str, ...]) -> float:
    by_class = table.by_class()
    return sum(by_class.get(c, {}).get("macs", 0) for c in classes) / max(table.macs, 1)


def _max_channels(table: OpTable) -> float:
    return float(max((row.out_shape[0] for row in table.rows
                      if len(row.out_shape) == 3 and row.out_shape[1] > 1), default=1))


#: feature name -> function of a config and its op table; all from knobs and the analytic op
#: table (no network build), which :func:`feature_matrix` builds once per config
FEATURES: dict[str, Callable[[ArchConfig, OpTable], float]] = {
    "log_params": lambda c, t: math.log(t.params),
    "log_macs": lambda c, t: math.log(t.macs),
    "log_resolution": lambda c, t: math.log(c.resolution),
    "log_blocks": lambda c, t: math.log1p(_blocks(c)),
    "deep_share": lambda c, t: _deep_share(c),
    "log_max_channels": lambda c, t: math.log(_max_channels(t)),
    "attention_mac_share": lambda c, t: _class_share(t, ("attention_matmul", "softmax")),
    "depthwise_mac_share": lambda c, t: _class_share(t, ("depthwise_conv",)),
    **{f"family={f}": (lambda c, t, f=f: float(_family(c) == f)) for f in FAMILIES},
}
ALL_FEATURES = tuple(FEATURES)
FAMILY_FEATURES = tuple(f"family={f}" for f in FAMILIES)
#: what the reference curve sees: size as every published table gives it
REFERENCE_FEATURES = ("log_macs", "log_params", "log_resolution")
SIZE_FEATURES = ("log_params", "log_macs", "log_resolution", "log_blocks")
SHAPE_FEATURES = tuple(f for f in FEATURES if f not in FAMILY_FEATURES)
#: shape features the reference set does not span: beyond the in-space evidence the curve guesses
BEYOND_FEATURES = tuple(f for f in SHAPE_FEATURES if f not in REFERENCE_FEATURES)
#: the candidates compared by leave-one-out: name -> GP features (None: curve and offsets only)
VARIANTS: dict[str, tuple[str, ...] | None] = {
    "gp-shape": SHAPE_FEATURES,
    "gp-size": SIZE_FEATURES,
    "reference": None,
}
DEFAULT_VARIANT = "gp-shape"


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


def feature_matrix(configs: Sequence[ArchConfig], features: Sequence[str] = ALL_FEATURES) -> np.ndarray:
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown surrogate feature {unknown[0]!r}; allowed: {', '.join(FEATURES)}")
    rows = []
    for config in configs:
        table = config.op_table()
        rows.append([FEATURES[f](config, table) for f in features])
    return np.array(rows, dtype=np.float64).reshape(len(configs), len(features))


@dataclass(frozen=True)
class SurrogatePrediction:
    """Predicted ImageNet top-1 (%) with its calibrated standard deviation, extrapolation flags,
    the nearest result it rests on (index into the fitted results) and the published ceiling
    it was held to (NaN where nothing published is that small)."""

    mean: np.ndarray
    std: np.ndarray
    flagged: np.ndarray  # bool: outside what the surrogate was fitted on
    reasons: tuple[tuple[str, ...], ...]
    nearest: np.ndarray  # int: index of the nearest fitted result (in the GP's metric)
    ceiling: np.ndarray | None = None  # the cap applied to the mean (top-1 %)

    def quantile(self, q: float) -> np.ndarray:
        """The ``q`` quantile of the predictive distribution (0.05: pessimistic bound)."""
        return self.mean + stats.norm.ppf(q) * self.std

    @property
    def low(self) -> np.ndarray:
        return self.quantile(PESSIMISTIC_QUANTILE)

    @property
    def high(self) -> np.ndarray:
        return self.quantile(OPTIMISTIC_QUANTILE)


def _to_log_error(top1: np.ndarray) -> np.ndarray:
    """Top-1 % as the log of the error rate, where scaling laws are close to linear."""
    return np.log(np.clip(100.0 - np.asarray(top1, dtype=np.float64), 1e-3, None))


# -- the reference curve ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceCurve:
    """Log error rate of published networks as a quadratic function of their standardised log
    MACs, #params and resolution (ridge regression); plain numbers, so it serialises as JSON."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    powers: tuple[tuple[int, ...], ...]
    coef: tuple[float, ...]
    intercept: float
    n: int
    residual_sd: float  # spread of the published networks around the curve (log error rate)

    def predict(self, size: np.ndarray) -> np.ndarray:
        """``size``: columns :data:`REFERENCE_FEATURES`; returns the log error rate."""
        z = (np.atleast_2d(size) - np.asarray(self.mean)) / np.asarray(self.scale)
        design = np.prod(z[:, None, :] ** np.asarray(self.powers)[None, :, :], axis=2)
        return self.intercept + design @ np.asarray(self.coef)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "scale": list(self.scale), "powers": [list(p) for p in self.powers],
                "coef": list(self.coef), "intercept": self.intercept, "n": self.n, "residual_sd": self.residual_sd}

    @classmethod
    def from_dict(cls, data: dict) -> ReferenceCurve:
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(tuple(p) for p in data["powers"]),
                   tuple(data["coef"]), float(data["intercept"]), int(data["n"]), float(data["residual_sd"]))


@lru_cache(maxsize=1)
def reference_curve() -> ReferenceCurve:
    """The curve fitted on the clean reference set (ImageNet-1k only, undistilled, without the
    networks that are presets of our spaces: those are in-space evidence)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import PolynomialFeatures

    rows = clean_reference()
    size = np.log([[r.macs_m * 1e6, r.params_m * 1e6, r.resolution] for r in rows])
    mean, scale = size.mean(axis=0), size.std(axis=0)
    poly = PolynomialFeatures(2, include_bias=False).fit((size - mean) / scale)
    design, target = poly.transform((size - mean) / scale), _to_log_error([r.top1 for r in rows])
    ridge = RidgeCV(alphas=REFERENCE_ALPHAS).fit(design, target)
    residual_sd = float(np.std(target - ridge.predict(design), ddof=design.shape[1] + 1))
    return ReferenceCurve(tuple(mean), tuple(scale), tuple(map(tuple, poly.powers_.tolist())),
                          tuple(ridge.coef_.tolist()), float(ridge.intercept_), len(rows), residual_sd)


# -- the in-space model -------------------------------------------------------------------------


def _gp_kernel(n_features: int):
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

    return (ConstantKernel(1e-3, AMPLITUDE_BOUNDS) * RBF(np.ones(n_features), LENGTH_SCALE_BOUNDS)
            + ConstantKernel(1e-4, LINEAR_BOUNDS) * DotProduct(sigma_0=0.0, sigma_0_bounds="fixed")
            + WhiteKernel(1e-4, NOISE_BOUNDS))


class AccuracySurrogate:
    """Reference curve, family offsets and a Gaussian process (see the module docstring).

    variant: a key of :data:`VARIANTS`; ``gp_features`` replaces its GP feature list. Feature
    rows given to :meth:`fit` and :meth:`predict_features` have the columns :attr:`features`
    (:data:`ALL_FEATURES`).
    """

    features = ALL_FEATURES

    def __init__(self, variant: str = DEFAULT_VARIANT, *, gp_features: Sequence[str] | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown surrogate variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        self.variant = variant
        self.gp_features = tuple(gp_features) if gp_features is not None else VARIANTS[variant]

    # -- fitting -------------------------------------------------------------------------------

    def _cols(self, names: Sequence[str]) -> list[int]:
        return [ALL_FEATURES.index(n) for n in names]

    def _family_index(self, x: np.ndarray) -> np.ndarray:
        """Index into :data:`FAMILIES` of each row (-1: none of them)."""
        onehot = x[:, self._cols(FAMILY_FEATURES)]
        return np.where(onehot.max(axis=1) > 0.5, onehot.argmax(axis=1), -1)

    def _fit_core(self, x: np.ndarray, y: np.ndarray) -> dict:
        t = _to_log_error(y)
        residual = t - self.curve_.predict(x[:, self._cols(REFERENCE_FEATURES)])
        level = float(residual.mean())
        spread = float(residual.std(ddof=1)) if len(y) > 1 else 0.05
        families = self._family_index(x)
        offsets = np.zeros(len(FAMILIES))
        counts = np.zeros(len(FAMILIES))
        for f in range(len(FAMILIES)):
            mine = families == f
            counts[f] = mine.sum()
            offsets[f] = (residual[mine] - level).sum() / (counts[f] + FAMILY_SHRINKAGE)
        rest = residual - level - np.where(families >= 0, offsets[np.maximum(families, 0)], 0.0)
        shape = x[:, self._cols(BEYOND_FEATURES)]
        state = {"level": level, "spread": spread, "offsets": offsets.tolist(), "counts": counts.tolist(),
                 "n": len(y), "x": x.tolist(), "top1": list(map(float, y)),
                 "shape_low": shape.min(axis=0).tolist(), "shape_high": shape.max(axis=0).tolist(),
                 "shape_sd": np.where(shape.std(axis=0) > 1e-9, shape.std(axis=0), 1.0).tolist()}
        if self.gp_features is not None:
            from sklearn.gaussian_process import GaussianProcessRegressor

            columns = x[:, self._cols(self.gp_features)]
            mean, scale = columns.mean(axis=0), columns.std(axis=0)
            scale = np.where(scale > 1e-9, scale, 1.0)
            z = (columns - mean) / scale
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # bounds reached: the bounds are the intended limits
                gp = GaussianProcessRegressor(_gp_kernel(z.shape[1]), n_restarts_optimizer=0,
                                              random_state=0).fit(z, rest)
            state |= {"gp_mean": mean.tolist(), "gp_scale": scale.tolist(), "gp_z": z.tolist(),
                      "gp_alpha": gp.alpha_.tolist(), "gp_theta": gp.kernel_.theta.tolist()}
        return state

    def _gp(self, state: dict):
        kernel = _gp_kernel(len(self.gp_features)).clone_with_theta(np.asarray(state["gp_theta"]))
        return kernel, np.asarray(state["gp_z"])

    def _gp_predict(self, state: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GP mean and variance of the residual (log error rate) at feature rows ``x``."""
        if self.gp_features is None:
            return np.zeros(len(x)), np.zeros(len(x))
        kernel, z_fit = self._gp(state)
        z = (x[:, self._cols(self.gp_features)] - np.asarray(state["gp_mean"])) / np.asarray(state["gp_scale"])
        cross = kernel(z, z_fit)
        mean = cross @ np.asarray(state["gp_alpha"])
        gram = kernel(z_fit)
        solved = np.linalg.solve(gram, cross.T)
        var = kernel.diag(z) - np.einsum("ij,ji->i", cross, solved)
        return mean, np.maximum(var, 1e-10)

    def _predict_core(self, state: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Capped mean top-1, its (uncalibrated) standard deviation in points, the index of the
        nearest fitted result and the ceiling (NaN: none)."""
        families = self._family_index(x)
        offsets, counts = np.asarray(state["offsets"]), np.asarray(state["counts"])
        offset = np.where(families >= 0, offsets[np.maximum(families, 0)], 0.0)
        known = np.where(families >= 0, counts[np.maximum(families, 0)], 0.0)
        gp_mean, gp_var = self._gp_predict(state, x)
        t = self.curve_.predict(x[:, self._cols(REFERENCE_FEATURES)]) + state["level"] + offset + gp_mean
        spread2 = state["spread"] ** 2
        var = gp_var + spread2 / state["n"] + spread2 * FAMILY_SHRINKAGE / (known + FAMILY_SHRINKAGE)
        if self.gp_features is None:
            var = var + spread2  # no GP: what the offsets leave unexplained stays unexplained
        var = var + self.curve_.residual_sd ** 2 * self._beyond(state, x)
        error = np.exp(t)
        distance = self._distance(state, x, np.asarray(state["x"]))
        is_result = distance.min(axis=1) <= SAME_ARCHITECTURE
        knob = np.where(is_result, 0.0, one_knob_spread())
        std = np.sqrt((error ** 2) * var + knob ** 2)
        mean, ceiling = self._capped(state, x, 100.0 - error)
        return mean, std, distance.argmin(axis=1), ceiling

    def _beyond(self, state: dict, x: np.ndarray) -> np.ndarray:
        """How far each row lies outside the evidence in the shape features (squared, in standard
        deviations of the evidence): there the published networks' spread around the curve is all
        the model can say, times that distance (a two-block network resembles no trained one)."""
        shape = x[:, self._cols(BEYOND_FEATURES)]
        outside = np.maximum(np.asarray(state["shape_low"]) - shape, 0) + np.maximum(shape - np.asarray(state["shape_high"]), 0)
        return ((outside / np.asarray(state["shape_sd"])) ** 2).sum(axis=1)

    def _capped(self, state: dict, x: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean held to the best published top-1 at no more MACs (reference set and fitted
        in-space results) plus the frontier margin. MACs only: a cap on #params as well held a
        published network (FMViT-T, 2.5 M params at 0.4 G MACs) 1.6 points below its top-1."""
        macs = np.exp(x[:, ALL_FEATURES.index("log_macs")])
        published, _ = best_published(macs / 1e6, None, clean_reference())
        fit_macs = np.exp(np.asarray(state["x"])[:, ALL_FEATURES.index("log_macs")])
        smaller = fit_macs[None, :] <= macs[:, None] * (1 + 1e-9)
        in_space = np.where(smaller, np.asarray(state["top1"])[None, :], -np.inf).max(axis=1)
        ceiling = np.fmax(published + frontier_margin(), np.where(np.isfinite(in_space), in_space, np.nan))
        return np.where(np.isnan(ceiling), mean, np.fmin(mean, ceiling)), ceiling

    def _distance(self, state: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared distances in the GP's metric (RBF length scales), else in standardised size."""
        if self.gp_features is not None:
            kernel, _ = self._gp(state)
            length = np.asarray(kernel.k1.k1.k2.length_scale)
            cols, mean, scale = self._cols(self.gp_features), np.asarray(state["gp_mean"]), np.asarray(state["gp_scale"])
        else:
            cols = self._cols(SIZE_FEATURES)
            fitted = np.asarray(state["x"])[:, cols]
            mean, scale, length = fitted.mean(axis=0), np.where(fitted.std(axis=0) > 1e-9, fitted.std(axis=0), 1.0), 1.0
        za = (np.atleast_2d(a)[:, cols] - mean) / scale / length
        zb = (np.atleast_2d(b)[:, cols] - mean) / scale / length
        return np.maximum((za * za).sum(1)[:, None] + (zb * zb).sum(1)[None, :] - 2 * za @ zb.T, 0.0)

    def fit(self, x: np.ndarray, y: np.ndarray, descriptor_sets: Sequence[set[str]] = (),
            labels: Sequence[str] = (), groups: Sequence[str] = ()) -> AccuracySurrogate:
        """Fit on feature rows ``x`` (columns :attr:`features`) and top-1 ``y``; ``labels`` name
        the results (for "nearest published model"), ``groups`` their families (for the
        leave-one-family-out figures)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(y) < 3:
            raise ValueError(f"the surrogate needs at least 3 results to fit, got {len(y)}")
        self.curve_ = reference_curve()
        self.state_ = self._fit_core(x, y)
        self.x_, self.targets_, self.n_ = x, y, len(y)
        self.labels_ = list(labels) or [f"result {i}" for i in range(len(y))]
        self.groups_ = list(groups) or ["all"] * len(y)
        self.range_ = np.stack([x.min(axis=0), x.max(axis=0)])
        self.descriptors_ = sorted(set().union(*descriptor_sets)) if descriptor_sets else []
        self.calibration_ = 1.0
        loo_mean, loo_std = self._held_out([[i] for i in range(len(y))])
        self.loo_predictions_, self.loo_std_raw_ = loo_mean, loo_std
        z_scores = np.abs(y - loo_mean) / loo_std
        target = stats.norm.ppf(0.5 + INTERVAL / 2)
        self.calibration_ = float(max(np.quantile(z_scores, INTERVAL) / target, 1.0))
        # coverage with the calibration scale itself fitted without the held-out result
        covered = [z_scores[i] <= target * max(np.quantile(np.delete(z_scores, i), INTERVAL) / target, 1.0)
                   for i in range(len(y))]
        self.loo_coverage_ = float(np.mean(covered))
        return self

    def _held_out(self, folds: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Predictions (mean, uncalibrated std) of each fold's results by a model fitted without
        them; NaN for results in no fold."""
        mean, std = np.full(self.n_, np.nan), np.full(self.n_, np.nan)
        for fold in folds:
            keep = np.setdiff1d(np.arange(self.n_), fold)
            state = self._fit_core(self.x_[keep], self.targets_[keep])
            m, s, _, _ = self._predict_core(state, self.x_[list(fold)])
            mean[list(fold)], std[list(fold)] = m, s
        return mean, std

    # -- prediction ----------------------------------------------------------------------------

    def predict_features(self, x: np.ndarray, descriptor_sets: Sequence[set[str]] | None = None) -> SurrogatePrediction:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        mean, std, nearest, ceiling = self._predict_core(self.state_, x)
        low, high = self.range_
        margin = RANGE_MARGIN * (high - low)
        known = set(self.descriptors_)
        reasons = []
        for i, row in enumerate(x):
            why = [f"{name} {value:.3g} outside fitted range [{lo:.3g}, {hi:.3g}]"
                   for name, value, lo, hi, m in zip(ALL_FEATURES, row, low, high, margin)
                   if name not in FAMILY_FEATURES and (value < lo - m or value > hi + m)]
            if descriptor_sets is not None and known:
                why += [f"{d} not in fitted data" for d in sorted(descriptor_sets[i] - known)]
            reasons.append(tuple(why))
        return SurrogatePrediction(mean, std * self.calibration_, np.array([bool(r) for r in reasons]),
                                   tuple(reasons), nearest, ceiling)

    def distance_features(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared distances between feature rows in the GP's metric (length scales applied)."""
        return self._distance(self.state_, a, b)

    def predict(self, configs: Sequence[ArchConfig]) -> SurrogatePrediction:
        return self.predict_features(feature_matrix(configs), [descriptors(c) for c in configs])

    # -- evaluation and serialisation ----------------------------------------------------------

    def loo_metrics(self) -> dict[str, float]:
        """Leave-one-out errors (top-1 points), rank agreement and interval coverage."""
        return _metrics(self.targets_, self.loo_predictions_, self.loo_std_raw_ * self.calibration_) | {
            "coverage_90": self.loo_coverage_, "calibration": self.calibration_, "variant": self.variant}

    def loo_distribution(self) -> dict[str, np.ndarray]:
        """Leave-one-out predictions of the fitted results: ``mean`` and the calibrated ~90 %
        interval ends ``low`` and ``high``."""
        half = stats.norm.ppf(OPTIMISTIC_QUANTILE) * self.loo_std_raw_ * self.calibration_
        return {"mean": self.loo_predictions_, "low": self.loo_predictions_ - half,
                "high": self.loo_predictions_ + half}

    def leave_one_family_out(self) -> dict[str, dict[str, float]]:
        """Per family: fitted without any result of the family, scored on all of them."""
        groups = np.asarray(self.groups_)
        out = {}
        for family in sorted(set(self.groups_)):
            fold = np.flatnonzero(groups == family)
            if len(fold) == len(groups) or len(groups) - len(fold) < 3:
                continue
            mean, std = self._held_out([fold])
            out[family] = _metrics(self.targets_[fold], mean[fold], std[fold] * self.calibration_)
        return out

    def leave_smallest_out(self, max_k: int = 5) -> dict[int, dict]:
        """Downward extrapolation: for k = 1..max_k, fitted without the k results of fewest MACs,
        scored on them (``results`` names each with its held-out mean and interval)."""
        order = np.argsort(self.x_[:, ALL_FEATURES.index("log_macs")], kind="stable")
        out = {}
        for k in range(1, min(max_k, self.n_ - 3) + 1):
            fold = order[:k]
            mean, std = self._held_out([fold])
            half = stats.norm.ppf(OPTIMISTIC_QUANTILE) * std[fold] * self.calibration_
            out[k] = _metrics(self.targets_[fold], mean[fold], std[fold] * self.calibration_) | {"results": [
                {"name": self.labels_[i], "top1": float(self.targets_[i]), "mean": float(mean[i]),
                 "interval_90": [float(mean[i] - h), float(mean[i] + h)]} for i, h in zip(fold, half)]}
        return out

    def to_json(self) -> str:
        return json.dumps({
            "format": SURROGATE_FORMAT, "variant": self.variant,
            "gp_features": None if self.gp_features is None else list(self.gp_features),
            "reference_curve": self.curve_.to_dict(), "state": self.state_,
            "x": self.x_.tolist(), "targets": self.targets_.tolist(), "labels": self.labels_, "groups": self.groups_,
            "range": self.range_.tolist(), "descriptors": self.descriptors_,
            "loo_predictions": self.loo_predictions_.tolist(), "loo_std_raw": self.loo_std_raw_.tolist(),
            "calibration": self.calibration_, "loo_coverage": self.loo_coverage_,
            "selection": getattr(self, "selection_", {}),
        })

    @classmethod
    def from_json(cls, text: str) -> AccuracySurrogate:
        data = json.loads(text)
        if data.get("format") != SURROGATE_FORMAT:
            raise ValueError(f"not an accuracy surrogate: format {data.get('format')!r}, expected {SURROGATE_FORMAT!r}")
        model = cls(data["variant"], gp_features=data["gp_features"])
        model.curve_ = ReferenceCurve.from_dict(data["reference_curve"])
        model.state_ = data["state"]
        model.x_, model.targets_ = np.asarray(data["x"]), np.asarray(data["targets"])
        model.n_ = len(model.targets_)
        model.labels_, model.groups_ = data["labels"], data["groups"]
        model.range_ = np.asarray(data["range"])
        model.descriptors_ = list(data["descriptors"])
        model.loo_predictions_, model.loo_std_raw_ = np.asarray(data["loo_predictions"]), np.asarray(data["loo_std_raw"])
        model.calibration_, model.loo_coverage_ = data["calibration"], data["loo_coverage"]
        model.selection_ = data.get("selection", {})
        return model


def _metrics(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    errors = mean - y
    tau = stats.kendalltau(mean, y).statistic if len(y) > 2 else float("nan")
    half = stats.norm.ppf(0.5 + INTERVAL / 2) * std
    return {"n": int(len(y)), "mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2))),
            "max_abs_error": float(np.max(np.abs(errors))), "kendall_tau": float(tau),
            "bias": float(np.mean(errors)), "interval_covers": float(np.mean(np.abs(errors) <= half))}


def fit_surrogate(configs: Sequence[ArchConfig], top1: Sequence[float], variant: str | None = None,
                  labels: Sequence[str] = ()) -> AccuracySurrogate:
    """Fit on configs and their ImageNet top-1 (%). ``variant=None`` fits every variant of
    :data:`VARIANTS` and keeps the one with the smallest leave-one-out mean absolute error
    (``selection_`` of the result records the leave-one-out figures of all of them)."""
    key = json.dumps([[c.space, c.to_dict()] for c in configs], sort_keys=True)
    digest = hashlib.sha256(f"{SURROGATE_VERSION}|{key}|{list(map(float, top1))}|{list(labels)}|{variant}".encode()).hexdigest()
    return AccuracySurrogate.from_json(_fit_cached(digest, tuple(configs), tuple(map(float, top1)),
                                                   tuple(labels), variant))


@lru_cache(maxsize=16)
def _fit_cached(digest: str, configs: tuple[ArchConfig, ...], top1: tuple[float, ...], labels: tuple[str, ...],
                variant: str | None) -> str:
    """The fitted surrogate as JSON, memoised by the evidence's digest: a search scores batch
    after batch against the same results and should not refit (seconds) each time."""
    y = np.asarray(top1, dtype=np.float64)
    x = feature_matrix(configs)
    sets = [descriptors(c) for c in configs]
    groups = [_family(c) for c in configs]
    fitted = {name: AccuracySurrogate(name).fit(x, y, sets, labels, groups) for name in ([variant] if variant else VARIANTS)}
    best = min(fitted.values(), key=lambda m: m.loo_metrics()["mae"])
    best.selection_ = {name: m.loo_metrics() for name, m in fitted.items()}
    return best.to_json()
