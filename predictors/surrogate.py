"""A surrogate of ImageNet top-1 (%) that sees an architecture's shape and says how sure it is.

Few results exist (tens, not thousands), and they sit in a few corners of the spaces: the
published families at their published sizes. So the model is built to be honest away from them:

- **features** describe shape, not only size (:data:`FEATURES`): log #params and MACs, input
  resolution, number of blocks and how they are spread over the stages, the widest feature map,
  the share of work in global attention and in depthwise convolutions, and the family;
- a **prior from size scaling**: Bayesian linear regression of top-1 on log #params, log MACs,
  log resolution and log blocks (width, depth and resolution, as in compound scaling), whose
  uncertainty grows without bound along those directions;
- a **Gaussian process** on what the prior misses, with one length scale per feature (fitted by
  maximum marginal likelihood, bounded so that no feature can be declared irrelevant for good):
  its uncertainty grows with the distance from the results it has seen, so a network unlike any
  trained one (two blocks instead of fifteen) gets a wide interval and a low pessimistic bound;
- **calibration by leave-one-out**: every result is predicted by a model fitted without it (length
  scales refitted too); the predictive standard deviation is scaled so that ~90 % intervals hold
  on those held-out results, and the coverage is reported with the scale itself left out as well.

Which variant serves (shape GP, size-only GP, or the plain size prior) is chosen by the same
leave-one-out error. The fitted state is plain JSON (``to_json`` / ``from_json``), never a pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import linalg, optimize, stats

from search_spaces.base import ArchConfig
from search_spaces.optable import OpTable

SURROGATE_FORMAT = "explorer-accuracy-surrogate/2"
SURROGATE_VERSION = "2"
RANGE_MARGIN = 0.1
FAMILIES = ("lowformer", "efficientvit", "fmvit", "mcga")
#: two-sided coverage the reported interval aims at, and the quantiles of its ends
INTERVAL = 0.90
PESSIMISTIC_QUANTILE = (1 - INTERVAL) / 2
OPTIMISTIC_QUANTILE = 1 - PESSIMISTIC_QUANTILE
#: bounds of the GP's hyperparameters: length scales in standard deviations of the evidence,
#: amplitude, slope and noise in log error rate (0.05 is about 1 point at 80 % top-1)
LENGTH_SCALE_BOUNDS = (0.3, 4.0)
AMPLITUDE_BOUNDS = (0.005, 0.3)
LINEAR_BOUNDS = (0.002, 1.0)
NOISE_BOUNDS = (0.001, 0.1)


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
#: the scaling prior: width (through #params and MACs), depth and resolution, as in compound scaling
SIZE_FEATURES = ("log_params", "log_macs", "log_resolution", "log_blocks")
SHAPE_FEATURES = tuple(FEATURES)
#: the candidates compared by leave-one-out: name -> (prior features, GP features or None)
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "gp-shape": (SIZE_FEATURES, SHAPE_FEATURES),
    "gp-size": (SIZE_FEATURES, SIZE_FEATURES),
    "size-prior": (SIZE_FEATURES, None),
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


def feature_matrix(configs: Sequence[ArchConfig], features: Sequence[str] = SHAPE_FEATURES) -> np.ndarray:
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
    """Predicted ImageNet top-1 (%) with its calibrated standard deviation, extrapolation flags
    and the nearest result it rests on (index into the fitted results)."""

    mean: np.ndarray
    std: np.ndarray
    flagged: np.ndarray  # bool: outside what the surrogate was fitted on
    reasons: tuple[tuple[str, ...], ...]
    nearest: np.ndarray  # int: index of the nearest fitted result (in the GP's metric)

    def quantile(self, q: float) -> np.ndarray:
        """The ``q`` quantile of the predictive distribution (0.05: pessimistic bound)."""
        return self.mean + stats.norm.ppf(q) * self.std

    @property
    def low(self) -> np.ndarray:
        return self.quantile(PESSIMISTIC_QUANTILE)

    @property
    def high(self) -> np.ndarray:
        return self.quantile(OPTIMISTIC_QUANTILE)


# -- the Gaussian process -----------------------------------------------------------------------
#
# One GP whose kernel is the sum of a linear kernel on the prior's features (Bayesian linear
# regression: the size-scaling prior, with an uncertainty that grows without bound along them)
# and, for the GP variants, an RBF kernel with one length scale per shape feature. Inputs are
# standardised over the evidence; the mean is the evidence's mean top-1.


def _sq_dist(a: np.ndarray, b: np.ndarray, length: np.ndarray) -> np.ndarray:
    a, b = a / length, b / length
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


@dataclass(frozen=True)
class _Kernel:
    prior: list[int]  # columns of the linear part
    rbf: list[int] | None  # columns of the RBF part (None: linear only)

    def bounds(self) -> list[tuple[float, float]]:
        rbf = [tuple(np.log(LENGTH_SCALE_BOUNDS))] * len(self.rbf) + [tuple(np.log(AMPLITUDE_BOUNDS))] if self.rbf else []
        return rbf + [tuple(np.log(LINEAR_BOUNDS)), tuple(np.log(NOISE_BOUNDS))]

    def unpack(self, theta: np.ndarray) -> dict:
        out = {"linear": float(np.exp(theta[-2])), "noise": float(np.exp(theta[-1]))}
        if self.rbf:
            out.update(length=np.exp(theta[: len(self.rbf)]), amp=float(np.exp(theta[len(self.rbf)])))
        return out

    def cross(self, h: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = h["linear"] ** 2 * (a[:, self.prior] @ b[:, self.prior].T)
        if self.rbf:
            k = k + h["amp"] ** 2 * np.exp(-0.5 * _sq_dist(a[:, self.rbf], b[:, self.rbf], h["length"]))
        return k

    def diag(self, h: dict, a: np.ndarray) -> np.ndarray:
        d = h["linear"] ** 2 * (a[:, self.prior] ** 2).sum(1)
        return d + (h["amp"] ** 2 if self.rbf else 0.0)

    def distance(self, h: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared distance in the kernel's metric (RBF length scales, else the prior's columns)."""
        if self.rbf:
            return _sq_dist(a[:, self.rbf], b[:, self.rbf], h["length"])
        return _sq_dist(a[:, self.prior], b[:, self.prior], np.ones(len(self.prior)))


def _to_log_error(top1: np.ndarray) -> np.ndarray:
    """Top-1 % as the log of the error rate, where scaling laws are close to linear."""
    return np.log(np.clip(100.0 - top1, 1e-3, None))


def _neg_log_marginal(theta: np.ndarray, kernel: _Kernel, z: np.ndarray, r: np.ndarray) -> float:
    h = kernel.unpack(theta)
    k = kernel.cross(h, z, z) + (h["noise"] ** 2 + 1e-8) * np.eye(len(r))
    try:
        chol = linalg.cho_factor(k, lower=True)
    except linalg.LinAlgError:
        return 1e10
    alpha = linalg.cho_solve(chol, r)
    return float(0.5 * r @ alpha + np.log(np.diag(chol[0])).sum() + 0.5 * len(r) * math.log(2 * math.pi))


def _fit_hyperparameters(kernel: _Kernel, z: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Log hyperparameters maximising the marginal likelihood; deterministic restarts."""
    bounds = kernel.bounds()
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    spread = max(float(np.std(r)), 0.01)
    best = None
    for level in ((0.7, 1.5, 3.0) if kernel.rbf else (1.0,)):
        rbf = [math.log(level)] * len(kernel.rbf) + [math.log(0.5 * spread)] if kernel.rbf else []
        start = np.clip(np.array(rbf + [math.log(0.5 * spread), math.log(0.2 * spread)]), lo, hi)
        result = optimize.minimize(_neg_log_marginal, start, args=(kernel, z, r), method="L-BFGS-B",
                                   bounds=bounds, options={"maxiter": 200})
        if best is None or result.fun < best.fun:
            best = result
    return best.x


class AccuracySurrogate:
    """Size-scaling prior plus a Gaussian process on shape features (see the module docstring).

    variant: a key of :data:`VARIANTS`; ``prior_features`` / ``gp_features`` replace its
    feature lists (columns of the ``x`` given to :meth:`fit`, in :attr:`features` order).
    """

    def __init__(self, variant: str = DEFAULT_VARIANT, *, prior_features: Sequence[str] | None = None,
                 gp_features: Sequence[str] | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown surrogate variant {variant!r}; allowed: {', '.join(VARIANTS)}")
        self.variant = variant
        prior, gp = VARIANTS[variant]
        self.prior_features = tuple(prior_features or prior)
        self.gp_features = tuple(gp_features) if gp_features is not None else gp
        self.features = tuple(dict.fromkeys(self.prior_features + (self.gp_features or ())))

    # -- fitting -------------------------------------------------------------------------------

    def _columns(self, names: Sequence[str]) -> list[int]:
        return [self.features.index(n) for n in names]

    def _kernel(self) -> _Kernel:
        return _Kernel(self._columns(self.prior_features),
                       self._columns(self.gp_features) if self.gp_features is not None else None)

    def _fit_core(self, x: np.ndarray, y: np.ndarray) -> dict:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        z = (x - mean) / scale
        t = _to_log_error(y)
        intercept = float(t.mean())
        kernel = self._kernel()
        h = kernel.unpack(_fit_hyperparameters(kernel, z, t - intercept))
        k = kernel.cross(h, z, z) + (h["noise"] ** 2 + 1e-8) * np.eye(len(y))
        chol = np.linalg.cholesky(k)
        return {"mean": mean, "scale": scale, "intercept": intercept, "z": z, "chol": chol,
                "alpha": linalg.cho_solve((chol, True), t - intercept), **h}

    def _predict_core(self, state: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = (x - state["mean"]) / state["scale"]
        kernel = self._kernel()
        cross = kernel.cross(state, z, state["z"])
        mean = state["intercept"] + cross @ state["alpha"]
        v = linalg.solve_triangular(state["chol"], cross.T, lower=True)
        var = kernel.diag(state, z) + state["noise"] ** 2 - (v * v).sum(axis=0)
        nearest = np.argmin(kernel.distance(state, z, state["z"]), axis=1)
        error = np.exp(mean)
        # back to top-1 points: the median, and the delta-method standard deviation
        return 100.0 - error, error * np.sqrt(np.maximum(var, 1e-8)), nearest

    def fit(self, x: np.ndarray, y: np.ndarray, descriptor_sets: Sequence[set[str]] = (),
            labels: Sequence[str] = (), groups: Sequence[str] = ()) -> AccuracySurrogate:
        """Fit on feature rows ``x`` (columns :attr:`features`) and top-1 ``y``; ``labels`` name
        the results (for "nearest published model"), ``groups`` their families (for the
        leave-one-family-out figures)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(y) < 3:
            raise ValueError(f"the surrogate needs at least 3 results to fit, got {len(y)}")
        self.state_ = self._fit_core(x, y)
        self.x_, self.targets_, self.n_ = x, y, len(y)
        self.labels_ = list(labels) or [f"result {i}" for i in range(len(y))]
        self.groups_ = list(groups) or ["all"] * len(y)
        self.range_ = np.stack([x.min(axis=0), x.max(axis=0)])
        self.descriptors_ = sorted(set().union(*descriptor_sets)) if descriptor_sets else []
        loo_mean, loo_std = self._held_out(x, y, [[i] for i in range(len(y))])
        self.loo_predictions_, self.loo_std_raw_ = loo_mean, loo_std
        z_scores = np.abs(y - loo_mean) / loo_std
        target = stats.norm.ppf(0.5 + INTERVAL / 2)
        self.calibration_ = float(max(np.quantile(z_scores, INTERVAL) / target, 0.5))
        # coverage with the calibration scale itself fitted without the held-out result
        covered = [z_scores[i] <= target * max(np.quantile(np.delete(z_scores, i), INTERVAL) / target, 0.5)
                   for i in range(len(y))]
        self.loo_coverage_ = float(np.mean(covered))
        return self

    def _held_out(self, x: np.ndarray, y: np.ndarray, folds: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        mean, std = np.empty(len(y)), np.empty(len(y))
        for fold in folds:
            keep = np.setdiff1d(np.arange(len(y)), fold)
            state = self._fit_core(x[keep], y[keep])
            m, s, _ = self._predict_core(state, x[list(fold)])
            mean[list(fold)], std[list(fold)] = m, s
        return mean, std

    # -- prediction ----------------------------------------------------------------------------

    def predict_features(self, x: np.ndarray, descriptor_sets: Sequence[set[str]] | None = None) -> SurrogatePrediction:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        mean, std, nearest = self._predict_core(self.state_, x)
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
        return SurrogatePrediction(mean, std * self.calibration_, np.array([bool(r) for r in reasons]),
                                   tuple(reasons), nearest)

    def distance_features(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared distances between feature rows in the GP's metric (length scales applied)."""
        za = (np.atleast_2d(a) - self.state_["mean"]) / self.state_["scale"]
        zb = (np.atleast_2d(b) - self.state_["mean"]) / self.state_["scale"]
        return self._kernel().distance(self.state_, za, zb)

    def predict(self, configs: Sequence[ArchConfig]) -> SurrogatePrediction:
        return self.predict_features(feature_matrix(configs, self.features), [descriptors(c) for c in configs])

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
            mean, std = self._held_out(self.x_, self.targets_, [fold])
            out[family] = _metrics(self.targets_[fold], mean[fold], std[fold] * self.calibration_)
        return out

    def to_json(self) -> str:
        state = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.state_.items()}
        return json.dumps({
            "format": SURROGATE_FORMAT, "variant": self.variant, "features": list(self.features),
            "prior_features": list(self.prior_features),
            "gp_features": None if self.gp_features is None else list(self.gp_features), "state": state,
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
        model = cls(data["variant"], prior_features=data["prior_features"], gp_features=data["gp_features"])
        model.state_ = {k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
                        for k, v in data["state"].items()}
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
    digest = hashlib.sha256(f"{key}|{list(map(float, top1))}|{list(labels)}|{variant}".encode()).hexdigest()
    return AccuracySurrogate.from_json(_fit_cached(digest, tuple(configs), tuple(map(float, top1)),
                                                   tuple(labels), variant))


@lru_cache(maxsize=16)
def _fit_cached(digest: str, configs: tuple[ArchConfig, ...], top1: tuple[float, ...], labels: tuple[str, ...],
                variant: str | None) -> str:
    """The fitted surrogate as JSON, memoised by the evidence's digest: a search scores batch
    after batch against the same results and should not refit (seconds) each time."""
    y = np.asarray(top1, dtype=np.float64)
    x = feature_matrix(configs, SHAPE_FEATURES)
    sets = [descriptors(c) for c in configs]
    groups = [_family(c) for c in configs]
    candidates = [variant] if variant else list(VARIANTS)
    fitted = {}
    for name in candidates:
        model = AccuracySurrogate(name)
        fitted[name] = model.fit(x[:, [SHAPE_FEATURES.index(f) for f in model.features]], y, sets, labels, groups)
    best = min(fitted.values(), key=lambda m: m.loo_metrics()["mae"])
    best.selection_ = {name: m.loo_metrics() for name, m in fitted.items()}
    return best.to_json()
