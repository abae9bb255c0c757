"""`explorer search --space`: one family's knob table, or every family at once (`all`)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import optuna
import pytest

from explorer.architectures import FAMILIES, FLAT_SPACES, NAMED_ARCHITECTURES, family_of, resolve
from explorer.cli import main
from explorer.errors import UserError
from explorer.search import (
    Evaluator,
    SearchSettings,
    open_storage,
    run_search,
    search_report,
    shortlist,
    trial_config,
)
from explorer.search.nearest import nearest_preset
from explorer.search.space import reference_configs, seed_params
from explorer.search.study import SearchSetupError, StudyMismatchError, evaluations
from search_spaces.base import arch_id

from test_search import LogParams, MacsLatency, fake_models, settings


def _families(study: optuna.Study) -> Counter:
    return Counter(t.user_attrs["family"] for t, _ in evaluations(study))


def test_one_family_space_seeds_its_presets_and_rebuilds_every_trial(tmp_path):
    study = run_search(settings(40, space="mcga", sampler="random"), f"sqlite:///{tmp_path}/s.db", fake_models)
    rows = evaluations(study)
    seeds = seed_params(224, "mcga")
    assert set(seeds) == {"mcga-paper", "mcga-budget"}  # both presets lie in the knob table
    assert [t.params for t, _ in rows[:2]] == list(seeds.values())
    assert study.user_attrs["space"] == "mcga" and _families(study) == {"mcga": 40}
    for trial, evaluation in rows:
        assert set(trial.params) == set(FLAT_SPACES["mcga"].knobs) and trial.user_attrs["space"] == "mcga"
        assert arch_id(trial_config(study, trial)) == evaluation.arch_id


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "random"])
def test_all_searches_every_family_with_every_sampler(tmp_path, sampler):
    study = run_search(settings(90, space="all", sampler=sampler, batch_size=30), f"sqlite:///{tmp_path}/s.db",
                       fake_models)
    assert set(_families(study)) == set(FAMILIES) and sum(_families(study).values()) == 90
    sampled = FAMILIES if sampler == "nsga2" else None  # NSGA-II: every family's knobs in every trial
    for trial, evaluation in evaluations(study):
        family = trial.params["space"]
        assert trial.user_attrs["family"] == family
        assert set(trial.params) == {"space", *(f"{f}.{knob}" for f in sampled or (family,)
                                                for knob in FLAT_SPACES[f].knobs)}
        config = trial_config(study, trial)
        assert family_of(config.space) == family and arch_id(config) == evaluation.arch_id


def test_all_seeds_every_familys_presets_and_reports_them(tmp_path):
    evaluator = Evaluator(*fake_models())
    study = run_search(settings(60, space="all", sampler="random", batch_size=30), f"sqlite:///{tmp_path}/s.db",
                       fake_models, evaluator=evaluator)
    seeded = [arch_id(trial_config(study, t)) for t, _ in evaluations(study)[:len(seed_params(224, "all"))]]
    in_table = [name for family in FAMILIES for name, entry in NAMED_ARCHITECTURES.items()
                if entry.kind in ("preset", "ablation") and family_of(entry.make(None).space) == family
                and FLAT_SPACES[family].contains(entry.make(224))]
    assert seeded == [arch_id(NAMED_ARCHITECTURES[name].make(224)) for name in in_table]
    assert {family_of(NAMED_ARCHITECTURES[name].make(None).space) for name in in_table} == set(FAMILIES)

    report = search_report(study, evaluator, top=8)
    assert report["space"] == "all"
    assert [r["name"] for r in report["references"]] == list(reference_configs(224, "all"))
    assert {r["family"] for r in report["references"]} == set(FAMILIES)
    for row in report["shortlist"] + report["references"]:
        # the nearest preset is one of the row's own family, and a preset is its own nearest
        assert family_of(NAMED_ARCHITECTURES[row["nearest_preset"]].make(None).space) == row["family"]
        assert row["preset_distance"] == 0.0 or row["name"] is None
        assert {"trial", "name", "family", "arch_id", "score", "latency_ms", "low_ms", "high_ms",
                "latency_provenance", "meets_budget", "macs", "params", "nearest_preset", "preset_distance",
                "knobs", "config"} <= set(row)


def test_nearest_preset_stays_within_the_family():
    for family in FAMILIES:
        config = FLAT_SPACES[family].sample(1, seed=3)[0]
        name, distance = nearest_preset(config)
        assert family_of(NAMED_ARCHITECTURES[name].make(None).space) == family and distance > 0
    assert nearest_preset(NAMED_ARCHITECTURES["lowformer-b1"].make(None)) == ("lowformer-b1", 0.0)


def test_a_study_keeps_its_space(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    run_search(settings(20, space="fmvit"), storage, fake_models)
    with pytest.raises(StudyMismatchError, match="space 'fmvit' \\(asked: 'all'\\)"):
        run_search(settings(40, space="all"), storage, fake_models)
    assert SearchSettings("raspi5", 40.0, "params", space="mcga").name == "raspi5-40ms-params-mcga"
    assert SearchSettings("raspi5", 40.0, "params").name == "raspi5-40ms-params"  # LowFormer studies keep theirs
    with pytest.raises(UserError, match="invalid space 'vit'; allowed: lowformer, efficientvit, .*, all"):
        settings(10, space="vit")


def test_a_study_without_a_stored_space_searched_lowformer(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    old = optuna.create_study(study_name="test", storage=open_storage(storage), directions=["maximize", "minimize"])
    for key, value in {"device": "fake", "budget_ms": 10.0, "objective": "log-params", "resolution": 224,
                       "objective_label": LogParams.label, "predictor": MacsLatency.name}.items():
        old.set_user_attr(key, value)  # what a study stored before --space existed
    with pytest.raises(StudyMismatchError, match="space 'lowformer' \\(asked: 'mcga'\\)"):
        run_search(settings(20, space="mcga"), storage, fake_models)
    study = run_search(settings(20), storage, fake_models)
    assert "space" not in study.user_attrs and _families(study) == {"lowformer": 20}
    assert all(c.config.space == "lowformer" for c in shortlist(study, 3))


class LowFormerOnlyScore:
    name, label = "lowformer-only", "a score defined for LowFormer only"

    def score(self, configs):
        if any(c.space != "lowformer" for c in configs):
            raise ValueError("this score knows only the 'lowformer' space")
        return fake_models()[1].score(configs)


def test_a_score_that_cannot_score_a_family_fails_before_the_search(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    evaluator = Evaluator(fake_models()[0], LowFormerOnlyScore())
    with pytest.raises(SearchSetupError, match="cannot search the efficientvit family with .*'lowformer-only'"):
        run_search(settings(20, space="all"), storage, fake_models, evaluator=evaluator)
    assert optuna.get_all_study_summaries(open_storage(storage)) == []  # nothing stored
    assert len(evaluations(run_search(settings(20), storage, fake_models, evaluator=evaluator))) == 20


@pytest.fixture(scope="module")
def measurement_db(published_template, tmp_path_factory):
    """A database with the published raspi5 points and a predictor trained on them (a copy: the
    searches store their studies beside it)."""
    path = tmp_path_factory.mktemp("spaces") / "m.db"
    shutil.copyfile(published_template, path)
    return str(path)


def _search(db: str, *args: str) -> list[str]:
    return ["search", "--device", "raspi5", "--budget", "40ms", "--objective", "params", "--db", db,
            "--no-dashboard", *args]


def test_cli_searches_one_family(measurement_db, capsys):
    assert main(_search(measurement_db, "--space", "mcga", "--trials", "40", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["space"] == "mcga" and report["study"] == "raspi5-ort-40ms-params-mcga" and report["trials"] == 40
    assert [r["name"] for r in report["references"]] == ["mcga-paper", "mcga-budget"]
    for row in report["shortlist"]:
        assert row["family"] == "mcga" and resolve(row["config"]).arch_id == row["arch_id"]
    assert main(_search(measurement_db, "--space", "mcga", "--trials", "40")) == 0  # resumes, prints the tables
    out = capsys.readouterr().out
    assert "space mcga" in out and "mcga-paper" in out


def test_cli_searches_every_family(measurement_db, capsys):
    assert main(_search(measurement_db, "--space", "all", "--trials", "80", "--sampler", "random", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["space"] == "all" and report["trials"] == 80
    assert {r["family"] for r in report["references"]} == set(FAMILIES)
    assert {"storage", "study", "device", "budget_ms", "resolution", "objective", "objective_label", "predictor",
            "trials", "unique_architectures", "feasible_trials", "pareto_size", "shortlist", "references",
            "dashboard"} <= set(report)
    study = optuna.load_study(study_name=report["study"], storage=open_storage(report["storage"]))
    assert set(_families(study)) == set(FAMILIES)


def test_cli_space_errors(measurement_db, capsys):
    assert main(_search(measurement_db, "--space", "vit")) == 2
    err = capsys.readouterr().err
    assert "invalid space 'vit'" in err and "mcga" in err and "all" in err and "Traceback" not in err
    assert main(_search(measurement_db, "--space", "fmvit", "--trials", "10", "--study", "taken")) == 0
    capsys.readouterr()
    assert main(_search(measurement_db, "--space", "all", "--trials", "20", "--study", "taken")) == 2
    assert "study 'taken' already holds a search with space 'fmvit' (asked: 'all')" in capsys.readouterr().err
    assert main(_search(measurement_db, "--space", "mcga", "--objective", "microtask", "--trials", "10")) == 2
    assert "cannot search the mcga family" in capsys.readouterr().err
