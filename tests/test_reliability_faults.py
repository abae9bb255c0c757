"""Fault injection: the command SIGKILLed (with any workers it spawned) at a random moment, then
run again. No finished result may be lost, none stored twice, the database must pass its
integrity check and the work reach its full count. ``benchmarks/reliability.py`` runs 10-20
trials of each; these run a few."""

from __future__ import annotations

import pytest

from reliability_support import (
    accuracy_file,
    fault_trials,
    fresh_copy,
    ingest_scenario,
    measure_scenario,
    results_file,
    results_scenario,
    search_scenario,
    search_template,
    template_database,
)

pytestmark = pytest.mark.slow
TRIALS = 2
#: two batches of 50 per worker: a kill can land between the batches of a worker
SEARCH_TRIALS = 200


def assert_clean(report) -> None:
    assert report.trials == TRIALS and report.ok, report.problems


def test_killed_measurement_campaigns_resume_without_loss_or_duplicate(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("conv20-c24\ntoy-conv-1\nfused-mbconv-c16\nunfused-mbconv-c16\n")
    template = template_database(tmp_path)
    assert_clean(fault_trials(measure_scenario(names, 4),
                              lambda i: fresh_copy(template, tmp_path / f"m{i}.db"), TRIALS, seed=1))


def test_killed_ingests_resume_without_loss_or_duplicate(tmp_path):
    template = template_database(tmp_path)
    assert_clean(fault_trials(ingest_scenario(results_file(tmp_path / "r.jsonl", 120), 120),
                              lambda i: fresh_copy(template, tmp_path / f"i{i}.db"), TRIALS, seed=2))


def test_killed_results_imports_resume_without_loss_or_duplicate(tmp_path):
    template = template_database(tmp_path)
    assert_clean(fault_trials(results_scenario(accuracy_file(tmp_path / "a.csv", 40), 40),
                              lambda i: fresh_copy(template, tmp_path / f"a{i}.db"), TRIALS, seed=3))


def test_killed_two_worker_searches_resume_on_sqlite(tmp_path):
    template = search_template(tmp_path)
    scenario = search_scenario(lambda url: url.replace(".db", "-studies.db"), SEARCH_TRIALS)
    assert_clean(fault_trials(scenario, lambda i: fresh_copy(template, tmp_path / f"s{i}.db"), TRIALS, seed=4))


@pytest.mark.postgres
def test_killed_two_worker_searches_resume_on_postgresql(tmp_path, postgres_url):
    template = search_template(tmp_path)
    scenario = search_scenario(lambda url: postgres_url, SEARCH_TRIALS)  # one study per database file
    assert_clean(fault_trials(scenario, lambda i: fresh_copy(template, tmp_path / f"p{i}.db"), TRIALS, seed=5))
