"""``explorer proxy score`` and ``explorer proxy report``; the default objective rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import open_database
from predictors.calibration import calibration_report, default_objective, partial_kendall
from predictors.proxies import available_objectives
from predictors.results import known_results, load_published_accuracies, published_accuracies
from search_spaces.base import arch_id


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "cli.db"
    load_published_accuracies(open_database(path))
    return str(path)


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_proxy_score_json_has_every_score_and_the_default(db_path, capsys):
    out = run_json(capsys, "proxy", "score", "lowformer-b0", "--score-resolution", "32", "--db", db_path, "--json")
    assert out["arch_id"] == arch_id(resolve("lowformer-b0"))
    assert set(available_objectives()) <= set(out)
    assert out["params"] == 14_100_472 and out["microtask"] is None  # not cached, not requested
    assert out["default"]["name"] in available_objectives()
    assert out["default"]["value"] == out[out["default"]["name"]]
    surrogate = out["details"]["surrogate"]
    assert surrogate["label"].startswith("surrogate top-1 (predicted") and surrogate["std"] > 0
    low, high = surrogate["interval_90"]
    assert low < surrogate["mean"] == out["surrogate"] < high
    assert out["surrogate-pessimistic"] == pytest.approx(low) and out["surrogate-optimistic"] == pytest.approx(high)
    assert surrogate["nearest_result"] == {"name": "lowformer-b0 @ 224", "top1": 78.4}


def test_proxy_score_single_objective(db_path, capsys):
    out = run_json(capsys, "proxy", "score", "lowformer-b1", "--objective", "macs", "--db", db_path, "--json")
    assert out["macs"] == pytest.approx(1410.98e6, abs=1e4)
    assert "naswot" not in out and "default" in out


def test_proxy_score_text_says_what_each_value_is(db_path, capsys):
    assert main(["proxy", "score", "lowformer-b1-relu-linear-attention", "--objective", "surrogate", "--db", db_path]) == 0
    text = capsys.readouterr().out
    assert "surrogate top-1 (predicted" in text and "EXTRAPOLATION" in text and "nearest result" in text


def test_unknown_objective_is_a_clean_error(db_path, capsys):
    assert main(["proxy", "score", "lowformer-b1", "--objective", "accuracy", "--db", db_path]) == 2
    assert "allowed: default, params" in capsys.readouterr().err


def test_report_json_on_published_results(db_path, capsys):
    out = run_json(capsys, "proxy", "report", "--no-compute", "--db", db_path, "--json")
    n = len({(name, res) for name, res, _, _ in published_accuracies()})
    assert out["result_sets"] == {"published:imagenet": n}
    rows = {row["score"]: row for row in out["evidence"]}
    assert rows["macs"]["n"] == n and rows["macs"]["kendall_tau"] > 0.5
    assert rows["params"]["partial_tau_params"] is None
    assert rows["naswot"]["n"] == 0  # --no-compute: nothing cached yet
    assert out["surrogate"]["loo"]["n"] == n and set(out["surrogate"]["leave_one_family_out"]) >= {"fmvit", "mcga"}
    # the surrogate's ranking is held out (leave-one-out), and it is what the evidence picks; the
    # search then uses its pessimistic bound
    assert rows["surrogate"]["kendall_tau"] > rows["params"]["kendall_tau"] + 0.1
    assert out["default"] == "surrogate-pessimistic" and "pessimistic" in out["default_reason"]


def test_default_objective_follows_the_evidence(db_path):
    db = open_database(db_path)
    report = calibration_report(db, compute=False)
    assert default_objective(db) == report.default
    assert default_objective(None) == "params"


def test_default_without_evidence_is_params(tmp_path):
    assert default_objective(open_database(tmp_path / "empty.db")) == "params"


def test_partial_kendall_separates_size_from_extra_information():
    size = np.arange(1.0, 9.0)
    top1 = np.array([3, 1, 4, 1.5, 5, 9, 2, 6])
    assert partial_kendall(size**2, top1, size) is None  # a function of size adds nothing beyond it
    assert partial_kendall(top1, top1, size) == pytest.approx(1.0)  # knows what size does not


def test_proxy_score_trains_the_micro_task_on_an_image_folder_when_asked(db_path, tmp_path, capsys):
    from PIL import Image

    for index, name in enumerate(("dark", "light")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (36, 36), (40 + 160 * index + i,) * 3).save(tmp_path / "data" / name / f"{i}.png")
    argv = ["proxy", "score", "lowformer-b0", "--objective", "microtask", "--data", str(tmp_path / "data"),
            "--steps", "30", "--db", db_path, "--json"]
    out = run_json(capsys, *argv)
    # trained and scored on the folder: the top-1 of its 4 held-out images (whether 30 steps at the
    # default batch of 32 learn depends on the seed and the CPU: 50 % here, 100 % on another host;
    # the learning itself is tested in test_proxies_microtask.py)
    assert out["microtask"] in (0.0, 25.0, 50.0, 75.0, 100.0)
    (result,) = known_results(open_database(db_path), provenance="micro-task")
    assert result.dataset.startswith("imagefolder:data-") and result.top1 == out["microtask"]
    assert out["details"]["microtask"]["cached"] is False
    assert run_json(capsys, *argv)["details"]["microtask"]["cached"] is True
