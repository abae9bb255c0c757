"""The ImageNet top-1 surrogate: leave-one-out honesty, uncertainty, extrapolation flags, JSON."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.db import open_database
from predictors.results import load_published_accuracies, load_surrogate, published_accuracies
from predictors.surrogate import AccuracySurrogate, fit_surrogate


@pytest.fixture
def line():
    x = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])
    y = 70 + 2 * x[:, 0] + np.array([0.1, -0.2, 0.15, -0.1, 0.05, 0.0])
    return x, y


def test_leave_one_out_matches_refitting_without_each_point(line):
    x, y = line
    model = AccuracySurrogate(alpha=0.1).fit(x, y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        alone = AccuracySurrogate(alpha=0.1).fit(x[keep], y[keep])
        assert model.loo_predictions_[i] == pytest.approx(alone.predict_features(x[i:i + 1]).mean[0])
    metrics = model.loo_metrics()
    assert metrics["n"] == 6 and metrics["mae"] < 1.0 and metrics["kendall_tau"] > 0.8


def test_uncertainty_grows_away_from_the_data_and_far_configs_are_flagged(line):
    x, y = line
    model = AccuracySurrogate(alpha=0.1).fit(x, y)
    inside, outside = model.predict_features(np.array([[3.5], [12.0]])).std
    assert 0 < inside < outside
    prediction = model.predict_features(np.array([[3.5], [12.0]]))
    assert prediction.flagged.tolist() == [False, True]
    assert "outside fitted range" in prediction.reasons[1][0]


def test_json_round_trip_predicts_the_same(line):
    x, y = line
    model = AccuracySurrogate(alpha=0.1).fit(x, y)
    again = AccuracySurrogate.from_json(model.to_json())
    query = np.array([[2.5], [9.0]])
    a, b = model.predict_features(query), again.predict_features(query)
    assert np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std) and a.reasons == b.reasons
    with pytest.raises(ValueError, match="not an accuracy surrogate"):
        AccuracySurrogate.from_json('{"format": "other"}')


def test_fitting_needs_three_results():
    with pytest.raises(ValueError, match="at least 3"):
        AccuracySurrogate().fit(np.array([[1.0], [2.0]]), np.array([70.0, 71.0]))


def test_published_surrogate_generalises_and_flags_unseen_block_types(tmp_path):
    db = open_database(tmp_path / "s.db")
    assert load_published_accuracies(db) == len(published_accuracies()) >= 7
    assert load_published_accuracies(db) == 0  # idempotent
    surrogate = load_surrogate(db)
    loo = surrogate.loo_metrics()
    assert loo["n"] == len(published_accuracies()) and loo["mae"] < 1.0
    b1, e1 = resolve("lowformer-b1"), resolve("lowformer-e1")  # E1 has neither attention nor MLP
    prediction = surrogate.predict([b1, e1])
    assert prediction.flagged.tolist() == [False, True]
    assert any("attention=none" in reason for reason in prediction.reasons[1])
    assert abs(prediction.mean[0] - 79.9) < 1.0


def test_surrogate_features_are_named_in_errors():
    with pytest.raises(ValueError, match="allowed: log_params"):
        fit_surrogate([resolve("lowformer-b0")] * 3, [70, 71, 72], features=("width",))
