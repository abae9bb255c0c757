"""Latency predictors: features, regressors, few-shot calibration and storage in the database."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import Measurement, Predictor, UnknownDeviceError, open_database, upsert_architecture
from predictors import FEATURE_VERSION, NoPredictorError, load_predictor, train_predictor
from explorer.measure.campaign import SampleRequest
from predictors.active import select_uncertain, uncertainty_sampler
from predictors.features import FEATURE_NAMES, OpFeaturizer, config_features
from predictors.fewshot import GENERIC_COEFFICIENTS, CostModel, FewShotCalibrator
from predictors.latency import LatencyPredictor, LatencyRegressor, TrainingDataError
from predictors.metrics import MacsBaseline, regression_metrics
from search_spaces.lowformer import LOWFORMER_PRESETS
from search_spaces.lowformer.sampling import sample_configs

#: the cost model that generates the synthetic latencies
TRUE_COST = CostModel({"dense_macs": 4e-8, "depthwise_macs": 3e-7, "transposed_macs": 2e-7,
                       "attention_macs": 1e-7, "bytes": 5e-8, "compute_launches": 0.02,
                       "elementwise_launches": 0.005})


def synthetic(n: int, seed: int, noise: float = 0.02) -> tuple[list, np.ndarray, np.ndarray]:
    configs = sample_configs(n, seed=seed)
    X = OpFeaturizer().transform(configs)
    y = TRUE_COST.predict(X) * np.exp(np.random.default_rng(seed).normal(0, noise, n))
    return configs, X, y


def add_measurements(db, device: str, configs, latencies, provenance: str = "measured", threads=2) -> None:
    with db.session() as session:
        for config, ms in zip(configs, latencies):
            arch = upsert_architecture(session, config)
            session.add(Measurement(arch_id=arch.arch_id, device=device, backend="ort", batch=1, threads=threads,
                                    resolution=config.resolution, metric="latency_ms", value=float(ms),
                                    median_ms=float(ms), status="ok", provenance=provenance))


@pytest.fixture()
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'test.db'}")
    yield database
    database.close()


# -- features ----------------------------------------------------------------------------------

#: The feature layout each FEATURE_VERSION stands for: stored predictors read their columns by
#: position, so a changed layout must come with a new version (and a new entry here).
LAYOUTS = {"optable-v1": (87, "28c6947898c32d8c"), "optable-v2": (91, "4ee45e3926dc5e06")}


def test_features_are_deterministic_with_a_fixed_layout():
    import hashlib

    configs = [cfg for cfg, _ in LOWFORMER_PRESETS.values()]
    a, b = OpFeaturizer().transform(configs), OpFeaturizer().transform(configs)
    width, digest = LAYOUTS[FEATURE_VERSION]
    assert a.shape == (len(configs), width)
    assert hashlib.sha256("\n".join(FEATURE_NAMES).encode()).hexdigest()[:16] == digest
    np.testing.assert_array_equal(a, b)


def test_fast_path_equals_the_op_table_path():
    b1 = LOWFORMER_PRESETS["lowformer-b1"][0]
    shallow = [dataclasses.replace(b1, depths=depths) for depths in ((0, 1, 1, 0, 1), (2, 1, 2, 1, 0), (1, 1, 1, 0, 0))]
    configs = (sample_configs(40, seed=3) + shallow
               + [cfg.with_resolution(192) for cfg, _ in LOWFORMER_PRESETS.values()])
    featurizer = OpFeaturizer()
    featurizer.transform(configs[:10])  # warm the block cache with part of the batch
    fast = featurizer.transform(configs)
    slow = np.stack([config_features(c) for c in configs])
    np.testing.assert_array_equal(fast, slow)


def test_config_rows_are_reused_and_bounded():
    configs = sample_configs(30, seed=5)
    featurizer = OpFeaturizer(max_configs=40)
    first = featurizer.transform(configs)
    repeated = configs[::-1] + configs[:5]  # seen configs, in another order, with duplicates
    np.testing.assert_array_equal(featurizer.transform(repeated), first[list(range(29, -1, -1)) + list(range(5))])
    more = sample_configs(25, seed=6)  # past the bound: the config cache starts again
    np.testing.assert_array_equal(featurizer.transform(more + configs[:3]),
                                  np.stack([config_features(c) for c in more + configs[:3]]))
    assert len(featurizer._config_rows) <= 40


def test_a_model_runs_once_per_distinct_config():
    configs = sample_configs(12, seed=8)
    batch = configs + configs[3:9] + configs[:2]
    distinct, inverse = OpFeaturizer().transform_distinct(batch)
    assert len(distinct) == 12
    np.testing.assert_array_equal(distinct[inverse], OpFeaturizer().transform(batch))

    X = OpFeaturizer().transform(configs)
    predictor = LatencyPredictor(LatencyRegressor(kind="ridge").fit(X, TRUE_COST.predict(X)), "d", "ort", 1, 1, "ridge")
    expected = predictor.estimator.predict_interval(OpFeaturizer().transform(batch))
    for got, want in zip(predictor.predict(batch), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_batch_predicts_with_one_blas_thread():
    """The BLAS pool's idle threads would spin a second core during every batch."""
    from threadpoolctl import threadpool_info, threadpool_limits

    configs = sample_configs(80, seed=9)
    X = OpFeaturizer().transform(configs)
    predictor = LatencyPredictor(LatencyRegressor(kind="ridge").fit(X, TRUE_COST.predict(X)), "d", "ort", 1, 1, "ridge")
    seen = []
    inner = predictor.estimator.predict_interval

    def recording(rows, groups=None):
        seen.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return inner(rows, groups)

    predictor.estimator.predict_interval = recording
    with threadpool_limits(limits=2, user_api="blas"):
        predictor.predict(configs)
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} <= {2}
    assert seen == [{1}]


def test_features_agree_with_the_op_table_totals():
    config = LOWFORMER_PRESETS["lowformer-b1"][0]
    table = config.op_table()
    vec = dict(zip(FEATURE_NAMES, config_features(config)))
    assert vec["total.macs"] == table.macs
    assert vec["total.params"] == table.params
    assert vec["total.ops"] == len(table)
    assert vec["input.resolution"] == 224
    # stage 1 of B1 is one fused MBConv: a 3x3 conv 16 -> 96 and a 1x1 conv 96 -> 32, at 56 px
    assert vec["stage1.convs"] == 2 and vec["stage1.resolution"] == 56 and vec["stage1.channels"] == 64
    assert vec["attention.score_elements"] > 0


def test_toy_models_get_features_through_their_op_table():
    toys = [entry for entry in ("toy-conv-1", "attention-stack-mhsa") if _known(entry)]
    if not toys:
        pytest.skip("study toy models not registered")
    X = OpFeaturizer().transform([resolve(name) for name in toys])
    assert np.all(X[:, FEATURE_NAMES.index("total.macs")] > 0)


def _known(name: str) -> bool:
    from explorer.architectures import NAMED_ARCHITECTURES

    return name in NAMED_ARCHITECTURES


# -- regressors --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, max_mape, min_kendall", [("xgboost", 4.0, 0.9), ("ridge", 6.0, 0.9), ("rf", 8.0, 0.85),
                                                         ("xgboost-ridge", 4.0, 0.9)])
def test_regressor_recovers_a_known_cost_model(kind, max_mape, min_kendall):
    _, X, y = synthetic(260, seed=1)
    model = LatencyRegressor(kind=kind, n_members=3, n_estimators=150).fit(X[:200], y[:200])
    assert model.fit(X[:200], y[:200]) is model
    median, low, high = model.predict_interval(X[200:])
    metrics = regression_metrics(y[200:], median, low, high)
    assert metrics["mape"] < max_mape
    assert metrics["kendall"] > min_kendall
    assert metrics["coverage"] > 70
    assert np.all(low <= median) and np.all(median <= high)


def test_cost_model_fit_recovers_the_coefficients():
    _, X, y = synthetic(200, seed=2, noise=0.0)
    fitted = CostModel().fit(X, y).to_dict()
    for term, coefficient in TRUE_COST.to_dict().items():
        assert fitted[term] == pytest.approx(coefficient, rel=0.02)


def test_macs_baseline_is_a_power_law():
    X = np.zeros((3, len(FEATURE_NAMES)))
    X[:, FEATURE_NAMES.index("total.macs")] = [1e8, 1e9, 1e10]
    baseline = MacsBaseline().fit(X, 2.0 * X[:, FEATURE_NAMES.index("total.macs")] ** 0.5)
    np.testing.assert_allclose(baseline.coef_, [0.5, np.log(2.0)], atol=1e-9)


def test_regressor_rejects_bad_hyper_parameters():
    _, X, y = synthetic(20, seed=4)
    with pytest.raises(ValueError, match="unknown kind 'svm'"):
        LatencyRegressor(kind="svm").fit(X, y)
    with pytest.raises(ValueError, match="positive"):
        LatencyRegressor().fit(X, -y)


def test_a_group_with_wider_residuals_gets_wider_intervals_and_none_narrower():
    configs, X, _ = synthetic(1200, seed=11)
    groups = np.array(["quiet", "noisy"] * 600, dtype=object)
    noise = np.where(groups == "noisy", 0.08, 0.01) * np.random.default_rng(11).standard_normal(len(configs))
    y = TRUE_COST.predict(X) * np.exp(noise)
    train, test = slice(0, 600), slice(600, None)
    pooled = LatencyRegressor(kind="ridge").fit(X[train], y[train])
    grouped = LatencyRegressor(kind="ridge").fit(X[train], y[train], groups=groups[train])
    assert grouped.group_scales_["noisy"] > grouped.interval_scale_ == pooled.interval_scale_
    assert grouped.group_scales_["quiet"] == grouped.interval_scale_  # its own quantile is smaller
    noisy = groups[test] == "noisy"

    def coverage(model, *args):
        _, low, high = model.predict_interval(X[test], *args)
        inside = (low <= y[test]) & (y[test] <= high)
        return 100 * inside[noisy].mean(), 100 * inside[~noisy].mean()

    pooled_noisy, pooled_quiet = coverage(pooled)
    grouped_noisy, grouped_quiet = coverage(grouped, groups[test])
    assert pooled_noisy < 85 and 85 <= grouped_noisy <= 95
    assert grouped_quiet == pooled_quiet
    restored = LatencyRegressor.from_dict(json.loads(json.dumps(grouped.to_dict())))
    assert restored.group_scales_ == grouped.group_scales_
    older = {key: value for key, value in grouped.to_dict().items() if key != "group_interval_scales"}
    assert LatencyRegressor.from_dict(older).group_scales_ == {}  # stored before group scales: pooled only


def test_a_predictor_applies_the_scale_of_each_config_family():
    from search_spaces.mcga.config import MCGAConfig

    configs, X, y = synthetic(200, seed=12)
    estimator = LatencyRegressor(kind="ridge").fit(X, y, groups=["lowformer"] * len(y))
    estimator.group_scales_ = {"lowformer": 2 * estimator.interval_scale_}  # as if its residuals ran wide
    batch = configs[:5] + [MCGAConfig()] + configs[:2]
    _, low, high = LatencyPredictor(estimator, "d", "ort", 1, 1, "ridge").predict(batch)
    want = estimator.predict_interval(OpFeaturizer().transform(batch), ["lowformer"] * 5 + ["mcga"] + ["lowformer"] * 2)
    np.testing.assert_allclose(low, want[1], rtol=1e-12)
    np.testing.assert_allclose(high, want[2], rtol=1e-12)
    pooled = estimator.predict_interval(OpFeaturizer().transform(batch))
    assert high[5] == pytest.approx(pooled[2][5]) and np.all(np.delete(high > pooled[2], 5))


# -- few-shot ----------------------------------------------------------------------------------

def test_few_shot_calibration_transfers_a_prior_to_a_slower_device():
    """Ten points of a device 3x slower with depthwise 1.5x worse: the scaled prior fits them."""
    _, X, _ = synthetic(110, seed=5, noise=0.0)
    coefficients = TRUE_COST.to_dict()
    device = CostModel({k: 3 * v * (1.5 if k == "depthwise_macs" else 1) for k, v in coefficients.items()})
    y = device.predict(X)
    few = FewShotCalibrator(prior=coefficients).fit(X[:10], y[:10])
    median, low, high = few.predict_interval(X[10:])
    # the alternative it must beat: one global rescale of the prior, fitted on the same ten points
    prior = TRUE_COST.predict(X)
    rescaled = prior[10:] * np.median(y[:10] / prior[:10])
    assert regression_metrics(y[10:], median)["mape"] < 0.6 * regression_metrics(y[10:], rescaled)["mape"]
    assert np.all(median > 0) and np.all(low < median) and np.all(high > median)
    assert len(few.loo_predictions_) == 10


def test_few_shot_without_prior_learns_from_six_points_and_stays_physical():
    configs, X, y = synthetic(60, seed=6)
    few = FewShotCalibrator().fit(X[:6], y[:6])
    median = few.predict(X)
    assert np.all(median > 0) and np.all(np.isfinite(median))
    unfitted = CostModel(GENERIC_COEFFICIENTS).predict(X)  # what it starts from
    fitted_error = regression_metrics(y[6:], median[6:])["mape"]
    assert fitted_error < 0.5 * regression_metrics(y[6:], unfitted[6:])["mape"]


# -- storage -----------------------------------------------------------------------------------

def test_train_store_load_round_trip_predicts_identically(db):
    configs, _, y = synthetic(60, seed=7)
    add_measurements(db, "local", configs, y)
    trained = train_predictor(db, "local", kind="xgboost", folds=3)
    loaded = load_predictor(db, "local")
    assert loaded.kind == "xgboost" and loaded.feature_version == FEATURE_VERSION
    for a, b in zip(trained.predict(configs[:20]), loaded.predict(configs[:20])):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with db.session() as session:
        row = session.query(Predictor).one()
        assert row.model_format == "xgboost-json" and row.is_default
        json.loads(row.model_blob)  # plain JSON, no pickle
        assert set(row.training_arch_ids) == {c.arch_id for c in configs}
        assert {"numpy", "xgboost", "scikit-learn"} <= set(row.library_versions)
        assert row.metrics["model"]["n"] == 60
        assert row.metrics["macs_baseline"]["mape"] > row.metrics["model"]["mape"]


def test_a_rich_device_gets_the_blend_by_default_and_it_stores_as_json(db):
    configs, _, y = synthetic(60, seed=9)
    add_measurements(db, "local", configs, y)
    trained = train_predictor(db, "local", folds=3)
    assert trained.kind == "xgboost-ridge"
    loaded = load_predictor(db, "local")
    np.testing.assert_allclose(trained.predict(configs[:10])[0], loaded.predict(configs[:10])[0], rtol=1e-6)
    with db.session() as session:
        blob = json.loads(session.query(Predictor).one().model_blob)
        assert set(blob["members"][0]) == {"boosted", "ridge"}


def _timed_with_reference(db, configs, latencies, reference_ms, campaign="c") -> None:
    """Measurements of ``configs`` (in order) whose reference model took ``reference_ms``."""
    with db.session() as session:
        for config, ms, ref in zip(configs, latencies, reference_ms):
            arch = upsert_architecture(session, config)
            session.add(Measurement(arch_id=arch.arch_id, device="local", backend="ort", batch=1, threads=1,
                                    resolution=config.resolution, metric="latency_ms", value=float(ms),
                                    median_ms=float(ms), relative_to_reference=float(ms / ref), status="ok",
                                    provenance="measured", campaign=campaign))


def test_drift_correction_follows_slow_drift_and_ignores_one_slow_reference_run(db):
    from predictors.store import load_training_set

    configs, _, true_ms = synthetic(120, seed=10, noise=0.0)
    drift = np.linspace(1.0, 1.3, 120)  # the machine slows down by 30 % over the campaign
    noise = np.exp(np.random.default_rng(0).normal(0, 0.04, 160))  # a reference run is as noisy as any
    reference = 5.0 * drift * noise[:120]
    reference[60] *= 1.8  # one reference run caught a hiccup
    _timed_with_reference(db, configs, true_ms * drift, reference)
    # a repeat pass of the first 40, later, on the slower machine
    _timed_with_reference(db, configs[:40], true_ms[:40] * 1.3, 5.0 * 1.3 * noise[120:], campaign="repeat")
    with db.session() as session:
        data = load_training_set(session, "local")
    assert data.target == "drift-corrected"
    assert data.repeatability["pairs_within_10"] == 100.0
    by_id = dict(zip(data.arch_ids, data.latency_ms))
    log_ratio = np.log(np.array([by_id[c.arch_id] for c in configs]) / true_ms)
    assert np.std(log_ratio) < 0.02  # 0.076 measured as is, 0.064 divided by each reference run
    assert abs(log_ratio[60] - np.median(log_ratio)) < 0.02


def test_with_too_few_repeats_to_rank_the_targets_each_median_is_taken_over_its_own_reference(db):
    """A 10-point campaign on a machine whose speed jumps between measurements. Its 2 drift-check
    pairs happen to agree best as measured (both ran at the first one's speed), which says
    nothing: too few pairs to rank the targets, so each median is taken over the reference timed
    beside it, which follows every jump."""
    from predictors.store import MIN_RANKING_PAIRS, load_training_set

    configs, _, true_ms = synthetic(12, seed=12, noise=0.0)
    rng = np.random.default_rng(1)
    speed = np.exp(rng.uniform(-0.3, 0.3, 12))  # of the machine, per measurement
    timing = np.exp(rng.normal(0, 0.01, 14))  # the reference's own noise
    _timed_with_reference(db, configs, true_ms * speed, 5.0 * speed * timing[:12])
    _timed_with_reference(db, configs[:2], true_ms[:2] * speed[:2], 5.0 * speed[:2] * timing[12:], campaign="check")
    with db.session() as session:
        data = load_training_set(session, "local")
    assert data.repeatability["pairs"] < MIN_RANKING_PAIRS and data.target == "relative"
    by_id = dict(zip(data.arch_ids, data.latency_ms))
    log_ratio = np.log(np.array([by_id[c.arch_id] for c in configs]) / true_ms)
    assert np.std(log_ratio) < 0.03 < np.std(np.log(speed))  # the jumps taken out, the reference's noise left


def test_cli_kinds_are_the_library_kinds():
    from explorer.cli.predict import PREDICTOR_KINDS
    from predictors.latency import KINDS

    assert PREDICTOR_KINDS == KINDS


def test_errors_are_reported_per_family_and_across_families(db):
    from explorer.architectures import FLAT_SPACES

    configs = [c for name in ("lowformer", "mcga", "fmvit") for c in FLAT_SPACES[name].sample(30, seed=4)]
    y = TRUE_COST.predict(OpFeaturizer().transform(configs))
    add_measurements(db, "local", configs, y)
    metrics = train_predictor(db, "local", kind="ridge", folds=3).metrics
    assert set(metrics["by_family"]) == {"lowformer", "mcga", "fmvit"}
    mcga = metrics["by_family"]["mcga"]
    assert mcga["within"]["model"]["n"] == mcga["cross"]["model"]["n"] == 30
    assert mcga["cross"]["trained_on"] == ["fmvit", "lowformer"]
    # a cost model transfers: the op-table features carry across families, noise-free here
    assert mcga["cross"]["model"]["spearman"] > 0.8
    assert mcga["within"]["model"]["mape"] < mcga["within"]["macs_baseline"]["mape"]


def test_few_shot_is_the_default_for_a_published_device(db):
    configs, _, y = synthetic(8, seed=8)
    add_measurements(db, "raspi5-ort", configs, 3 * y, provenance="published", threads=None)
    predictor = train_predictor(db, "raspi5")
    assert predictor.kind == "fewshot" and predictor.device == "raspi5-ort"
    assert predictor.metrics["protocol"] == "leave-one-out"
    median, low, high = load_predictor(db, "raspi5").predict(configs)
    assert np.all((low < median) & (median < high))


def test_missing_predictor_and_unknown_device_errors(db):
    with pytest.raises(NoPredictorError, match="explorer predictor train --device local"):
        load_predictor(db, "local")
    with pytest.raises(UnknownDeviceError, match="known devices"):
        load_predictor(db, "no-such-board")


# -- active learning ---------------------------------------------------------------------------

def test_uncertainty_picks_where_the_ensemble_disagrees_and_spreads_out():
    _, X, y = synthetic(150, seed=9)
    model = LatencyRegressor(kind="ridge", n_members=5).fit(X[:30], y[:30])
    spread = model.log_spread(X[30:])
    picked = select_uncertain(model, X[30:], 10, diversity=0.0)
    assert set(picked) == set(np.argsort(spread)[-10:])
    diverse = select_uncertain(model, X[30:], 10)
    assert len(set(diverse)) == 10 and diverse[0] == np.argmax(spread)


def test_uncertainty_strategy_needs_a_few_measurements(db):
    configs, _, y = synthetic(12, seed=10)
    request = SampleRequest(n=3, seed=0, database=db, device="local")
    with pytest.raises(TrainingDataError, match="--sampler random"):
        uncertainty_sampler(request)
    add_measurements(db, "local", configs, y)
    picked = uncertainty_sampler(request)
    assert len(picked) == 3 and not {c.arch_id for c in picked} & {c.arch_id for c in configs}


# -- command line ------------------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_train_predict_and_report(db, tmp_path, capsys):
    configs, _, y = synthetic(45, seed=11)
    add_measurements(db, "local", configs, y)
    url = db.url
    code, out, _ = run_cli(capsys, "predictor", "train", "--device", "local", "--kind", "ridge", "--folds", "3",
                           "--db", url, "--json")
    assert code == 0
    trained = json.loads(out)
    assert trained["kind"] == "ridge" and trained["model"]["n"] == 45
    assert trained["macs_baseline"]["mape"] > 0
    code, out, _ = run_cli(capsys, "predict", "lowformer-b1", "--device", "local", "--db", url, "--json")
    assert code == 0
    result = json.loads(out)
    assert {"arch_id", "latency_ms", "low_ms", "high_ms", "predictor"} <= set(result)
    assert result["kind"] == "prediction" and result["low_ms"] < result["latency_ms"] < result["high_ms"]
    assert result["arch_id"] == LOWFORMER_PRESETS["lowformer-b1"][0].arch_id
    page = tmp_path / "report.html"
    code, out, _ = run_cli(capsys, "predictor", "report", "--device", "local", "--db", url, "-o", str(page), "--json")
    assert code == 0 and json.loads(out)["kind"] == "ridge"
    assert "plotly" in page.read_text().lower()


def test_cli_errors_name_the_problem(db, capsys):
    code, _, err = run_cli(capsys, "predict", "lowformer-b1", "--device", "local", "--db", db.url)
    assert code == 2 and "explorer predictor train --device local" in err
    code, _, err = run_cli(capsys, "predict", "lowformer-b1", "--device", "no-such-board", "--db", db.url)
    assert code == 2 and "no-such-board" in err and "local" in err
    code, _, err = run_cli(capsys, "predictor", "train", "--device", "local", "--db", db.url)
    assert code == 2 and "explorer measure --device local" in err
