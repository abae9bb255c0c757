"""The ImageNet top-1 surrogate: anchored in the published state of the art (reference curve and
cap), leave-one-out honesty, intervals that widen with shape distance and carry the published
one-knob spread, pessimistic bounds for shapes nobody trained, JSON."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.db import open_database
from predictors import reference
from predictors.results import load_published_accuracies, load_surrogate, published_accuracies
from predictors.surrogate import (
    ALL_FEATURES,
    VARIANTS,
    AccuracySurrogate,
    feature_matrix,
    fit_surrogate,
    reference_curve,
)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    db = open_database(tmp_path_factory.mktemp("surrogate") / "s.db")
    load_published_accuracies(db)
    return db, load_surrogate(db)


def _held_out(surrogate: AccuracySurrogate, label: str) -> tuple[float, float, float, float]:
    """(published top-1, leave-one-out mean, low, high) of one evidence point."""
    i = surrogate.labels_.index(label)
    loo = surrogate.loo_distribution()
    return surrogate.targets_[i], loo["mean"][i], loo["low"][i], loo["high"][i]


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
        AccuracySurrogate().fit(np.zeros((2, len(ALL_FEATURES))), np.array([70.0, 71.0]))


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="allowed: gp-shape"):
        AccuracySurrogate("deep-ensemble")


def test_evidence_spans_every_family(published):
    db, surrogate = published
    assert load_published_accuracies(db) == 0  # idempotent
    assert surrogate.n_ == len({(n, r) for n, r, _, _ in published_accuracies()}) >= 28
    assert set(surrogate.groups_) == {"lowformer", "efficientvit", "fmvit", "mcga"}


def test_leave_one_out_matches_refitting_without_each_point(published):
    _, surrogate = published
    for i in (0, 8, surrogate.n_ - 1):
        keep = np.arange(surrogate.n_) != i
        alone = AccuracySurrogate(surrogate.variant).fit(surrogate.x_[keep], surrogate.targets_[keep])
        prediction = alone.predict_features(surrogate.x_[i:i + 1])
        assert surrogate.loo_predictions_[i] == pytest.approx(prediction.mean[0], abs=1e-6)


def test_published_leave_one_out_ranks_and_covers(published):
    """Honest held-out figures on every published result; the reference curve with family
    offsets alone is clearly worse than the shape model."""
    _, surrogate = published
    loo = surrogate.loo_metrics()
    assert loo["kendall_tau"] >= 0.85
    assert loo["mae"] < 0.6
    assert loo["coverage_90"] >= 0.85
    assert surrogate.selection_["reference"]["mae"] > loo["mae"] + 0.15


@pytest.mark.parametrize("label", ["efficientvit-b0 @ 224", "lowformer-b0 @ 224", "fmvit-t @ 224",
                                   "efficientvit-seed @ 192"])
def test_the_smallest_network_of_each_family_is_predicted_without_it(published, label):
    """Downward extrapolation, the search's common case: the smallest published network of every
    family with more than one, left out, within 1.5 points and inside its ~90 % interval."""
    top1, mean, low, high = _held_out(published[1], label)
    assert abs(mean - top1) <= 1.5
    assert low <= top1 <= high


def test_leaving_the_smallest_out_is_reported(published):
    _, surrogate = published
    out = surrogate.leave_smallest_out(3)
    assert list(out) == [1, 2, 3]
    assert [len(row["results"]) for row in out.values()] == [1, 2, 3]
    assert out[1]["results"][0]["name"] == "efficientvit-b0 @ 224"  # fewest MACs of the evidence
    assert all(row["mae"] < 2.0 for row in out.values())


def test_leave_one_family_out_is_reported(published):
    _, surrogate = published
    out = surrogate.leave_one_family_out()
    assert {"lowformer", "efficientvit", "fmvit", "mcga"} <= set(out)
    assert all(row["n"] >= 1 and row["mae"] >= 0 for row in out.values())


def test_no_mean_above_the_published_frontier_without_in_space_evidence(published):
    """Small networks of our spaces (below all in-space evidence but EfficientViT-B0) are held to
    the best published top-1 at no more MACs; a surrogate that ignores the reference set fails."""
    _, surrogate = published
    b0 = resolve("lowformer-b0")
    small = [dataclasses.replace(b0, resolution=r) for r in (128, 160, 176)]
    small += [dataclasses.replace(b0, widths=tuple(max(8, w // 2) for w in b0.widths))]
    prediction = surrogate.predict(small)
    macs = np.array([c.op_table().macs for c in small]) / 1e6
    best, _ = reference.best_published(macs)
    assert np.all(prediction.mean <= best + reference.frontier_margin() + 1e-9)
    assert np.all(np.isfinite(prediction.ceiling))


def test_the_frontier_margin_comes_from_the_reference_set():
    excess = reference.frontier_excesses()
    assert len(excess) > 300  # hundreds of published networks with a smaller rival
    assert 0 <= reference.frontier_margin() <= max(0.0, float(np.quantile(excess, 0.95))) + 1e-9
    assert len(reference.clean_reference()) > 300


def test_the_reference_curve_follows_published_networks():
    """The curve fitted on hundreds of published networks: more MACs, less error; its mean
    residual on them is near zero."""
    curve = reference_curve()
    rows = reference.clean_reference()
    size = np.log([[r.macs_m * 1e6, r.params_m * 1e6, r.resolution] for r in rows])
    residual = curve.predict(size) - np.log(100 - np.array([r.top1 for r in rows]))
    assert curve.n == len(rows) and abs(residual.mean()) < 0.02
    small, large = curve.predict(np.log([[100e6, 4e6, 224], [2000e6, 20e6, 224]]))
    assert small > large


def test_a_one_knob_change_of_a_published_model_gets_the_published_one_knob_spread(published):
    """A published model itself is known to its noise; changing one knob (attention type, MLP,
    resolution) makes it as uncertain as published one-knob effects are."""
    _, surrogate = published
    b1 = resolve("lowformer-b1")
    changed = [resolve("lowformer-b1-relu-linear-attention"), resolve("lowformer-b1-mlpless"),
               dataclasses.replace(b1, resolution=240)]
    prediction = surrogate.predict([b1, *changed])
    spread = reference.one_knob_spread()
    assert 0.3 < spread < 2.0
    assert np.all(prediction.std[1:] >= spread - 1e-9)
    assert np.all(prediction.std[1:] > 2 * prediction.std[0])


def test_fewer_blocks_than_any_published_model_gets_a_low_pessimistic_bound(published):
    """The shortlist of the size-only axis (two to four blocks, widest widths) must not look as
    good as the published models it resembles in size: pessimistic bound at most 74 %."""
    _, surrogate = published
    b1 = resolve("lowformer-b1")
    shallow = [dataclasses.replace(b1, depths=d, widths=w) for d, w in (
        ((0, 1, 1, 0, 0), (20, 24, 160, 128, 512)), ((0, 1, 2, 0, 1), (20, 24, 160, 128, 512)),
        ((0, 1, 1, 0, 2), (16, 32, 128, 256, 512)), ((0, 1, 1, 1, 1), (32, 64, 128, 256, 512)),
        ((1, 1, 1, 1, 0), (32, 64, 256, 512, 512)))]
    fewest = min(sum(c.depths) for c in surrogate_configs(surrogate, "lowformer"))
    assert all(sum(c.depths) < fewest for c in shallow)
    prediction = surrogate.predict(shallow)
    assert np.all(prediction.low <= 74.0)
    assert np.all(prediction.std > 3 * surrogate.predict([b1]).std[0])


def test_uncertainty_grows_with_shape_distance(published):
    """Fewer blocks, step by step: the interval widens monotonically."""
    _, surrogate = published
    b1 = resolve("lowformer-b1")
    steps = [b1] + [dataclasses.replace(b1, depths=d) for d in ((1, 1, 2, 3, 3), (0, 1, 1, 2, 2), (0, 1, 1, 1, 1))]
    std = surrogate.predict(steps).std
    assert np.all(np.diff(std) > 0)


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
    forced = load_surrogate(db, "reference")
    assert forced.variant == "reference"
    with pytest.raises(ValueError, match="at least 3"):
        fit_surrogate([resolve("lowformer-b0")] * 2, [70, 71], "gp-size")


def test_feature_matrix_names_unknown_features():
    with pytest.raises(ValueError, match="unknown surrogate feature 'depth'"):
        feature_matrix([resolve("lowformer-b0")], ["depth"])
