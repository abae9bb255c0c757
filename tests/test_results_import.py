"""``explorer results import``: validation naming line and field, idempotence, surrogate refit."""

from __future__ import annotations

import json

import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import open_database
from predictors.results import (
    ResultsImportError,
    import_results,
    known_results,
    load_published_accuracies,
    published_accuracies,
)
from search_spaces.base import arch_id


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "r.db")
    load_published_accuracies(database)
    return database


GOOD_CSV = """name,resolution,dataset,top1,epochs,source
lowformer-e1,,imagenet,78.8,300,training-repo run 1
lowformer-b1-mlpless,,ImageNet,78.1,100,training-repo run 2
"""


def test_import_stores_results_and_refits_the_surrogate(db, tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(GOOD_CSV)
    summary = import_results(db, path)
    assert (summary.rows, summary.inserted, summary.updated, summary.unchanged) == (2, 2, 0, 0)
    published = len({(name, res) for name, res, _, _ in published_accuracies()})
    assert summary.surrogate_loo["n"] == published + 1  # E1 is published too; b1-mlpless is new
    imported = known_results(db, provenance="imported")
    assert {r.name for r in imported} == {"lowformer-e1", "lowformer-b1-mlpless"}
    assert {r.dataset for r in imported} == {"imagenet"}
    assert {r.epochs for r in imported} == {300, 100}


def test_import_is_idempotent(db, tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(GOOD_CSV)
    import_results(db, path)
    again = import_results(db, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert len(known_results(db, provenance="imported")) == 2


def test_jsonl_by_config_and_by_arch_id(db, tmp_path):
    config = resolve("lowformer-b0").with_resolution(160)
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"config": config.to_dict(), "dataset": "cifar100", "top1": 70.5}) + "\n")
    assert import_results(db, path).inserted == 1
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps({"arch_id": arch_id(config), "dataset": "cifar100", "top1": 71.0, "epochs": 50}) + "\n")
    assert import_results(db, again).inserted == 1
    results = known_results(db, dataset="cifar100")
    assert [r.arch_id for r in results] == [arch_id(config)] * 2
    assert results[0].source == "import:results.jsonl"


def test_bad_rows_are_named_by_line_and_field_and_nothing_is_written(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "name,dataset,top1,epochs\n"
        "lowformer-b1,imagenet,79.9,300\n"
        "lowformer-b1,imagenet,0.799x,300\n"
        "lowformer-b9,imagenet,70,300\n"
        "lowformer-b0,,70,300\n"
        "lowformer-b0,imagenet,170,300\n"
        "lowformer-b0,imagenet,70,-3\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    assert [(line, field) for line, field, _ in err.value.problems] == [
        (3, "top1"), (4, "name"), (5, "dataset"), (6, "top1"), (7, "epochs")]
    message = str(err.value)
    assert "line 3, field 'top1'" in message and "'0.799x' is not a number" in message
    assert "unknown architecture 'lowformer-b9'" in message
    assert known_results(db, provenance="imported") == []


def test_row_must_name_exactly_one_architecture(db, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"name": "lowformer-b1", "arch_id": "0" * 16, "dataset": "imagenet", "top1": 80}) + "\n"
                    + json.dumps({"arch_id": "f" * 16, "dataset": "imagenet", "top1": 80}) + "\n"
                    + "{not json\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    assert err.value.problems[0][:2] == (3, "*")
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    assert [(line, field) for line, field, _ in err.value.problems] == [(1, "arch_id|config|name"), (2, "arch_id")]


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    path = tmp_path / "results.txt"
    path.write_text("x")
    assert main(["results", "import", str(path), "--db", str(tmp_path / "c.db"), "--create-db"]) == 2
    assert "allowed: .csv, .jsonl" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV)
    assert main(["results", "import", str(good), "--db", str(tmp_path / "c.db"), "--create-db", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inserted"] == 2
