"""No predictor worse than a simpler one: ``explorer predictor train`` serves the kind with the
lowest leave-one-out error among those it evaluated and MACs alone, says how many more points a
device needs, and ``explorer predict`` says when an interval is too wide to be useful."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import Predictor, open_database
from explorer.devices import DeviceProfile, add_device
from explorer.measure import Job, JobResult, ProtocolResult, record_result, summarize
from predictors import load_predictor, train_predictor
from predictors.features import FEATURE_INDEX, FEATURE_VERSION, OpFeaturizer
from predictors.fewshot import MacsCalibrator
from predictors.latency import USEFUL_INTERVAL_RATIO, interval_too_wide
from predictors.metrics import MacsBaseline
from predictors.store import TRANSFER_POINTS, serving_choice

SHIPPED_DB = Path(__file__).resolve().parents[1] / "measurements.db"
#: three architectures a new board measured, far apart in MACs
POINTS = ("lowformer-b0", "lowformer-b1", "lowformer-b3")


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory) -> Path:
    """A copy of the shipped database: its rich device's predictors are the transfer's sources."""
    if not SHIPPED_DB.exists():
        pytest.skip("needs the shipped measurements.db")
    path = tmp_path_factory.mktemp("choice") / "measurements.db"
    path.write_bytes(SHIPPED_DB.read_bytes())
    return path


def add_board(path: Path, name: str, latency_of_macs) -> None:
    """A new measured profile with one measurement of each of :data:`POINTS`, ``latency_of_macs``
    of its MACs (stored through the path ingestion takes)."""
    configs = [resolve(point) for point in POINTS]
    macs = OpFeaturizer().transform(configs)[:, FEATURE_INDEX["total.macs"]]
    database = open_database(str(path))
    with database.session() as session:
        add_device(session, DeviceProfile(name=name, backend="ort", default_threads=1))
        for config, ms in zip(configs, latency_of_macs(macs)):
            samples = (float(ms),) * 5
            record_result(session, name, JobResult(Job(config, "ort", 1, 1), "ok",
                                                   ProtocolResult(samples, samples, summarize(samples))), "ingested")


def test_a_transfer_worse_than_macs_alone_is_not_served(shipped_copy, capsys):
    """A board slower on smaller models (a power law of MACs with a negative exponent): the
    transfer from the development host ranks its three points backwards, MACs alone fits them."""
    add_board(shipped_copy, "odd-board", lambda macs: 40.0 * (macs / 1e8) ** -0.7)
    db = open_database(str(shipped_copy))
    predictor = train_predictor(db, "odd-board")
    choice = predictor.metrics["choice"]
    assert set(choice["mape"]) == {"transfer", "fewshot", "macs"}
    assert choice["mape"]["transfer"] > choice["mape"]["macs"] + 10  # the case: a transfer worse than MACs
    assert predictor.kind == "macs" == choice["served"] and choice["worse_than"] == []
    assert set(predictor.metrics["alternatives"]) == {"transfer", "fewshot"}
    assert load_predictor(db, "odd-board").kind == "macs"
    more = predictor.metrics["more_points"]
    assert (more["measured"], more["target"], more["more"]) == (3, TRANSFER_POINTS, TRANSFER_POINTS - 3)
    assert "--sampler calibrate --n 7" in more["command"]

    assert main(["predictor", "train", "--device", "odd-board", "--db", str(shipped_copy)]) == 0
    out = capsys.readouterr().out
    assert "serving macs" in out and "3 points: measure 7 more" in out

    # asked for by name, the transfer is served, and said to be worse
    assert main(["predictor", "train", "--device", "odd-board", "--kind", "transfer", "--db", str(shipped_copy)]) == 0
    assert "serving transfer as asked, worse than macs" in capsys.readouterr().out
    assert main(["predict", "lowformer-b2", "--device", "odd-board", "--db", str(shipped_copy), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["interval_ratio"] == pytest.approx(result["high_ms"] / result["low_ms"])
    assert result["interval_too_wide"] == (result["interval_ratio"] > USEFUL_INTERVAL_RATIO)


def test_a_transfer_that_beats_the_simpler_models_is_served(shipped_copy):
    """Three points that follow the development host's own predictor, scaled: the transfer's case."""
    source = load_predictor(open_database(str(shipped_copy)), "dev-epyc-2c-ort")
    truth = dict(zip(POINTS, 2.5 * source.predict([resolve(p) for p in POINTS])[0]))
    add_board(shipped_copy, "scaled-board", lambda macs: np.array([truth[p] for p in POINTS]))
    choice = train_predictor(open_database(str(shipped_copy)), "scaled-board").metrics["choice"]
    assert choice["served"] == "transfer" and choice["mape"]["transfer"] < min(choice["mape"]["fewshot"],
                                                                              choice["mape"]["macs"])


def test_the_choice_prefers_the_richer_kind_on_a_tie_and_never_a_worse_one():
    def evaluation(model, macs):
        return {"model": {"mape": model}, "macs_baseline": {"mape": macs}}

    assert serving_choice({"transfer": evaluation(10.0, 20.0), "fewshot": evaluation(10.0, 20.0)})["served"] == "transfer"
    assert serving_choice({"transfer": evaluation(12.0, 20.0), "fewshot": evaluation(11.0, 20.0)})["served"] == "fewshot"
    assert serving_choice({"transfer": evaluation(122.0, 44.1), "fewshot": evaluation(18.6, 44.1)})["served"] == "fewshot"
    assert serving_choice({"transfer": evaluation(122.0, 44.1), "fewshot": evaluation(50.0, 44.1)})["served"] == "macs"
    asked = serving_choice({"transfer": evaluation(122.0, 44.1)}, "transfer")
    assert asked["served"] == "transfer" and asked["worse_than"] == ["macs"]


def test_an_interval_is_too_wide_when_its_ends_are_more_than_three_times_apart(shipped_copy, capsys):
    assert interval_too_wide(7.65, 993.0) and not interval_too_wide(20.0, 50.0)
    add_board(shipped_copy, "wide-board", lambda macs: 40.0 * (macs / 1e8) ** -0.7)
    db = open_database(str(shipped_copy))
    with db.session() as session:  # 1 ms for anything, with a leave-one-out log error of 1 (a factor of e)
        model = MacsCalibrator()
        model.coef_, model.log_sigma_ = np.zeros(2), 1.0
        session.add(Predictor(device="wide-board", backend="ort", batch=1, threads=1, kind="macs",
                              feature_version=FEATURE_VERSION, model_format="json",
                              model_blob=json.dumps(model.to_dict()), metrics={}, training_arch_ids=[],
                              library_versions={}, is_default=True))
    assert main(["predict", "lowformer-b1", "--device", "wide-board", "--db", str(shipped_copy)]) == 0
    out = capsys.readouterr().out
    assert "too wide to decide a latency budget on" in out and f"more than {USEFUL_INTERVAL_RATIO:g}x" in out


def test_macs_only_leave_one_out_is_refitting_without_each_point():
    configs = [resolve(point) for point in ("lowformer-b0", "lowformer-b1", "lowformer-b2", "lowformer-b3")]
    X = OpFeaturizer().transform(configs)
    y = np.array([3.0, 5.0, 4.0, 9.0])
    model = MacsCalibrator().fit(X, y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        refit = MacsBaseline().fit(X[keep], y[keep]).predict(X[i:i + 1])[0]
        assert model.loo_predictions_[i] == pytest.approx(refit, rel=1e-6)
    again = MacsCalibrator.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict_interval(X), model.predict_interval(X))
