"""The search: budgets, the Optuna study, duplicates, resuming, workers, the shortlist, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from explorer.architectures import resolve
from explorer.cli import main
from explorer.search import (
    BudgetError,
    Evaluator,
    SearchSettings,
    open_storage,
    pareto_front,
    parse_budget,
    run_search,
    search_report,
    shortlist,
)
from explorer.search.space import config_of, seed_params, trial_config
from explorer.search.study import StudyMismatchError, evaluations, feasible
from search_spaces.base import arch_id


class MacsLatency:
    """A latency model made of a formula: 1 ms per 100 M MACs, interval +-20 %."""

    name = "macs-formula"

    def __init__(self):
        self.predicted: list[str] = []

    def predict(self, configs):
        self.predicted += [arch_id(c) for c in configs]
        median = np.array([c.op_table().macs for c in configs]) / 1e8
        return median, median * 0.8, median * 1.2


class LogParams:
    name, label = "log-params", "size baseline: log #params"

    def score(self, configs):
        return np.log([c.op_table().params for c in configs])


def fake_models():
    return MacsLatency(), LogParams()


def settings(trials: int, **overrides) -> SearchSettings:
    values = {"device": "fake", "budget_ms": 10.0, "objective": "log-params", "trials": trials,
              "sampler": "nsga2", "batch_size": 16, "study_name": "test"}
    return SearchSettings(**{**values, **overrides})


@pytest.mark.parametrize(("text", "ms"), [("40ms", 40.0), ("40 ms", 40.0), ("0.04s", 40.0), ("40000us", 40.0),
                                          (" 2.5ms ", 2.5)])
def test_budget_parsing(text, ms):
    assert math.isclose(parse_budget(text), ms)


@pytest.mark.parametrize(("text", "message"), [("fast", "expected a positive latency with a unit"),
                                               ("-5ms", "must be a positive latency"),
                                               ("0", "must be a positive latency"),
                                               ("40", "a unit is required"),
                                               ("40 parsecs", "unknown unit 'parsecs'")])
def test_bad_budgets_say_what_is_allowed(text, message):
    with pytest.raises(BudgetError, match=message) as error:
        parse_budget(text)
    assert repr(text) in str(error.value)


def test_search_seeds_presets_constrains_the_upper_bound_and_never_evaluates_twice(tmp_path):
    latency, objective = fake_models()
    evaluator = Evaluator(latency, objective)
    study = run_search(settings(80, sampler="random", batch_size=20), f"sqlite:///{tmp_path}/s.db", fake_models,
                       evaluator=evaluator)
    rows = evaluations(study)
    assert len(rows) == 80
    seeds = seed_params(224)
    assert [t.params for t, _ in rows[:len(seeds)]] == list(seeds.values())
    for trial, evaluation in rows:
        assert trial.constraints == {"budget": pytest.approx(evaluation.high_ms - 10.0)}
        assert set(trial.params) == set(seed_params(224)["lowformer-b0"])  # every knob, every trial
    assert len(latency.predicted) == len(set(latency.predicted)) == len({e.arch_id for _, e in rows})
    seen = {}
    for trial, evaluation in rows:
        assert trial.user_attrs["duplicate"] == (evaluation.arch_id in seen)
        assert trial.values == seen.setdefault(evaluation.arch_id, trial.values)


def test_duplicates_get_the_stored_values_without_a_new_prediction():
    latency, objective = fake_models()
    evaluator = Evaluator(latency, objective)
    a, b = (resolve(name) for name in ("lowformer-b0", "lowformer-b1"))
    first = evaluator.evaluate([a, b, a])
    assert first[0] == first[2] and latency.predicted == [arch_id(a), arch_id(b)]
    assert evaluator.evaluate([b, a]) == [first[1], first[0]] and len(latency.predicted) == 2


def test_the_same_command_resumes_and_a_clashing_one_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    run_search(settings(30), storage, fake_models)
    study = run_search(settings(70), storage, fake_models)
    assert len(evaluations(study)) == 70
    assert len(evaluations(run_search(settings(50), storage, fake_models))) == 70
    with pytest.raises(StudyMismatchError, match="budget_ms 10.0 \\(asked: 20.0\\)"):
        run_search(settings(80, budget_ms=20.0), storage, fake_models)


def test_a_study_is_not_resumed_with_another_latency_predictor(tmp_path):
    """A retrained predictor would mix its latencies with those of the stored trials."""
    storage = f"sqlite:///{tmp_path}/s.db"
    run_search(settings(20), storage, fake_models)

    def retrained():
        latency, objective = fake_models()
        latency.name = "macs-formula#2"
        return latency, objective

    with pytest.raises(StudyMismatchError, match="predictor 'macs-formula' \\(asked: 'macs-formula#2'\\)"):
        run_search(settings(40), storage, retrained)


def test_shortlist_is_feasible_non_dominated_and_spread(tmp_path):
    evaluator = Evaluator(*fake_models())
    study = run_search(settings(200), f"sqlite:///{tmp_path}/s.db", fake_models, evaluator=evaluator)
    rows = evaluations(study)
    front = pareto_front(rows)
    for _, member in front:
        assert not any(feasible(t) and e.score >= member.score and e.latency_ms <= member.latency_ms
                       and (e.score, e.latency_ms) != (member.score, member.latency_ms) for t, e in rows)
    picks = shortlist(study, 5)
    assert 1 <= len(picks) <= 5
    assert all(c.evaluation.high_ms <= 10.0 for c in picks)
    assert [c.evaluation.latency_ms for c in picks] == sorted(c.evaluation.latency_ms for c in picks)
    assert picks[0].evaluation == front[0][1] and picks[-1].evaluation == front[-1][1]
    many = shortlist(study, len(front) + 3)  # more than the front holds: topped up with runners-up
    assert len(many) == len(front) + 3 and {e.arch_id for _, e in front} < {c.evaluation.arch_id for c in many}
    report = search_report(study, evaluator, top=5)
    assert {"study", "device", "budget_ms", "objective", "objective_label", "predictor", "trials", "pareto_size",
            "shortlist", "references"} <= set(report)
    assert [r["name"] for r in report["references"]][:2] == ["lowformer-b0", "lowformer-b1"]
    row = report["shortlist"][0]
    assert row["latency_provenance"] == "predicted" and row["low_ms"] <= row["latency_ms"] <= row["high_ms"]
    assert row["nearest_preset"].startswith("lowformer-") and set(row["knobs"]) >= {"widths", "depths"}


def test_workers_share_one_storage(tmp_path):
    study = run_search(settings(64, batch_size=8), f"sqlite:///{tmp_path}/s.db", fake_models, workers=2)
    rows = evaluations(study)
    assert len(rows) == 64
    assert len({t.user_attrs["worker"] for t, _ in rows}) == 2
    seeds = {arch_id(config_of(params, 224)) for params in seed_params(224).values()}
    assert seeds <= {e.arch_id for _, e in rows}  # the published models seed the new study once


@pytest.mark.postgres
def test_workers_share_a_postgresql_storage(postgres_url):
    study = run_search(settings(48, batch_size=8), postgres_url, fake_models, workers=2)
    assert len(evaluations(study)) == 48
    again = optuna.load_study(study_name="test", storage=open_storage(postgres_url))
    assert len(again.trials) == 48


def test_cli_errors_name_the_bad_value(tmp_path, capsys):
    db = str(tmp_path / "m.db")
    assert main(["search", "--device", "raspi5", "--budget", "fast", "--db", db, "--create-db"]) == 2
    assert "invalid budget 'fast'" in capsys.readouterr().err
    assert main(["search", "--device", "nowhere", "--budget", "40ms", "--db", db, "--create-db"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'nowhere'" in err and "raspi5" in err
    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--db", db]) == 2
    assert "explorer predictor train --device raspi5" in capsys.readouterr().err


@pytest.mark.slow
def test_readme_command_on_published_raspi5_data(published_db, tmp_path, capsys):
    """`explorer search --device raspi5 --budget 40ms` with the predictor made from published points."""
    import json

    db_path = published_db
    html = tmp_path / "search.html"
    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--trials", "60", "--db", db_path,
                 "--dashboard", str(html), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trials"] == 60 and report["device"] == "raspi5-ort" and report["dashboard"] == str(html.resolve())
    assert report["storage"] == f"sqlite:///{tmp_path / 'studies.db'}"
    assert 1 <= len(report["shortlist"]) <= 8 and all(r["high_ms"] <= 40.0 for r in report["shortlist"])
    assert [r["name"] for r in report["references"]] == [
        "lowformer-b0", "lowformer-b1", "lowformer-b1.5", "lowformer-b2", "lowformer-b3",
        "lowformer-e1", "lowformer-e2", "lowformer-e3"]
    assert html.stat().st_size > 1_000_000
    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--trials", "60", "--db", db_path,
                 "--no-dashboard"]) == 0  # resumes: nothing left to do, prints the table
    assert "Shortlist to train on raspi5-ort" in capsys.readouterr().out


@pytest.mark.slow
def test_default_search_is_pessimistic_and_every_entry_shows_its_evidence(published_db, capsys):
    import json

    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--trials", "200", "--db", published_db,
                 "--no-dashboard", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["objective"] == "surrogate-pessimistic" and "pessimistic" in report["objective_label"]
    for row in report["shortlist"] + report["references"]:
        accuracy = row["accuracy"]
        low, high = accuracy["interval_90"]
        assert low < accuracy["mean"] < high and row["score"] == pytest.approx(low, abs=1e-6)
        assert accuracy["nearest_result"]["name"].split(" @ ")[0] and row["resolution"] in report["resolutions"]
    # the axis no longer rewards two-to-four-block networks: no entry is shallower than the
    # shallowest published LowFormer (B0 and B1: 12 blocks) by more than a few blocks
    depths = [sum(row["config"]["depths"]) for row in report["shortlist"]]
    assert min(depths) >= 6
    # the dashboard's predicted-vs-measured panel shows the published Raspberry Pi 5 figures
    from explorer.dashboard import study_dashboard
    from explorer.db import open_database
    from explorer.search import load_study, study_evaluator

    db = open_database(published_db)
    study = load_study(report["storage"], report["study"])
    panel = study_dashboard(db, study, study_evaluator(db, study)).verified
    assert len(panel) >= 5 and {point.provenance for point in panel} == {"published"}


@pytest.mark.slow
def test_explore_searches_the_optimistic_bound(published_db, capsys):
    import json

    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--trials", "60", "--db", published_db,
                 "--no-dashboard", "--explore", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["objective"] == "surrogate-optimistic" and "optimistic" in report["objective_label"]
    assert main(["search", "--device", "raspi5", "--budget", "40ms", "--explore", "--objective", "params",
                 "--db", published_db]) == 2
    assert "--explore" in capsys.readouterr().err


@pytest.mark.slow
def test_suggest_proposes_diverse_trainable_architectures_within_budget(published_db, tmp_path, capsys):
    import json

    assert main(["suggest", "--device", "raspi5", "--budget", "40ms", "--n", "3", "--pool", "300",
                 "--db", published_db, "--to", str(tmp_path / "train"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["suggestions"]
    assert len(rows) == 3 and len({r["arch_id"] for r in rows}) == 3
    assert all(r["latency_high_ms"] <= 40.0 and r["expected_improvement"] >= 0 for r in rows)
    assert all(r["top1_interval_90"][0] < r["top1_mean"] < r["top1_interval_90"][1] for r in rows)
    assert len(out["exported"]) == 3 and all((Path(p) / "model.py").exists() for p in out["exported"])
    assert main(["suggest", "--device", "raspi5", "--budget", "40ms", "--n", "0", "--db", published_db]) == 2


def test_expected_improvement_prefers_uncertain_and_better():
    from explorer.search.suggest import expected_improvement

    mean = np.array([80.0, 80.0, 78.0, 82.0])
    std = np.array([0.1, 2.0, 0.1, 0.1])
    gain = expected_improvement(mean, std, best=80.5)
    assert gain[3] > gain[1] > gain[0] > gain[2] >= 0


class LogParamsAndResolution:
    """A score that rewards resolution as well as size, as accuracy does."""

    name, label = "log-params-res", "test score: log #params + 2 log resolution"

    def score(self, configs):
        return np.log([c.op_table().params for c in configs]) + 2 * np.log([c.resolution for c in configs])


def test_resolution_is_searched_and_the_front_mixes_resolutions(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    searched = settings(300, objective="log-params-res", resolutions=(160, 192, 224, 256, 288), budget_ms=8.0)
    study = run_search(searched, storage, lambda: (MacsLatency(), LogParamsAndResolution()))
    assert study.user_attrs["resolutions"] == [160, 192, 224, 256, 288]
    configs = [trial_config(study, t) for t, _ in evaluations(study)]
    assert {c.resolution for c in configs} == {160, 192, 224, 256, 288}
    front = pareto_front(evaluations(study))
    assert len({trial_config(study, t).resolution for t, _ in front}) >= 2
    # presets start at their published resolution (LowFormer-B3 is published at 224, not 160)
    seeds = seed_params(224, resolutions=searched.resolutions)
    assert seeds["lowformer-b3"]["resolution"] == 224
    report = search_report(study, Evaluator(MacsLatency(), LogParamsAndResolution()))
    assert report["resolutions"] == [160, 192, 224, 256, 288]
    assert all(row["resolution"] == row["config"]["resolution"] for row in report["shortlist"])


def test_a_fixed_resolution_study_resumes_as_before(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    run_search(settings(20), storage, fake_models)  # one resolution: no parameter, no searched set
    study = run_search(settings(40, resolutions=(224,)), storage, fake_models)  # (224,) is the same search
    assert len(study.trials) == 40 and "resolution" not in study.trials[-1].params
    with pytest.raises(StudyMismatchError, match="resolutions"):
        run_search(settings(60, resolutions=(160, 224)), storage, fake_models)
