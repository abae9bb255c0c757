"""Latency intervals that widen with an architecture's novelty, knob-group hold-outs, and the cost
structure of a GPU at batch 1."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.architectures import resolve
from predictors.calibration_points import knob_group_holdouts, knob_groups
from predictors.fewshot import LAUNCH_BOUND_COEFFICIENTS, CostModel, FewShotCalibrator
from predictors.metrics import MacsBaseline, regression_metrics
from predictors.transfer import TransferCalibrator
from test_predictors import TRUE_COST, synthetic
from test_transfer import Oracle

ROOT = Path(__file__).resolve().parents[1]
#: a board whose depthwise convolutions cost three times what the source's cost model says
BOARD = CostModel({k: 2.0 * v * (3.0 if k == "depthwise_macs" else 1.0) for k, v in TRUE_COST.to_dict().items()})


def _log_half_width(model, X):
    median, _, high = model.predict_interval(X)
    return np.log(high / median)


def test_an_architecture_far_from_every_calibration_point_gets_a_wider_interval():
    _, X, _ = synthetic(200, seed=31)
    y = BOARD.predict(X) * np.exp(np.random.default_rng(1).normal(0, 0.03, len(X)))
    model = TransferCalibrator({"source": Oracle()}).fit(X[:12], y[:12])
    novelty = model.novelty(X[12:])
    near, far = 12 + int(np.argmin(novelty)), 12 + int(np.argmax(novelty))
    assert novelty.max() > 3 * max(novelty.min(), 0.1)
    width = _log_half_width(model, X[[near, far]])
    assert width[1] > 1.5 * width[0]
    # a calibration point itself gets the narrowest interval there is
    assert _log_half_width(model, X[:1])[0] <= width.min() + 1e-12
    stored = TransferCalibrator.from_dict(model.to_dict(), {"source": Oracle()})
    np.testing.assert_allclose(_log_half_width(stored, X), _log_half_width(model, X))


def test_unlike_architectures_are_covered_about_as_often_as_stated():
    """Calibrated on the small half of the architectures, scored on the large half: the
    constant interval of the same fit (novelty switched off) covers fewer of them."""
    _, X, _ = synthetic(160, seed=41)
    y = BOARD.predict(X) * np.exp(np.random.default_rng(2).normal(0, 0.05, len(X)))
    small = np.argsort(y)
    fit, test = small[:14], small[80:]
    covered = {}
    for unit in (1.0, float("inf")):
        model = TransferCalibrator({"source": Oracle()}, novelty_unit=unit).fit(X[fit], y[fit])
        covered[unit] = regression_metrics(y[test], *model.predict_interval(X[test]))["coverage"]
    assert covered[1.0] >= 90.0 and covered[1.0] >= covered[float("inf")] + 5.0


def test_stored_transfers_without_a_novelty_design_keep_their_constant_interval():
    _, X, y = synthetic(40, seed=33)
    model = TransferCalibrator({"source": Oracle()}).fit(X[:10], y[:10])
    data = model.to_dict()
    data.pop("novelty")
    stored = TransferCalibrator.from_dict(data, {"source": Oracle()})
    width = _log_half_width(stored, X)
    np.testing.assert_allclose(width, stored.log_half_width_)


def _presets():
    names = ["lowformer-b0", "lowformer-b1", "lowformer-b1.5", "lowformer-b2", "lowformer-b3",
             "attention-stack-mhsa", "attention-stack-chcompr", "attention-stack-convlow",
             "attention-stack-convlow-chcompr"]
    return [resolve(name) for name in names]


def test_knob_group_holdouts_hold_out_every_point_of_one_value_and_none_other():
    configs = _presets()
    labels = knob_groups(configs)
    holdouts = knob_group_holdouts(configs)
    assert holdouts
    for holdout in holdouts:
        own = labels[holdout.group]
        assert set(own[holdout.held]) == {holdout.label}
        assert holdout.label not in set(own[~holdout.held])  # no calibration point shares it
    by_group = {(h.group, h.label.split(":")[0]) for h in holdouts}
    # the attention-stack ablations differ in their attention; the LowFormer presets share theirs
    assert ("attention", "attention-stack") in by_group and ("attention", "lowformer") not in by_group
    assert sum(h.group == "attention" for h in holdouts) == 4
    # LowFormer-B3 has a block in every stage, the smaller presets none in the first
    assert ("depth", "lowformer") in by_group


def test_the_new_device_benchmark_scores_knob_groups_that_no_calibration_point_shares(monkeypatch):
    spec = importlib.util.spec_from_file_location("new_device", ROOT / "benchmarks" / "new_device.py")
    benchmark = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "new_device", benchmark)  # its dataclasses look their module up
    spec.loader.exec_module(benchmark)
    _, X, _ = synthetic(60, seed=34)
    configs = synthetic(60, seed=34)[0]
    keys = [f"a{i}" for i in range(len(configs))]
    latency = {name: dict(zip(keys, BOARD.predict(X) * (1 + 0.1 * i))) for i, name in enumerate(benchmark.SETUPS)}
    host = benchmark.HostData(latency, {name: dict.fromkeys(keys, 1.0) for name in benchmark.SETUPS},
                              dict(zip(keys, X)), dict.fromkeys(keys, "lowformer"), tuple(keys),
                              dict(zip(keys, configs)))
    seen = []
    original = benchmark.fit_and_score

    def spy(method, sources, X_pool, y_pool, families, fit, test):
        seen.append((fit, test))
        return original(method, sources, X_pool, y_pool, families, fit, test)

    monkeypatch.setattr(benchmark, "fit_and_score", spy)
    setting = benchmark.Setting(ks=(5,), repeats=1, source_rounds=5)
    rows = benchmark.run_repeat(host, setting, 0)
    assert {r["picks"] for r in rows} == set(benchmark.PICKS)
    rng = np.random.default_rng(0)
    pool = [keys[i] for i in rng.permutation(len(keys))[len(keys) // 2:]]
    labels = knob_groups([host.configs[k] for k in pool])
    knob_rows = [(fit, test) for (fit, test), row in zip(seen, rows) if row["picks"] == "knob-group"]
    assert knob_rows
    for fit, test in knob_rows:
        # every held-out point shares one value of one knob group, which no calibration point has
        assert any(len(set(own[test])) == 1 and not set(own[test]) & set(own[fit]) for own in labels.values())


def test_the_launch_bound_cost_structure_recovers_a_gpu_law_better_than_macs():
    """A GPU at batch 1: a time per kernel launch and little per MAC. Ten measured points."""
    configs, X, _ = synthetic(120, seed=35)
    gpu = CostModel({"dense_macs": 1e-10, "depthwise_macs": 2e-9, "transposed_macs": 1e-9, "attention_macs": 1e-10,
                     "bytes": 1e-9, "compute_launches": 0.035, "elementwise_launches": 0.006})
    y = gpu.predict(X) * np.exp(np.random.default_rng(3).normal(0, 0.03, len(X)))
    fit, test = np.arange(10), np.arange(10, len(X))
    launch = FewShotCalibrator(LAUNCH_BOUND_COEFFICIENTS).fit(X[fit], y[fit])
    macs = MacsBaseline().fit(X[fit], y[fit])
    generic = FewShotCalibrator().fit(X[fit], y[fit])  # the prior of a CPU, where MACs take the time
    launch_mape = regression_metrics(y[test], launch.predict(X[test]))["mape"]
    assert launch_mape < 0.5 * regression_metrics(y[test], macs.predict(X[test]))["mape"]
    assert launch_mape < regression_metrics(y[test], generic.predict(X[test]))["mape"]
    # a transfer from a CPU source weighs the launch-bound candidate in
    transfer = TransferCalibrator({"cpu": Oracle()}).fit(X[fit], y[fit])
    assert transfer.source_weights.get("launch-bound", 0.0) > 0.5
    assert regression_metrics(y[test], transfer.predict(X[test]))["mape"] < 1.5 * launch_mape


@pytest.mark.parametrize("name", ["lowformer-b1"])
def test_launch_bound_prior_counts_the_kernels_of_a_preset(name):
    """The prior's figures: LowFormer-B1 on a TITAN RTX at batch 1 takes 4.0 ms, most of it launches."""
    from predictors.features import OpFeaturizer

    X = OpFeaturizer().transform([resolve(name)])
    terms = CostModel(LAUNCH_BOUND_COEFFICIENTS).term_times(X)[0]
    launches = terms[-2:].sum()
    assert launches > 0.7 * terms.sum() and 2.0 < terms.sum() < 6.0


def test_points_measured_twice_keep_intervals_finite():
    """Twins put half the calibration points at distance zero from a neighbour: the unit of
    novelty stays positive and the intervals finite."""
    _, X, y = synthetic(40, seed=36)
    twins = np.vstack([X[:6], X[:6]])
    model = TransferCalibrator({"source": Oracle()}).fit(twins, np.concatenate([y[:6], 1.02 * y[:6]]))
    median, low, high = model.predict_interval(X[6:])
    assert np.all(np.isfinite(high)) and np.all(high / median < 20) and np.all(low > 0)


def test_a_point_trusted_less_widens_the_interval_less():
    """Reconstructions (weight 0.1) far off the law count a tenth each in the interval's quantile."""
    from predictors.transfer import _weighted_conformal_quantile

    scores = np.concatenate([np.linspace(0.05, 0.21, 17), [2.0, 2.1, 2.2]])
    equal = np.ones(len(scores))
    assert _weighted_conformal_quantile(scores, equal, 0.9) > 1.0
    # equal weights: the ceil((n + 1) coverage)-th smallest score, as split-conformal prescribes
    assert _weighted_conformal_quantile(scores, equal, 0.9) == np.sort(scores)[int(np.ceil(21 * 0.9)) - 1]
    trusted_less = np.where(scores > 1.0, 0.1, 1.0)
    assert _weighted_conformal_quantile(scores, trusted_less, 0.9) < 0.5
    assert _weighted_conformal_quantile(scores[:3], equal[:3], 0.9) == 1.5 * scores[2]  # too few points
