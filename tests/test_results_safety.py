"""Results that cannot corrupt the accuracy model: fractions and contradictions refused (stored
only with --force, said loudly), results listed and removed, and every arch id the tool prints
(suggestions, search trials) or a config.json path accepted by ``results import``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import open_database
from explorer.measure.campaign import read_config_file
from explorer.search.journal import open_storage
from explorer.search.lookup import trial_lookup
from explorer.search.space import FLAT_SPACES
from explorer.search.suggest import Suggestion, keep_suggestions
from predictors.results import (
    PUBLISHED,
    PUBLISHED_TOLERANCE,
    SURROGATE_MARGIN_STD,
    ResultsImportError,
    import_results,
    known_results,
    load_published_accuracies,
    load_surrogate,
)
from search_spaces.base import arch_id

SHIPPED = Path(__file__).resolve().parents[1] / "measurements.db"


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "r.db")
    load_published_accuracies(database)
    return database


def _published(db, name: str) -> float:
    (result,) = [r for r in known_results(db, provenance=PUBLISHED, dataset="imagenet")
                 if r.name == name and r.config.resolution == 224]
    return result.top1


def _sampled(seed: int):
    return FLAT_SPACES["lowformer"].sample(1, seed, resolution=224)[0]


def test_a_fraction_is_refused_with_the_percentage_it_meant(db, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("name,dataset,top1,epochs,source\nlowformer-b0,imagenet,0.781,300,frac-test\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    message = str(err.value)
    assert "line 2, field 'top1'" in message and "looks like a fraction: did you mean 78.1?" in message
    assert "\n" not in message
    assert known_results(db, provenance="imported") == []


def test_out_of_range_is_refused(db, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("name,dataset,top1\nlowformer-b0,imagenet,101\nlowformer-b1,imagenet,-3\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    assert [(line, field) for line, field, _ in err.value.problems] == [(2, "top1"), (3, "top1")]
    assert all("out of range; allowed: 0-100" in message for _, _, message in err.value.problems)
    assert main(["results", "import", str(path), "--db", db.url]) == 2
    assert "out of range" in capsys.readouterr().err
    assert known_results(db, provenance="imported") == []


def test_a_result_contradicting_the_published_one_needs_force(db, tmp_path, capsys):
    published = _published(db, "lowformer-b0")
    wrong = published - PUBLISHED_TOLERANCE - 4
    path = tmp_path / "r.csv"
    path.write_text(f"name,dataset,top1,epochs\nlowformer-b0,imagenet,{wrong:.1f},100\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    message = str(err.value)
    assert "line 2, field 'top1'" in message and "contradicts the published" in message and "--force" in message
    assert known_results(db, provenance="imported") == []

    assert main(["results", "import", str(path), "--db", db.url, "--json", "--force"]) == 0
    out = capsys.readouterr()
    (warning,) = json.loads(out.out)["warnings"]
    assert (warning["line"], warning["field"]) == (2, "top1") and "contradicts the published" in warning["message"]
    assert "WARNING" in out.err and "stored because of --force" in out.err
    (stored,) = known_results(db, provenance="imported")
    assert stored.top1 == pytest.approx(wrong, abs=0.05)


def test_a_result_far_outside_the_surrogate_interval_needs_force(db, tmp_path):
    config = resolve("lowformer-b1", 240)  # between its published 224 and 256 px results
    prediction = load_surrogate(db).predict([config])
    far = float(prediction.high[0] + SURROGATE_MARGIN_STD * prediction.std[0] + 3)
    near = float(prediction.mean[0])
    assert far <= 100
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"config": {"space": config.space, **config.to_dict()}, "dataset": "imagenet",
                                "top1": round(far, 1)}) + "\n")
    with pytest.raises(ResultsImportError) as err:
        import_results(db, path)
    assert "far outside the surrogate's ~90 % interval" in str(err.value)
    assert import_results(db, path, force=True).warnings[0].arch_id == arch_id(config)
    path.write_text(json.dumps({"config": {"space": config.space, **config.to_dict()}, "dataset": "imagenet",
                                "top1": round(near, 1), "source": "near"}) + "\n")
    assert import_results(db, path).warnings == ()


def test_results_are_listed_and_removed(db, tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text("name,dataset,top1,epochs\nlowformer-b0,cifar100,81.5,200\nlowformer-b1,cifar100,83.0,200\n")
    import_results(db, path)
    assert main(["results", "list", "--db", db.url, "--provenance", "imported", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed] == ["lowformer-b0", "lowformer-b1"]
    assert {r["source"] for r in listed} == {"import:mine.csv"} and {r["dataset"] for r in listed} == {"cifar100"}
    assert main(["results", "list", "lowformer-b1", "--db", db.url, "--dataset", "CIFAR100", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [listed[1]["id"]]
    assert main(["results", "list", "--db", db.url, "--source", "nothing-like-it", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["results", "remove", "999999", "--db", db.url]) == 2
    err = capsys.readouterr().err
    assert "unknown result id(s) 999999" in err and "\n" not in err.strip()
    published_id = known_results(db, provenance=PUBLISHED)[0].result_id
    assert main(["results", "remove", str(published_id), str(listed[0]["id"]), "--db", db.url]) == 2
    assert "published" in capsys.readouterr().err
    assert len(known_results(db, provenance="imported")) == 2  # nothing removed on a refusal

    assert main(["results", "remove", str(listed[0]["id"]), "--db", db.url, "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)["removed"]] == [listed[0]["id"]]
    assert main(["results", "remove", "--source", "import:mine.csv", "--db", db.url]) == 0
    assert "removed 1 results" in capsys.readouterr().out
    assert known_results(db, provenance="imported") == []
    n_published = len(known_results(db, provenance=PUBLISHED))
    assert main(["results", "remove", str(published_id), "--db", db.url, "--force"]) == 0
    assert len(known_results(db, provenance=PUBLISHED)) == n_published - 1


def test_a_suggested_id_resolves_in_import_predict_space_show_and_measure_file(tmp_path, capsys):
    shutil.copy(SHIPPED, tmp_path / "m.db")  # the shipped latency predictors, for predict
    db = open_database(tmp_path / "m.db")
    config = _sampled(5)
    key = arch_id(config)
    path = tmp_path / "r.csv"
    path.write_text(f"arch_id,dataset,top1\n{key},cifar100,70.0\n")
    with pytest.raises(ResultsImportError, match="is not an architecture of the database"):
        import_results(db, path)
    keep_suggestions(db, [Suggestion(config, 0.1, 70.0, 68.0, 72.0, 30.0, 35.0, "lowformer-b0 @ 224")])
    assert import_results(db, path).inserted == 1
    (stored,) = known_results(db, provenance="imported")
    assert stored.arch_id == key
    assert main(["predict", key, "--device", "raspi5", "--db", db.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch_id"] == key
    assert main(["space", "show", key, "--db", db.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch_id"] == key
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{key}\nlowformer-b0\n")
    assert [arch_id(c) for c in read_config_file(ids, None, db)] == [key, arch_id(resolve("lowformer-b0"))]
    assert main(["space", "show", "0123456789abcdef", "--db", db.url]) == 2
    assert "nor an arch id of" in capsys.readouterr().err


def test_a_config_json_path_and_a_name_in_the_config_column(db, tmp_path):
    config = _sampled(7)
    package = tmp_path / "exports" / "suggestion-1"
    package.mkdir(parents=True)
    (package / "config.json").write_text(config.to_json() + "\n")  # what `explorer export` writes
    path = tmp_path / "r.csv"
    path.write_text("config,dataset,top1\n"
                    "exports/suggestion-1/config.json,cifar100,70.0\n"
                    "lowformer-b1,cifar100,80.0\n"
                    f"\"{json.dumps(config.to_dict()).replace(chr(34), chr(34) * 2)}\",cifar10,90.0\n")
    assert import_results(db, path).inserted == 3
    assert [r.arch_id for r in known_results(db, provenance="imported")] == [
        arch_id(config), arch_id(resolve("lowformer-b1")), arch_id(config)]
    path.write_text("config,dataset,top1\nexports/nothing/config.json,cifar100,70.0\n")
    with pytest.raises(ResultsImportError, match="line 2, field 'config'.*the path of a config.json"):
        import_results(db, path)


def test_a_search_trial_id_is_imported(db, tmp_path, capsys):
    config = _sampled(9)
    key = arch_id(config)
    storage_url = "sqlite:///" + str(tmp_path / "studies.db")
    study = optuna.create_study(study_name="s", storage=open_storage(storage_url))
    study.set_user_attr("resolution", 224)
    params = FLAT_SPACES["lowformer"].to_flat(config)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()},
        value=1.0, user_attrs={"arch_id": key}))
    assert trial_lookup(storage_url)(key) == config
    assert trial_lookup("sqlite:///" + str(tmp_path / "none.db"))(key) is None
    assert not (tmp_path / "none.db").exists()
    path = tmp_path / "r.csv"
    path.write_text(f"arch_id,dataset,top1\n{key},cifar100,70.0\n")
    assert main(["results", "import", str(path), "--db", db.url, "--storage", storage_url]) == 0
    assert [r.arch_id for r in known_results(db, provenance="imported")] == [key]


@pytest.mark.slow
def test_readme_suggest_train_import_walkthrough(tmp_path, capsys):
    """README, "Closing the loop": suggest (exported), train, import; on a copy of the shipped
    database. The 'training' is the surrogate's own mean, which no check refuses."""
    db_path = tmp_path / "m.db"
    shutil.copy(SHIPPED, db_path)
    db = ["--db", str(db_path)]
    assert main(["suggest", "--device", "raspi5", "--budget", "40ms", "--n", "2", "--to", str(tmp_path / "s"),
                 "--json", *db]) == 0
    report = json.loads(capsys.readouterr().out)
    first, second = report["suggestions"]
    assert len(report["exported"]) == 2
    package = next(p for p in report["exported"] if p.endswith(second["arch_id"]))
    results = tmp_path / "RESULTS.csv"
    results.write_text("arch_id,config,dataset,top1,epochs,source\n"
                       f"{first['arch_id']},,imagenet,{first['top1_mean']:.1f},300,walkthrough\n"
                       f",{package}/config.json,imagenet,{second['top1_mean']:.1f},300,walkthrough\n")
    assert main(["results", "import", str(results), "--json", *db]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["inserted"], summary["warnings"]) == (2, [])
    assert main(["results", "list", "--source", "walkthrough", "--json", *db]) == 0
    assert {r["arch_id"] for r in json.loads(capsys.readouterr().out)} == {first["arch_id"], second["arch_id"]}
    assert main(["predict", first["arch_id"], "--device", "raspi5", "--json", *db]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["arch_id"] == first["arch_id"]
    assert np.isclose(predicted["latency_ms"], first["latency_ms"], rtol=0.05)
