"""Predictors: per-device latency models (and accuracy surrogates) over architecture configs."""

from predictors.features import FEATURE_VERSION
from predictors.latency import LatencyPredictor, NoPredictorError

__all__ = ["FEATURE_VERSION", "LatencyPredictor", "NoPredictorError", "load_predictor", "train_predictor"]


def __getattr__(name: str):
    """``load_predictor`` and ``train_predictor`` need the database; import it only when asked."""
    if name in ("load_predictor", "train_predictor"):
        from predictors import store

        return getattr(store, name)
    raise AttributeError(f"module 'predictors' has no attribute {name!r}")
