"""A stored study remembers the evidence its scores rest on; a resume after that evidence changed
re-scores the stored trials and says so, instead of mixing old scores with new ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.cli import main
from explorer.search import Rescore, SearchSettings, load_study, run_search
from explorer.search.study import EVIDENCE_ATTR, evaluations, stale_changes


class MacsLatency:
    name = "macs-formula"

    def predict(self, configs):
        median = np.array([c.op_table().macs for c in configs]) / 1e8
        return median, median * 0.8, median * 1.2


class VersionedScore:
    """log #params times a factor; ``evidence`` names the factor, as a digest names results."""

    name, label = "versioned", "test score"

    def __init__(self, factor: float):
        self.factor, self.evidence = factor, {"objective": "versioned", "accuracy_evidence": f"factor {factor}"}

    def score(self, configs):
        return self.factor * np.log([c.op_table().params for c in configs])


def models(factor: float):
    return lambda: (MacsLatency(), VersionedScore(factor))


def settings(trials: int, name: str = "stale") -> SearchSettings:
    return SearchSettings("fake", 10.0, "versioned", trials, "nsga2", 0, batch_size=16, study_name=name)


def scores_by_arch(study) -> dict[str, float]:
    return {e.arch_id: e.score for _, e in evaluations(study)}


def test_a_resume_on_changed_evidence_rescores_every_stored_trial(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    told: list[Rescore] = []
    first = run_search(settings(30), storage, models(1.0), on_rescore=told.append)
    numbers = [t.number for t in first.trials]
    assert not told and first.user_attrs[EVIDENCE_ATTR]["accuracy_evidence"] == "factor 1.0"
    assert stale_changes(first, VersionedScore(1.0)) == {}  # what dashboard, verify and export check
    assert stale_changes(first, VersionedScore(2.0)) == {"accuracy_evidence": ("factor 1.0", "factor 2.0")}
    assert stale_changes(first, _Unversioned()) == {}
    stale = scores_by_arch(first)

    study = run_search(settings(40), storage, models(2.0), on_rescore=told.append)
    [rescore] = told
    assert rescore.trials == 30 and rescore.changed == {"accuracy_evidence": ("factor 1.0", "factor 2.0")}
    assert "re-scored" in rescore.describe()
    assert [t.number for t in study.trials][:30] == numbers and len(evaluations(study)) == 40
    assert study.user_attrs[EVIDENCE_ATTR]["accuracy_evidence"] == "factor 2.0"
    fresh = scores_by_arch(run_search(settings(30, "fresh"), storage, models(2.0)))
    resumed = scores_by_arch(study)
    assert set(stale) <= set(resumed)
    for key, old in stale.items():  # every stored trial carries the new score, as a fresh study scores it
        assert resumed[key] == pytest.approx(2.0 * old)
        if key in fresh:
            assert resumed[key] == pytest.approx(fresh[key])
    for trial in study.trials:  # the optimiser sees the new values too
        assert trial.values[0] == pytest.approx(trial.user_attrs["score"])

    run_search(settings(40), storage, models(2.0), on_rescore=told.append)
    assert len(told) == 1  # same evidence: nothing to re-score


def test_a_study_stored_before_evidence_was_recorded_is_rescored_once(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    told: list[Rescore] = []
    run_search(settings(20), storage, lambda: (MacsLatency(), _Unversioned()))
    assert EVIDENCE_ATTR not in load_study(storage, "stale").user_attrs
    run_search(settings(20), storage, models(1.0), on_rescore=told.append)
    run_search(settings(20), storage, models(1.0), on_rescore=told.append)
    assert [r.changed for r in told] == [{"evidence": (None, "recorded now")}]


class _Unversioned:
    name, label = "versioned", "test score"

    def score(self, configs):
        return np.log([c.op_table().params for c in configs])


@pytest.mark.slow
def test_search_after_an_import_says_it_rescored_and_scores_as_a_fresh_study(published_db, capsys):
    """The README's search, a result imported into the database, the same search again."""
    from explorer import resolve
    from explorer.db import open_database
    from predictors.results import IMAGENET, IMPORTED, store_result

    db = open_database(published_db)
    argv = ["search", "--device", "raspi5", "--budget", "40ms", "--trials", "30", "--db", published_db,
            "--no-dashboard", "--json"]
    assert main(argv) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["study_rescored"] is None and before["score_evidence"]["accuracy_evidence"]

    with db.session() as session:  # a result of a resolution nobody published
        store_result(session, resolve("lowformer-b1", 160), IMAGENET, 76.0, 300, "my-training", IMPORTED)
    # what only reads the stored study says that its scores are stale, and changes nothing
    page = Path(published_db).with_name("stale.html")
    assert main(["dashboard", "--study", before["study"], "-o", str(page), "--db", published_db]) == 0
    warning = capsys.readouterr().err
    assert f"study {before['study']!r} was scored on other evidence" in warning and "accuracy_evidence" in warning
    assert "explorer search" in warning and page.exists()
    assert load_study(before["storage"], before["study"]).user_attrs[EVIDENCE_ATTR] == before["score_evidence"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    after = json.loads(captured.out)
    assert after["study_rescored"]["trials"] == 30 and "accuracy_evidence" in after["study_rescored"]["changed"]
    assert "re-scored" in captured.err and after["trials"] == 30
    assert main(["dashboard", "--study", before["study"], "-o", str(page), "--db", published_db]) == 0
    assert "stale" not in capsys.readouterr().err  # re-scored: current again
    assert after["score_evidence"]["accuracy_evidence"] != before["score_evidence"]["accuracy_evidence"]

    assert main([*argv, "--study", "fresh"]) == 0  # the same seed and trials on the new evidence
    fresh = json.loads(capsys.readouterr().out)
    fresh_scores = scores_by_arch(load_study(fresh["storage"], "fresh"))
    resumed_scores = scores_by_arch(load_study(after["storage"], after["study"]))
    assert resumed_scores.keys() == fresh_scores.keys()
    assert all(resumed_scores[k] == pytest.approx(fresh_scores[k], abs=1e-9) for k in fresh_scores)
    assert [r["arch_id"] for r in after["shortlist"]] == [r["arch_id"] for r in fresh["shortlist"]]
    assert [r["score"] for r in after["shortlist"]] == pytest.approx([r["score"] for r in fresh["shortlist"]])
    stale = {r["arch_id"]: r["score"] for r in before["shortlist"]}
    assert any(abs(stale[k] - resumed_scores[k]) > 1e-6 for k in stale)  # the import moved the scores
