"""The ImageNet top-1 surrogate: leave-one-out honesty, calibrated intervals that widen away from
the evidence, pessimistic bounds for shapes nobody trained, JSON."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.db import open_database
from predictors.results import load_published_accuracies, load_surrogate, published_accuracies
from predictors.surrogate import VARIANTS, AccuracySurrogate, fit_surrogate


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    db = open_database(tmp_path_factory.mktemp("surrogate") / "s.db")
    load_published_accuracies(db)
    return db, load_surrogate(db)


@pytest.fixture
def curve():
    """A known saturating law of one feature plus small noise."""
    x = np.linspace(0, 4, 14)[:, None]
    y = 84 - 8 * np.exp(-0.6 * x[:, 0]) + np.random.default_rng(0).normal(0, 0.05, 14)
    return x, y


def one_feature() -> AccuracySurrogate:
    return AccuracySurrogate(prior_features=("log_params",), gp_features=("log_params",))


def test_leave_one_out_matches_refitting_without_each_point(curve):
    x, y = curve
    model = one_feature().fit(x, y)
    for i in (0, 5, 13):
        keep = np.arange(len(y)) != i
        alone = one_feature().fit(x[keep], y[keep])
        assert model.loo_predictions_[i] == pytest.approx(alone.predict_features(x[i:i + 1]).mean[0], abs=1e-6)
    metrics = model.loo_metrics()
    assert metrics["n"] == 14 and metrics["mae"] < 0.3 and metrics["kendall_tau"] > 0.9


def test_uncertainty_grows_away_from_the_evidence(curve):
    x, y = curve
    model = one_feature().fit(x, y)
    inside, near, far = model.predict_features(np.array([[2.0], [5.0], [12.0]])).std
    assert inside < near < far
    prediction = model.predict_features(np.array([[2.0], [12.0]]))
    assert prediction.flagged.tolist() == [False, True]
    assert "outside fitted range" in prediction.reasons[1][0]


def test_json_round_trip_predicts_the_same(published):
    _, surrogate = published
    again = AccuracySurrogate.from_json(surrogate.to_json())
    query = [resolve("lowformer-b1-mlpless"), resolve("fmvit-m"), resolve("efficientvit-b0")]
    a, b = surrogate.predict(query), again.predict(query)
    assert np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std) and a.reasons == b.reasons
    assert again.selection_ == surrogate.selection_ and set(again.selection_) == set(VARIANTS)
    with pytest.raises(ValueError, match="not an accuracy surrogate"):
        AccuracySurrogate.from_json('{"format": "other"}')


def test_fitting_needs_three_results():
    with pytest.raises(ValueError, match="at least 3"):
        AccuracySurrogate().fit(np.zeros((2, len(AccuracySurrogate().features))), np.array([70.0, 71.0]))


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="allowed: gp-shape"):
        AccuracySurrogate("deep-ensemble")


def test_evidence_spans_every_family(published):
    db, surrogate = published
    assert load_published_accuracies(db) == 0  # idempotent
    assert surrogate.n_ == len({(n, r) for n, r, _, _ in published_accuracies()}) >= 25
    assert set(surrogate.groups_) == {"lowformer", "efficientvit", "fmvit", "mcga"}


def test_published_leave_one_out_ranks_and_covers(published):
    """Honest held-out figures on every published result; a size-only prior is clearly worse."""
    _, surrogate = published
    loo = surrogate.loo_metrics()
    assert loo["kendall_tau"] >= 0.85
    assert loo["mae"] < 0.6
    assert 0.8 <= loo["coverage_90"] <= 0.97
    assert surrogate.selection_["size-prior"]["mae"] > loo["mae"] + 0.2


def test_leave_one_family_out_is_reported(published):
    _, surrogate = published
    out = surrogate.leave_one_family_out()
    assert {"lowformer", "efficientvit", "fmvit", "mcga"} <= set(out)
    assert all(row["n"] >= 1 and row["mae"] >= 0 for row in out.values())


def test_fewer_blocks_than_any_published_model_gets_a_low_pessimistic_bound(published):
    """The shortlist of the size-only axis (two to four blocks, widest widths) must not look as
    good as the published models it resembles in size."""
    _, surrogate = published
    b1 = resolve("lowformer-b1")
    shallow = [dataclasses.replace(b1, depths=d, widths=w) for d, w in (
        ((0, 1, 1, 0, 0), (20, 24, 160, 128, 512)), ((0, 1, 2, 0, 1), (20, 24, 160, 128, 512)),
        ((0, 1, 1, 0, 2), (16, 32, 128, 256, 512)))]
    fewest = min(sum(c.depths) for c in surrogate_configs(surrogate, "lowformer"))
    assert all(sum(c.depths) < fewest for c in shallow)
    prediction = surrogate.predict(shallow)
    for i in range(len(shallow)):
        nearest_top1 = surrogate.targets_[prediction.nearest[i]]
        assert prediction.low[i] < nearest_top1 - 2.0
        assert prediction.std[i] > 3 * surrogate.predict([b1]).std[0]


def surrogate_configs(surrogate, family):
    names = [label.split(" @ ")[0] for label, group in zip(surrogate.labels_, surrogate.groups_) if group == family]
    return [resolve(name) for name in names]


def test_surrogate_reproduces_known_results_and_flags_unseen_block_types(published):
    _, surrogate = published
    b1, linear = resolve("lowformer-b1"), resolve("lowformer-b1-relu-linear-attention")
    prediction = surrogate.predict([b1, linear])
    assert prediction.flagged.tolist() == [False, True]  # no published model has ReLU linear attention
    assert any("attention=relu-linear" in reason for reason in prediction.reasons[1])
    assert abs(prediction.mean[0] - 79.9) < 0.3 and prediction.low[0] < 79.9 < prediction.high[0]
    assert surrogate.labels_[prediction.nearest[0]] == "lowformer-b1 @ 224"


def test_fit_surrogate_keeps_the_variant_with_the_smallest_loo_error(published):
    db, surrogate = published
    best = min(surrogate.selection_.items(), key=lambda item: item[1]["mae"])[0]
    assert surrogate.variant == best
    forced = load_surrogate(db, "size-prior")
    assert forced.variant == "size-prior"
    with pytest.raises(ValueError, match="at least 3"):
        fit_surrogate([resolve("lowformer-b0")] * 2, [70, 71], "gp-size")
