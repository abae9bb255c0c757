"""A new device from a handful of points, by transfer from a richly measured one."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete

from explorer.db import Predictor, open_database
from predictors import load_predictor, train_predictor
from predictors.features import OpFeaturizer
from predictors.fewshot import CostModel
from predictors.latency import NoPredictorError
from predictors.metrics import regression_metrics
from predictors.transfer import TransferCalibrator
from test_predictors import TRUE_COST, add_measurements, synthetic

#: a board 2.5x slower than the source, with depthwise convolutions twice as costly again
BOARD = CostModel({k: 2.5 * v * (2.0 if k == "depthwise_macs" else 1.0) for k, v in TRUE_COST.to_dict().items()})


class Oracle:
    """A source that knows the source device's cost model exactly."""

    def predict(self, X):
        return TRUE_COST.predict(X)


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "t.db")


def test_transfer_learns_the_scaling_and_what_the_source_cannot_see():
    configs, X, _ = synthetic(120, seed=11)
    y = BOARD.predict(X)
    model = TransferCalibrator({"source": Oracle()}).fit(X[:15], y[:15])
    predicted, low, high = model.predict_interval(X[15:])
    transfer = regression_metrics(y[15:], predicted, low, high)
    # the alternatives: the source as it is, and one global rescale of it on the same 15 points
    source = Oracle().predict(X)
    rescaled = source[15:] * np.median(y[:15] / source[:15])
    assert transfer["mape"] < 0.6 * regression_metrics(y[15:], rescaled)["mape"]
    assert transfer["spearman"] > 0.98 and transfer["coverage"] >= 80
    assert model.source_ == "source" and len(model.loo_predictions_) == 15


def test_source_and_strength_are_chosen_by_leave_one_out():
    configs, X, _ = synthetic(40, seed=12)
    y = BOARD.predict(X)

    class Noise:
        def predict(self, X):
            return np.random.default_rng(0).uniform(1, 50, len(X))

    model = TransferCalibrator({"noise": Noise(), "source": Oracle()}).fit(X[:12], y[:12])
    assert model.source_ == "source"
    assert min(model.selection_, key=model.selection_.get).startswith("source@")


def test_round_trip_and_too_few_points():
    _, X, _ = synthetic(20, seed=13)
    y = BOARD.predict(X)
    model = TransferCalibrator({"source": Oracle()}).fit(X, y)
    again = TransferCalibrator.from_dict(model.to_dict(), {"source": Oracle()})
    assert np.allclose(again.predict_interval(X)[2], model.predict_interval(X)[2])
    with pytest.raises(ValueError, match="at least 2"):
        TransferCalibrator({"source": Oracle()}).fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="at least one source"):
        TransferCalibrator({})


def test_a_published_device_gets_the_better_of_fewshot_and_transfer(db):
    rich, X_rich, y_rich = synthetic(80, seed=14)
    add_measurements(db, "local", rich, y_rich)
    train_predictor(db, "local", kind="ridge", folds=3)
    few, X_few, _ = synthetic(14, seed=15)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    predictor = train_predictor(db, "raspi5")
    metrics = predictor.metrics
    assert predictor.kind in ("fewshot", "transfer") and metrics["protocol"] == "leave-one-out"
    (other,) = metrics["alternatives"]
    assert metrics["model"]["mape"] <= metrics["alternatives"][other]["model"]["mape"]
    forced = train_predictor(db, "raspi5", kind="transfer")
    assert forced.metrics["transfer_source"]["device"] == "local"
    check, X_check, _ = synthetic(30, seed=16)
    median, low, high = load_predictor(db, "raspi5").predict(check)
    assert regression_metrics(BOARD.predict(X_check), median)["spearman"] > 0.9
    assert np.all((low < median) & (median < high))
    with db.session() as session:  # the source predictor disappears: a clear error, not a crash
        session.execute(delete(Predictor).where(Predictor.device == "local"))
    with pytest.raises(NoPredictorError, match="transfer source"):
        load_predictor(db, "raspi5", kind="transfer")


def test_transfer_without_a_source_says_what_to_do(db):
    few, X_few, _ = synthetic(10, seed=17)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    from predictors.latency import TrainingDataError

    with pytest.raises(TrainingDataError, match="no transfer source"):
        train_predictor(db, "raspi5", kind="transfer")
    assert train_predictor(db, "raspi5").kind == "fewshot"  # the default falls back without a source
