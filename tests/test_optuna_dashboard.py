"""Studies open in optuna-dashboard: ``explorer dashboard --serve`` serves the project's journal
storage, and Optuna tools pointed at the studies file by mistake change nothing in it."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from explorer.search import SearchSettings, run_search
from test_search import fake_models

LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def studies(tmp_path):
    """A studies file with one finished search of 40 trials."""
    path = tmp_path / "studies.db"
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=40, sampler="nsga2",
                              batch_size=16, study_name="served")
    run_search(settings, f"sqlite:///{path}", fake_models)
    return path


def _journal_digest(path) -> str:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT id, log FROM optuna_journal ORDER BY id").fetchall()
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


@pytest.mark.slow
def test_serve_lists_the_search_and_its_trials(studies, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", "from explorer.cli import main; raise SystemExit(main())",
                               "dashboard", "--serve", "--port", str(port),
                               "--storage", f"sqlite:///{studies}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, summaries = time.monotonic() + 60, None
        while time.monotonic() < deadline and summaries is None:
            try:
                summaries = _get(f"http://{LOOPBACK}:{port}/api/studies")["study_summaries"]
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-2000:]
                time.sleep(0.3)
        assert summaries is not None, "optuna-dashboard did not answer within 60 s"
        (study,) = [s for s in summaries if s["study_name"] == "served"]
        assert len(study["directions"]) == 2  # accuracy score up, latency down
        detail = _get(f"http://{LOOPBACK}:{port}/api/studies/{study['study_id']}")
        assert len(detail["trials"]) == 40
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_optuna_tools_pointed_at_the_studies_file_fail_without_touching_the_journal(studies):
    from optuna_dashboard._storage_url import get_storage

    before = _journal_digest(studies)
    with pytest.raises(Exception):  # optuna-dashboard reads Optuna's RDB tables, which are not there
        storage = get_storage(f"sqlite:///{studies}")
        optuna.get_all_study_summaries(storage)
    with pytest.raises(KeyError):  # plain Optuna finds no study of that name in its own tables
        optuna.load_study(study_name="served", storage=f"sqlite:///{studies}")
    assert _journal_digest(studies) == before
    # and the project still opens its study
    from explorer.search import load_study

    assert len(load_study(f"sqlite:///{studies}", "served").trials) == 40


def test_serve_refuses_a_bad_port(studies, capsys):
    from explorer.cli import main

    assert main(["dashboard", "--serve", "--port", "70000", "--storage", f"sqlite:///{studies}"]) == 2
    assert "--port 70000" in capsys.readouterr().err
    assert main(["dashboard", "--study", "served", "--storage", f"sqlite:///{studies}"]) == 2
    assert "-o FILE.html" in capsys.readouterr().err
