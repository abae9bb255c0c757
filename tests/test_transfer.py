"""A new device from a handful of points, by transfer from a richly measured one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from explorer.architectures import config_from_dict
from explorer.cli import main
from explorer.db import Architecture, Measurement, Predictor, open_database
from explorer.devices import DeviceProfile, add_device
from explorer.measure import Job, JobResult, ProtocolResult, record_result, summarize
from predictors import load_predictor, train_predictor
from predictors.features import OpFeaturizer
from predictors.fewshot import COST_TERMS, CostModel, cost_design
from predictors.latency import NoPredictorError
from predictors.metrics import regression_metrics
from predictors.transfer import TransferCalibrator, pseudo_bma_weights
from search_spaces.base import arch_id
from test_predictors import TRUE_COST, add_measurements, synthetic

SHIPPED_DB = Path(__file__).resolve().parents[1] / "measurements.db"
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
    # the 90 % interval covers most points: 78-100 % over ten seeds of the synthetic population,
    # from only 15 calibration points
    assert transfer["spearman"] > 0.98 and transfer["coverage"] >= 60
    assert model.source_ == "source" and len(model.loo_predictions_) == 15


def test_source_and_strength_are_chosen_by_leave_one_out():
    configs, X, _ = synthetic(40, seed=12)
    y = BOARD.predict(X)

    class Noise:
        def predict(self, X):
            return np.random.default_rng(0).uniform(1, 50, len(X))

    model = TransferCalibrator({"noise": Noise(), "source": Oracle()}).fit(X[:12], y[:12])
    assert model.source_ == "source"
    assert "source" in min(model.selection_, key=model.selection_.get)
    # the prediction averages the candidates by their leave-one-out fit: the noise alone gets no
    # weight, and where both sources are candidates together the fit leaves the noise out
    assert model.source_weights.get("noise", 0.0) < 0.01 and sum(p["weight"] for p in model.mixture_) == pytest.approx(1)
    for part in model.mixture_:
        if part.get("sources") == ["noise", "source"] and part["weight"] > 0.1:
            effective = 0.5 + part["params"]["beta"][:2]
            assert abs(effective[0]) < 0.05 < effective[1]


def test_candidate_weights_follow_the_leave_one_out_fit():
    t = np.log(np.linspace(2.0, 20.0, 10))
    errors = np.random.default_rng(3).normal(0, 1, len(t))
    loo = np.stack([t + sigma * errors for sigma in (0.02, 0.05, 0.5)])
    weights = pseudo_bma_weights(loo, t, np.ones(len(t)))
    assert weights.sum() == pytest.approx(1) and weights[0] > weights[1] > weights[2]
    assert weights[2] < 1e-3
    # two equally good candidates share the weight: neither wins by the luck of a few points
    twins = pseudo_bma_weights(np.stack([t + 0.03, t - 0.03]), t, np.ones(len(t)))
    assert twins == pytest.approx([0.5, 0.5], abs=0.05)


def test_a_runtime_with_a_time_per_kernel_is_fitted_as_source_plus_overhead():
    """An eager runtime: the compiled source's time scaled, plus a fixed cost per convolution or
    matmul call, which no power of the source's latency follows across model sizes."""
    _, X, _ = synthetic(120, seed=15)
    launches = cost_design(X)[:, list(COST_TERMS).index("compute_launches")]
    y = 1.3 * Oracle().predict(X) + 0.05 * launches
    model = TransferCalibrator({"source": Oracle()}).fit(X[:12], y[:12])
    assert model.source_weights["source + kernel overhead"] > 0.5
    overhead = next(part for part in model.mixture_ if part.get("overhead"))
    assert overhead["params"]["scale"] == pytest.approx(1.3, rel=0.05)
    assert overhead["params"]["per_launch_ms"] == pytest.approx(0.05, rel=0.1)
    assert regression_metrics(y[12:], model.predict(X[12:]))["mape"] < 1.0
    again = TransferCalibrator.from_dict(json.loads(json.dumps(model.to_dict())), {"source": Oracle()})
    np.testing.assert_allclose(again.predict(X), model.predict(X))


def test_a_family_the_sources_misjudge_gets_an_offset_of_its_own():
    """A board 30 % faster on one family than the source says (as PyTorch eager is on MCGA
    against ONNX Runtime) gets a shrunk offset for it; without families, or with one, none."""
    _, X, _ = synthetic(120, seed=18)
    families = np.array(["a", "b"] * 60, dtype=object)
    y = BOARD.predict(X) * np.where(families == "b", 0.7, 1.0)
    fit, test = np.arange(16), np.arange(16, 120)
    plain = TransferCalibrator({"source": Oracle()}).fit(X[fit], y[fit])
    model = TransferCalibrator({"source": Oracle()}).fit(X[fit], y[fit], groups=families[fit])
    assert not plain.uses_groups and model.uses_groups
    factors = model.family_factors
    # 8 points a family: the offset is shrunk by 8 / (8 + 1) towards no difference
    assert 0.6 < factors["b"] / factors["a"] < 0.8
    with_families = regression_metrics(y[test], *model.predict_interval(X[test], families[test]))
    assert with_families["mape"] < 0.5 * regression_metrics(y[test], plain.predict(X[test]))["mape"]
    assert with_families["coverage"] >= 80
    # a family without calibration points gets no offset
    unseen = model.predict(X[test], ["c"] * len(test))
    np.testing.assert_allclose(unseen, model.predict(X[test]))
    again = TransferCalibrator.from_dict(json.loads(json.dumps(model.to_dict())), {"source": Oracle()})
    np.testing.assert_allclose(again.predict(X[test], families[test]), model.predict(X[test], families[test]))
    one_family = TransferCalibrator({"source": Oracle()}).fit(X[fit], y[fit], groups=["a"] * len(fit))
    assert not one_family.uses_groups


def test_transfers_stored_in_earlier_layouts_still_load():
    _, X, _ = synthetic(20, seed=14)
    model = TransferCalibrator({"source": Oracle()}, alphas=(30.0,), fewshot=False).fit(X, BOARD.predict(X))
    stored = model.to_dict()
    parts = stored.pop("mixture")
    # a mixture of one source per part
    single = {**stored, "mixture": [{**{k: v for k, v in p.items() if k != "sources"}, "source": p["sources"][0]}
                                    for p in parts]}
    again = TransferCalibrator.from_dict(single, {"source": Oracle()})
    np.testing.assert_allclose(again.predict(X), model.predict(X))
    stored["params"] = parts[0]["params"]  # one candidate, no mixture
    again = TransferCalibrator.from_dict(stored, {"source": Oracle()})
    np.testing.assert_allclose(again.predict(X), model.predict(X))


def test_sources_together_and_the_cost_model_are_candidates():
    """A board whose latency mixes two sources' is fitted best by both together; one whose cost
    is kernel overhead the sources do not weigh by the candidates that count kernels (the
    few-shot cost models, and a source plus a time per kernel)."""
    _, X, _ = synthetic(60, seed=15)
    slow_kernels = CostModel({**TRUE_COST.to_dict(), "compute_launches": 0.5, "elementwise_launches": 0.2})
    sources = {"a": Oracle(), "b": type("Launches", (), {"predict": lambda self, X: slow_kernels.predict(X)})()}
    mixed = np.sqrt(TRUE_COST.predict(X) * slow_kernels.predict(X))
    model = TransferCalibrator(sources).fit(X[:12], mixed[:12])
    assert model.source_weights.get("a+b", 0.0) > 0.5
    assert regression_metrics(mixed[12:], model.predict(X[12:]))["mape"] < 2.0
    stored = TransferCalibrator.from_dict(model.to_dict(), sources)
    np.testing.assert_allclose(stored.predict(X), model.predict(X))
    overhead = CostModel({**{k: 0.0 for k in TRUE_COST.to_dict()}, "compute_launches": 0.3,
                          "elementwise_launches": 0.1, "dense_macs": 1e-9})
    model = TransferCalibrator({"a": Oracle()}).fit(X[:12], overhead.predict(X[:12]))
    weights = model.source_weights
    assert weights.get("fewshot", 0.0) + weights.get("launch-bound", 0.0) + weights.get("a + kernel overhead", 0.0) > 0.9
    assert regression_metrics(overhead.predict(X[12:]), model.predict(X[12:]))["mape"] < 5.0


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


def test_a_published_device_gets_the_transfer_with_fewshot_reported_beside(db):
    rich, X_rich, y_rich = synthetic(80, seed=14)
    add_measurements(db, "local", rich, y_rich)
    train_predictor(db, "local", kind="ridge", folds=3)
    few, X_few, _ = synthetic(14, seed=15)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    predictor = train_predictor(db, "raspi5")
    metrics = predictor.metrics
    assert predictor.kind == "transfer" and metrics["protocol"] == "leave-one-out"
    assert set(metrics["alternatives"]) == {"fewshot"} and metrics["alternatives"]["fewshot"]["model"]["n"] == 14
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


def test_a_device_measured_on_two_families_is_predicted_with_their_offsets(tmp_path, capsys):
    """Trained through the store, the transfer's offsets reach ``explorer predict``: an
    EfficientViT architecture the board runs 30 % faster than the LowFormer ones says gets a
    prediction that knows it, and ``predictor train`` prints the factor."""
    from explorer.architectures import flat_space

    path = tmp_path / "t.db"
    db = open_database(path)
    rich, _, y_rich = synthetic(80, seed=14)
    add_measurements(db, "local", rich, y_rich)
    train_predictor(db, "local", kind="ridge", folds=3)
    lowformer, X_low, _ = synthetic(8, seed=15)
    efficientvit = flat_space("efficientvit").sample(14, 3, resolution=224)
    X_vit = OpFeaturizer().transform(efficientvit)
    add_measurements(db, "raspi5-ort", lowformer + efficientvit[:8],
                     np.r_[BOARD.predict(X_low), 0.7 * BOARD.predict(X_vit[:8])], provenance="published", threads=None)
    assert main(["predictor", "train", "--device", "raspi5", "--kind", "transfer", "--db", str(path)]) == 0
    assert "per family x" in capsys.readouterr().out
    predictor = load_predictor(db, "raspi5")
    factors = predictor.metrics["transfer_source"]["family_factors"]
    assert factors["efficientvit"] < factors["lowformer"]
    median, _, _ = predictor.predict(efficientvit[8:])
    without_offsets = predictor.estimator.predict(X_vit[8:])
    truth = 0.7 * BOARD.predict(X_vit[8:])
    assert regression_metrics(truth, median)["mape"] < regression_metrics(truth, without_offsets)["mape"]


def test_every_rich_kind_of_a_source_device_is_offered_and_the_one_chosen_is_named(db):
    from predictors.store import transfer_sources

    rich, _, y_rich = synthetic(60, seed=18)
    add_measurements(db, "local", rich, y_rich)
    ridge = train_predictor(db, "local", kind="ridge", folds=3).predictor_id
    train_predictor(db, "local", kind="rf", folds=3, make_default=False)
    newest_rf = train_predictor(db, "local", kind="rf", folds=3, make_default=False).predictor_id
    with db.session() as session:
        sources = transfer_sources(session)
    assert {key: pid for key, (pid, _) in sources.items()} == {"local": ridge, "local/rf": newest_rf}
    few, X_few, _ = synthetic(12, seed=19)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    source = train_predictor(db, "raspi5", kind="transfer").metrics["transfer_source"]
    assert source["device"] == "local" and (source["kind"], source["predictor_id"]) in {("ridge", ridge),
                                                                                        ("rf", newest_rf)}
    median, low, high = load_predictor(db, "raspi5").predict(few)  # the stored source key loads back
    assert np.all((low < median) & (median < high))


def test_transfer_without_a_source_says_what_to_do(db):
    few, X_few, _ = synthetic(10, seed=17)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    from predictors.latency import TrainingDataError

    with pytest.raises(TrainingDataError, match="no transfer source"):
        train_predictor(db, "raspi5", kind="transfer")
    assert train_predictor(db, "raspi5").kind == "fewshot"  # the default falls back without a source


def test_chosen_calibration_points_represent_the_population_and_pin_the_transfer_down():
    from scipy.spatial.distance import cdist

    from predictors.calibration_points import calibration_design, choose_calibration_points

    _, X, _ = synthetic(200, seed=21)
    source = Oracle().predict(X)
    y = source ** 1.3 * np.exp(np.random.default_rng(0).normal(0, 0.03, len(X)))  # not a plain scaling
    chosen = choose_calibration_points(X, {"source": Oracle()}, 5)
    assert len(set(chosen.tolist())) == 5
    randoms = [np.random.default_rng(seed).choice(len(X), 5, replace=False) for seed in range(20)]
    design = calibration_design(X, {"source": Oracle()})

    def distance_to_nearest_pick(fit):
        return cdist(design, design[fit]).min(axis=1).sum()

    assert distance_to_nearest_pick(chosen) < min(map(distance_to_nearest_pick, randoms))

    def mape(fit):
        test = np.setdiff1d(np.arange(len(X)), fit)
        model = TransferCalibrator({"source": Oracle()}).fit(X[fit], y[fit])
        return regression_metrics(y[test], model.predict(X[test]))["mape"]

    # as good as a typical random pick, never a degenerate fit (some random picks give one): over
    # six seeds of the population the picks scored 0.5-1.4x the median of 20 random picks
    assert mape(chosen) < 1.5 * np.median([mape(fit) for fit in randoms])


def test_calibration_points_count_what_is_measured():
    from predictors.calibration_points import choose_calibration_points

    _, X, _ = synthetic(60, seed=22)
    first = choose_calibration_points(X, {"source": Oracle()}, 3)
    again = choose_calibration_points(X, {"source": Oracle()}, 3, measured=X[first])
    assert not set(first.tolist()) & set(again.tolist())
    with pytest.raises(ValueError, match="positive"):
        choose_calibration_points(X, {"source": Oracle()}, 0)


def test_calibration_points_give_every_family_its_share():
    from predictors.calibration_points import choose_calibration_points, family_quotas

    families = ("lowformer", "efficientvit", "fmvit", "mcga")
    assert family_quotas(10, families) == {"lowformer": 3, "efficientvit": 3, "fmvit": 2, "mcga": 2}
    # a family the device has measured already waits for the others
    assert family_quotas(6, families, ["lowformer"] * 4 + ["mcga"]) == {"lowformer": 0, "efficientvit": 3,
                                                                           "fmvit": 2, "mcga": 1}
    _, X, _ = synthetic(80, seed=23)
    strata = np.array(families)[np.arange(len(X)) % 4]
    strata[:60] = "lowformer"  # a family the medoids alone would mostly pick from
    quotas = family_quotas(6, families)
    chosen = choose_calibration_points(X, {"source": Oracle()}, 6, strata=strata, quotas=quotas)
    picked = dict(zip(*np.unique(strata[chosen], return_counts=True)))
    assert picked == {family: count for family, count in quotas.items() if count}


@pytest.mark.skipif(not SHIPPED_DB.exists(), reason="needs the shipped measurements.db")
def test_a_users_board_with_a_dozen_measurements_is_served_by_the_transfer(tmp_path, capsys):
    """A board measured on 12 architectures (here: the development host's 2-thread ONNX Runtime
    rows, stored as a new device through the path ingestion takes) gets the transfer, and
    ``explorer predictor train`` says from which source."""
    path = tmp_path / "measurements.db"
    path.write_bytes(SHIPPED_DB.read_bytes())
    database = open_database(str(path))
    with database.session() as session:
        add_device(session, DeviceProfile(name="mypi", backend="ort", default_threads=2))
        rows = session.scalars(select(Measurement).where(Measurement.campaign == "backends-ort-t2-n300")
                               .order_by(Measurement.id).limit(12)).all()
        for row in rows:
            config = config_from_dict(session.get(Architecture, row.arch_id).config_json)
            samples = tuple(row.samples)
            result = ProtocolResult(samples, samples, summarize(samples))
            record_result(session, "mypi", JobResult(Job(config, "ort", 1, 2), "ok", result), "ingested")
    assert main(["predictor", "train", "--device", "mypi", "--db", str(path)]) == 0
    assert "transfer from dev-epyc-2c-ort" in capsys.readouterr().out
    assert load_predictor(database, "mypi").kind == "transfer"


def test_rows_whose_layers_are_unknown_are_down_weighted_and_said_so(db):
    from sqlalchemy import update

    from predictors.store import INEXACT_WEIGHT

    few, X_few, _ = synthetic(10, seed=23)
    add_measurements(db, "raspi5-ort", few, BOARD.predict(X_few), provenance="published", threads=None)
    assert train_predictor(db, "raspi5").metrics["down_weighted"] is None
    reconstructed = [arch_id(config) for config in few[:3]]
    with db.session() as session:
        session.execute(update(Architecture).where(Architecture.arch_id.in_(reconstructed)).values(exact=False))
    metrics = train_predictor(db, "raspi5").metrics
    assert metrics["down_weighted"]["rows"] == 3 and metrics["down_weighted"]["weight"] == INEXACT_WEIGHT
    assert sorted(metrics["down_weighted"]["arch_ids"]) == sorted(reconstructed)
    assert metrics["exact_only"]["model"]["n"] == 7


@pytest.mark.skipif(not SHIPPED_DB.exists(), reason="needs the shipped measurements.db")
def test_new_device_benchmark_quick(capsys, monkeypatch):
    import importlib.util
    import json
    import sys

    spec = importlib.util.spec_from_file_location("new_device", SHIPPED_DB.parent / "benchmarks" / "new_device.py")
    benchmark = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "new_device", benchmark)  # its dataclasses look their module up
    spec.loader.exec_module(benchmark)
    assert benchmark.main(["--quick", "--json", "--db", str(SHIPPED_DB)]) == 0
    result = json.loads(capsys.readouterr().out)
    summary = {(r["target"], r["k"], r["picks"], r["method"]): r for r in result["summary"]}
    assert len(summary) == 5 * 2 * 3 * 3 and result["shared_architectures"] == 300
    assert result["served_targets_at_k10"] == result["targets_at_k10"]  # predictor train serves the transfer
    for picks in ("random", "chosen"):
        transfer, macs = summary[("all", 10, picks, "transfer")], summary[("all", 10, picks, "macs")]
        assert transfer["spearman"] > macs["spearman"] and transfer["mape"] < macs["mape"]
        assert transfer["coverage"] is not None and macs["coverage"] is None
    assert set(result["targets_at_k10"]["chosen"]) == {"all", "ort-t1", "ort-t2", "torch", "torchscript"}
    own = result["own_data_reference"]
    assert set(own) == {"ort-t1", "ort-t2", "torch", "torchscript"}
    assert all(m["n"] == 300 and 0 < m["mape"] < 50 for m in own.values())
