"""Concurrency: a measurement campaign, two ingests and a results import write to one database
while a two-worker search runs on it (its study in the same SQLite file, or on the same
PostgreSQL server): every process succeeds, none reports "database is locked", no row is lost."""

from __future__ import annotations

import pytest

from reliability_support import concurrent_writers, fresh_copy, search_database, search_template

pytestmark = pytest.mark.slow


def test_six_writers_share_one_sqlite_file(tmp_path):
    url = fresh_copy(search_template(tmp_path), tmp_path / "shared.db")
    outcome = concurrent_writers(url, url, tmp_path)
    assert outcome.ok, outcome.to_dict()


@pytest.mark.postgres
def test_six_writers_share_one_postgresql_database(tmp_path, postgres_url):
    search_database(postgres_url)
    outcome = concurrent_writers(postgres_url, postgres_url, tmp_path)
    assert outcome.ok, outcome.to_dict()
