"""Held-out evaluation of latency predictors: metrics, the MACs-only baseline, cross-validation.

Splits are by architecture: every architecture appears in exactly one fold, so a model is never
scored on an architecture it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from predictors.features import FEATURE_INDEX

_MACS = FEATURE_INDEX["total.macs"]


def regression_metrics(measured: np.ndarray, predicted: np.ndarray, low: np.ndarray | None = None,
                       high: np.ndarray | None = None) -> dict[str, float]:
    """MAPE (%), RMSE (ms), share within +-5 % / +-10 % (%), Spearman, Kendall tau, coverage (%)."""
    from scipy import stats  # about 1 s of imports: evaluation only, never a prediction

    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    rel = np.abs(predicted / measured - 1.0)
    out = {
        "n": int(len(measured)),
        "mape": float(100 * rel.mean()),
        "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
        "within_5": float(100 * np.mean(rel <= 0.05)),
        "within_10": float(100 * np.mean(rel <= 0.10)),
        "spearman": float(stats.spearmanr(measured, predicted).statistic) if len(measured) > 2 else float("nan"),
        "kendall": float(stats.kendalltau(measured, predicted).statistic) if len(measured) > 2 else float("nan"),
    }
    if low is not None and high is not None:
        out["coverage"] = float(100 * np.mean((measured >= low) & (measured <= high)))
    return out


class MacsBaseline:
    """latency = a * MACs ** b, fitted in log space: what "MACs as latency" predicts."""

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> MacsBaseline:
        log_macs = np.log(np.maximum(np.atleast_2d(X)[:, _MACS], 1.0))
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if np.ptp(log_macs) == 0:
            self.coef_ = np.array([0.0, float(np.average(np.log(y), weights=weight))])
        else:
            self.coef_ = np.polyfit(log_macs, np.log(y), 1, w=np.sqrt(weight))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.exp(np.polyval(self.coef_, np.log(np.maximum(np.atleast_2d(X)[:, _MACS], 1.0))))


def fold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of ``folds`` shuffled folds (leave-one-out when folds >= n)."""
    order = np.random.default_rng(seed).permutation(n)
    return [fold for fold in np.array_split(order, min(folds, n)) if len(fold)]


def cross_validate(make: Callable[[], Any], X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0,
                   on_fold: Callable[[int, int], None] | None = None,
                   sample_weight: np.ndarray | None = None, max_train: int | None = None,
                   groups: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Out-of-fold ``predicted``, ``low``, ``high`` of the model and ``macs`` of the baseline
    (both fitted with the training folds' ``sample_weight``, on at most ``max_train`` of them;
    ``groups``, a label per row, goes to the model's ``fit`` and ``predict_interval``)."""
    n = len(y)
    out = {key: np.empty(n) for key in ("predicted", "low", "high", "macs")}
    splits = fold_indices(n, folds, seed)
    rng = np.random.default_rng(seed)
    for i, test in enumerate(splits):
        train = np.setdiff1d(np.arange(n), test)
        if max_train is not None and len(train) > max_train:
            train = np.sort(rng.choice(train, max_train, replace=False))
        weight = None if sample_weight is None else sample_weight[train]
        model = make().fit(X[train], y[train], sample_weight=weight, groups=None if groups is None else groups[train])
        out["predicted"][test], out["low"][test], out["high"][test] = model.predict_interval(
            X[test], None if groups is None else groups[test])
        out["macs"][test] = MacsBaseline().fit(X[train], y[train], weight).predict(X[test])
        if on_fold is not None:
            on_fold(i + 1, len(splits))
    return out
