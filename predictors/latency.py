"""Latency regressors with calibrated intervals, and the predictor object the search calls.

A :class:`LatencyRegressor` is a bootstrap ensemble on log-latency. Its members are XGBoost on
top of a fitted :class:`~predictors.fewshot.CostModel` (the cost model extrapolates sensibly to
architectures larger than any seen, the trees learn what it misses), ridge on log features, the
mean of those two, or a random forest. The interval combines the spread of the members (what the data does not pin
down) and the noise left in out-of-bag residuals, scaled so that out-of-bag coverage matches
``coverage``; a group of architectures (a backbone family) whose own out-of-bag residuals run
wider gets a wider scale, never a narrower one. Everything serialises to plain JSON (XGBoost
boosters as their JSON model).

A prediction imports neither scikit-learn nor scipy's statistics (seconds of imports for a
command that predicts in a fraction of one): :class:`LatencyRegressor` has scikit-learn's
``fit`` / ``predict`` / ``get_params`` surface without its base classes, fitting imports what it
uses, and XGBoost loads without the scikit-learn wrappers this package does not use.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from explorer.architectures import family_of
from explorer.errors import UserError
from predictors.features import FEATURE_VERSION, OpFeaturizer
from predictors.fewshot import CostModel, FewShotCalibrator, MacsCalibrator
from predictors.transfer import TransferCalibrator
from search_spaces.base import ArchConfig

KINDS = ("xgboost", "ridge", "rf", "xgboost-ridge", "fewshot", "transfer", "macs")
#: the kind a richly measured device gets unless told otherwise
DEFAULT_KIND = "xgboost-ridge"
#: kinds fitted on a handful of points and scored leave-one-out (``macs``: latency = a * MACs ** b,
#: served where the others did worse)
FEW_POINT_KINDS = ("fewshot", "transfer", "macs")
#: an interval whose high end is more than this many times its low end is too wide to decide a
#: latency budget on: it reaches past sqrt(3) = 1.73 times the median on either side, so a model
#: predicted at the budget may take half of it or nearly twice as long
USEFUL_INTERVAL_RATIO = 3.0
#: distinct configs from which a prediction runs with one BLAS thread (see ``LatencyPredictor.predict``)
_BATCH_ROWS = 64
#: out-of-bag points a group needs before its residuals can widen its intervals
MIN_GROUP_POINTS = 30


class NoPredictorError(UserError, LookupError):
    """No stored predictor for a device; the message says how to make one."""

    def __init__(self, device: str, detail: str = ""):
        self.device = device
        super().__init__(
            f"no latency predictor stored for device '{device}'{detail}; "
            f"make one with `explorer predictor train --device {device}`"
        )


class TrainingDataError(UserError, ValueError):
    """Not enough usable measurements to train, evaluate or guide a predictor."""


def _log_features(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(X, 0.0))


#: what ``import xgboost`` imports for its scikit-learn-style wrappers (and with them scikit-learn
#: and scipy's statistics and special functions, 1-2 s): this package uses the booster API only
_XGBOOST_EXTRAS = ("sklearn", "xgboost.sklearn")


def _xgboost():
    """The ``xgboost`` module, imported without :data:`_XGBOOST_EXTRAS`: its optional imports of
    them fail, and its module that noted their absence is dropped, so that ``from xgboost.sklearn
    import XGBRegressor`` still works later in the process (``xgboost.XGBRegressor`` does not)."""
    if "xgboost" not in sys.modules:
        blocked = [name for name in _XGBOOST_EXTRAS if name not in sys.modules]
        sys.modules.update(dict.fromkeys(blocked))
        try:
            import xgboost.data  # what predicting imports later, while the extras are blocked
        finally:
            for name in blocked:
                del sys.modules[name]
        if blocked:
            sys.modules.pop("xgboost.compat", None)
    import xgboost

    return xgboost


class _RidgeMember:
    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float):
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        # the standardisation folded into one weight vector: no standardised copy of a batch
        self._weights = coef / scale
        self._offset = intercept - float(mean @ self._weights)

    @classmethod
    def fit(cls, X: np.ndarray, log_y: np.ndarray, weight: np.ndarray, est: LatencyRegressor,
            seed: int) -> _RidgeMember:
        from sklearn.linear_model import Ridge

        Z = _log_features(X)
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        scale[scale == 0] = 1.0
        ridge = Ridge(alpha=est.alpha).fit((Z - mean) / scale, log_y, sample_weight=weight)
        return cls(mean, scale, ridge.coef_, float(ridge.intercept_))

    def predict(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return Z @ self._weights + self._offset

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _RidgeMember:
        return cls(*(np.asarray(d[k], dtype=float) for k in ("mean", "scale", "coef")), float(d["intercept"]))


class _BoostedMember:
    """log latency = log(cost model) + XGBoost correction on log features."""

    def __init__(self, cost: CostModel, booster: Any):
        self.cost, self.booster = cost, booster

    @classmethod
    def fit(cls, X: np.ndarray, log_y: np.ndarray, weight: np.ndarray, est: LatencyRegressor,
            seed: int) -> _BoostedMember:
        xgb = _xgboost()
        cost = CostModel(CostModel().fit(X, np.exp(log_y), sample_weight=weight).to_dict())
        residual = log_y - np.log(cost.predict(X))
        params = {"max_depth": est.max_depth, "eta": est.learning_rate, "subsample": 0.8,
                  "colsample_bytree": 0.8, "min_child_weight": 2, "lambda": 1.0, "seed": seed,
                  "nthread": 1, "objective": "reg:squarederror"}
        booster = xgb.train(params, xgb.DMatrix(_log_features(X), label=residual, weight=weight),
                            num_boost_round=est.n_estimators)
        return cls(cost, booster)

    def predict(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return np.log(self.cost.predict(X)) + self.booster.inplace_predict(Z)

    def to_dict(self) -> dict[str, Any]:
        return {"cost": self.cost.to_dict(), "booster": self.booster.save_raw("json").decode()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _BoostedMember:
        booster = _xgboost().Booster(params={"nthread": 1})
        booster.load_model(bytearray(d["booster"].encode()))
        return cls(CostModel(d["cost"]), booster)


class _ForestMember:
    """A random forest kept as plain arrays of its trees (so it stores as JSON)."""

    def __init__(self, trees: list[dict[str, np.ndarray]]):
        self.trees = trees

    @classmethod
    def fit(cls, X: np.ndarray, log_y: np.ndarray, weight: np.ndarray, est: LatencyRegressor,
            seed: int) -> _ForestMember:
        from sklearn.ensemble import RandomForestRegressor

        forest = RandomForestRegressor(n_estimators=max(est.n_estimators // 3, 10), min_samples_leaf=2,
                                       max_features=0.5, random_state=seed, n_jobs=1)
        forest.fit(_log_features(X), log_y, sample_weight=weight)
        return cls([{"left": t.tree_.children_left, "right": t.tree_.children_right,
                     "feature": t.tree_.feature, "threshold": t.tree_.threshold,
                     "value": t.tree_.value[:, 0, 0]} for t in forest.estimators_])

    def predict(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        rows = np.arange(len(Z))
        total = np.zeros(len(Z))
        for t in self.trees:
            node = np.zeros(len(Z), dtype=np.int64)
            while True:
                inner = t["left"][node] >= 0
                if not inner.any():
                    break
                n, r = node[inner], rows[inner]
                go_left = Z[r, t["feature"][n]] <= t["threshold"][n]
                node[inner] = np.where(go_left, t["left"][n], t["right"][n])
            total += t["value"][node]
        return total / len(self.trees)

    def to_dict(self) -> dict[str, Any]:
        return {"trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _ForestMember:
        dtypes = {"left": np.int64, "right": np.int64, "feature": np.int64, "threshold": float, "value": float}
        return cls([{k: np.asarray(t[k], dtype=dtypes[k]) for k in dtypes} for t in d["trees"]])


class _BlendedMember:
    """The mean log latency of a boosted and a ridge member fitted on the same bootstrap sample.

    The trees learn interactions the ridge cannot; the ridge on log features extrapolates
    smoothly where the trees are flat (families or sizes thin in the training set). Their errors
    are far from perfectly correlated, so the mean beats either alone on held-out architectures
    (``benchmarks/local_predictor.py --kinds xgboost,ridge,xgboost-ridge``)."""

    def __init__(self, boosted: _BoostedMember, ridge: _RidgeMember):
        self.boosted, self.ridge = boosted, ridge

    @classmethod
    def fit(cls, X: np.ndarray, log_y: np.ndarray, weight: np.ndarray, est: LatencyRegressor,
            seed: int) -> _BlendedMember:
        return cls(_BoostedMember.fit(X, log_y, weight, est, seed), _RidgeMember.fit(X, log_y, weight, est, seed))

    def predict(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        return 0.5 * (self.boosted.predict(X, Z) + self.ridge.predict(X, Z))

    def to_dict(self) -> dict[str, Any]:
        return {"boosted": self.boosted.to_dict(), "ridge": self.ridge.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _BlendedMember:
        return cls(_BoostedMember.from_dict(d["boosted"]), _RidgeMember.from_dict(d["ridge"]))


_MEMBERS = {"xgboost": _BoostedMember, "ridge": _RidgeMember, "rf": _ForestMember, "xgboost-ridge": _BlendedMember}


class LatencyRegressor:
    """Bootstrap ensemble on log-latency with calibrated intervals (see module docstring).

    kind: ``xgboost`` (cost model + boosted correction), ``ridge`` (on log features), ``rf``, or
    ``xgboost-ridge`` (the mean of the first two, member by member).
    n_members: bootstrap members; their spread is the model part of the uncertainty.
    coverage: target probability that the measured latency falls inside (low, high).
    n_estimators, max_depth, learning_rate: boosting rounds (trees / 3 for ``rf``), tree depth, eta.
        80 rounds at 0.2 score as 300 at 0.05 on held-out architectures (3.63 % MAPE either way,
        benchmarks/local_predictor.py) and predict nearly four times faster; the trees are most
        of a batched prediction's model time.
    alpha: ridge penalty.
    """

    def __init__(self, kind: str = "xgboost", n_members: int = 5, coverage: float = 0.9,
                 n_estimators: int = 80, max_depth: int = 4, learning_rate: float = 0.2,
                 alpha: float = 1.0, random_state: int = 0):
        self.kind = kind
        self.n_members = n_members
        self.coverage = coverage
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's convention; stored with the model)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None,
            groups: Sequence[str] | None = None) -> LatencyRegressor:
        """``groups``: a label per row (:func:`interval_groups`) for group-wise interval scales."""
        if self.kind not in _MEMBERS:
            raise ValueError(f"unknown kind {self.kind!r}; allowed: {', '.join(_MEMBERS)}")
        if self.n_members < 2:
            raise ValueError(f"n_members must be >= 2 (the interval needs a spread); got {self.n_members}")
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if np.any(~np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("latencies must be positive and finite")
        log_y = np.log(y)
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        rng = np.random.default_rng(self.random_state)
        n = len(y)
        member_cls = _MEMBERS[self.kind]
        self.members_ = []
        oob = np.full((self.n_members, n), np.nan)
        for m in range(self.n_members):
            idx = rng.integers(0, n, n)
            member = member_cls.fit(X[idx], log_y[idx], weight[idx], self, int(rng.integers(2**31)))
            self.members_.append(member)
            out = np.setdiff1d(np.arange(n), idx)
            oob[m, out] = member.predict(X[out], _log_features(X[out]))
        self._calibrate(log_y, oob, None if groups is None else np.asarray(groups, dtype=object))
        self.n_features_in_ = X.shape[1]
        return self

    def _calibrate(self, log_y: np.ndarray, oob: np.ndarray, groups: np.ndarray | None) -> None:
        """Noise level and interval scales from out-of-bag predictions.

        The pooled scale under-covers a group whose residuals run wider than the rest (MCGA and
        EfficientViT on the development host: 86.2 and 87.3 % of held-out points inside nominal
        90 % intervals, benchmarks/local_predictor.py). Such a group gets the quantile of its
        own points; a group never gets a narrower scale than the pooled one, because a few
        dozen out-of-bag points of random architectures understate the errors on a family's
        presets (narrowing took FMViT's coverage to 84 % in an exploratory run).
        """
        seen = np.sum(~np.isnan(oob), axis=0)
        usable = seen >= 2
        mean = np.nanmean(oob[:, usable], axis=0)
        # unbiased: a point is out of bag for two or three members only, and their plain standard
        # deviation understates the spread the full ensemble shows, which widened every interval
        spread = np.nanstd(oob[:, usable], axis=0, ddof=1)
        resid = log_y[usable] - mean
        self.noise_ = float(np.sqrt(max(np.mean(resid ** 2) - np.mean(spread ** 2), 1e-6)))
        z = np.abs(resid) / np.sqrt(spread ** 2 + self.noise_ ** 2)
        self.interval_scale_ = float(np.quantile(z, self.coverage)) if len(z) else 1.645
        self.group_scales_: dict[str, float] = {}
        if groups is not None:
            held = groups[usable]
            for group in dict.fromkeys(held):
                own = z[held == group]
                if len(own) >= MIN_GROUP_POINTS:
                    self.group_scales_[str(group)] = max(self.interval_scale_, float(np.quantile(own, self.coverage)))

    @property
    def uses_groups(self) -> bool:
        """Whether intervals depend on the group of each row (a group has a scale of its own)."""
        return bool(self.group_scales_)

    def _log_predictions(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        Z = _log_features(X)
        return np.stack([m.predict(X, Z) for m in self.members_])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.exp(self._log_predictions(X).mean(axis=0))

    def log_spread(self, X: np.ndarray) -> np.ndarray:
        """Standard deviation of the members' log-latency predictions: the part of the
        uncertainty that more measurements can shrink."""
        return self._log_predictions(X).std(axis=0)

    def predict_interval(self, X: np.ndarray, groups: Sequence[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median, low, high) in ms; ``groups`` (a label per row) selects group-wise scales."""
        logs = self._log_predictions(X)
        mu = logs.mean(axis=0)
        scale: float | np.ndarray = self.interval_scale_
        if groups is not None and self.group_scales_:
            scale = np.array([self.group_scales_.get(group, self.interval_scale_) for group in groups])
        half = scale * np.sqrt(logs.var(axis=0) + self.noise_ ** 2)
        return np.exp(mu), np.exp(mu - half), np.exp(mu + half)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.get_params(), "noise": self.noise_, "interval_scale": self.interval_scale_,
                "group_interval_scales": self.group_scales_, "n_features": self.n_features_in_,
                "members": [m.to_dict() for m in self.members_]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyRegressor:
        model = cls(**data["params"])
        member_cls = _MEMBERS[model.kind]
        model.members_ = [member_cls.from_dict(m) for m in data["members"]]
        model.noise_, model.interval_scale_ = float(data["noise"]), float(data["interval_scale"])
        model.group_scales_ = {str(k): float(v) for k, v in data.get("group_interval_scales", {}).items()}
        model.n_features_in_ = int(data["n_features"])
        return model


def interval_groups(configs: Sequence[ArchConfig]) -> np.ndarray:
    """The label of each config that selects its interval scale: its backbone family."""
    families: dict[str, str] = {}
    return np.array([families.get(c.space) or families.setdefault(c.space, family_of(c.space)) for c in configs],
                    dtype=object)


def interval_too_wide(low: float, high: float) -> bool:
    """Whether an interval is too wide to be useful (:data:`USEFUL_INTERVAL_RATIO`)."""
    return high > USEFUL_INTERVAL_RATIO * low


def make_estimator(kind: str, **params: Any) -> LatencyRegressor | FewShotCalibrator | TransferCalibrator:
    """An unfitted estimator of a predictor kind (``KINDS``)."""
    if kind == "fewshot":
        return FewShotCalibrator(**params)
    if kind == "macs":
        return MacsCalibrator(**params)
    if kind == "transfer":
        return TransferCalibrator(**params)
    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r}; allowed: {', '.join(KINDS)}")
    return LatencyRegressor(kind=kind, **params)


def estimator_to_json(estimator: LatencyRegressor | FewShotCalibrator) -> str:
    return json.dumps(estimator.to_dict(), separators=(",", ":"))


def estimator_from_json(kind: str, blob: str, sources: Mapping[str, Any] | None = None
                        ) -> LatencyRegressor | FewShotCalibrator | TransferCalibrator:
    """The estimator stored as ``blob``; a transfer also needs its loaded ``sources``."""
    data = json.loads(blob)
    if kind == "fewshot":
        return FewShotCalibrator.from_dict(data)
    if kind == "macs":
        return MacsCalibrator.from_dict(data)
    if kind == "transfer":
        return TransferCalibrator.from_dict(data, sources or {})
    return LatencyRegressor.from_dict(data)


class LatencyPredictor:
    """A fitted latency model of one setup (device, backend, batch, threads), on configs.

    ``predict(configs)`` computes features from the op tables (batched, cached per block) and
    returns predicted milliseconds per image with the interval: ``(median, low, high)``.
    """

    def __init__(self, estimator: LatencyRegressor | FewShotCalibrator, device: str, backend: str,
                 batch: int, threads: int | None, kind: str, metrics: dict[str, Any] | None = None,
                 training_arch_ids: Sequence[str] = (), feature_version: str = FEATURE_VERSION,
                 predictor_id: int | None = None):
        if feature_version != FEATURE_VERSION:
            raise NoPredictorError(
                device, f" with the current feature version {FEATURE_VERSION} (stored: {feature_version})")
        self.estimator = estimator
        self.device, self.backend, self.batch, self.threads = device, backend, batch, threads
        self.kind = kind
        self.metrics = dict(metrics or {})
        self.training_arch_ids = tuple(training_arch_ids)
        self.feature_version = feature_version
        self.predictor_id = predictor_id
        self.featurizer = OpFeaturizer()
        self._threadpools = ThreadpoolController()

    @property
    def name(self) -> str:
        """Human-readable identity, e.g. ``raspi5/ort/b1/t4/fewshot#3``."""
        threads = "auto" if self.threads is None else self.threads
        suffix = "" if self.predictor_id is None else f"#{self.predictor_id}"
        return f"{self.device}/{self.backend}/b{self.batch}/t{threads}/{self.kind}{suffix}"

    def features(self, configs: Sequence[ArchConfig]) -> np.ndarray:
        return self.featurizer.transform(configs)

    def predict(self, configs: Sequence[ArchConfig]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(median_ms, low_ms, high_ms) arrays, one entry per config (the model runs once per
        distinct config: a search proposes many configs again)."""
        configs = list(configs)
        distinct, inverse = self.featurizer.transform_distinct(configs)
        groups = None  # looked up only for a model that uses them: a per-config cost otherwise wasted
        if self.estimator.uses_groups:
            one_of = np.empty(len(distinct), dtype=np.int64)
            one_of[inverse] = np.arange(len(inverse))  # a config of each distinct row (all are equal)
            groups = interval_groups([configs[i] for i in one_of])
        # one BLAS thread for a batch: its products are matrix-vector ones that gain nothing from a
        # pool, whose idle threads spin a second core (twice the CPU time per batch); a few rows
        # stay below the size BLAS threads at, and skip the 10-40 us the limit costs
        one_thread = len(distinct) >= _BATCH_ROWS
        with self._threadpools.limit(limits=1, user_api="blas") if one_thread else nullcontext():
            return tuple(column[inverse] for column in self.estimator.predict_interval(distinct, groups))
