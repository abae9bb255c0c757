"""Optuna studies in any SQLAlchemy database, as an append-only journal table.

Optuna's own RDB storage writes one row per parameter in its own transaction; with 40 knobs that
is about 70 ms per trial here, longer than predicting and scoring the trial. Optuna's journal
storage replays a log of operations instead, so a whole trial is one row. This backend keeps that
log in a table (``optuna_journal``) of any SQLAlchemy URL: a SQLite file for one machine,
PostgreSQL for workers on several. Appends hold a table lock so that log order equals commit
order, which is what lets concurrent readers trust "everything after the n-th entry".

Open a stored study with plain Optuna (e.g. for optuna-dashboard)::

    optuna.load_study(study_name=..., storage=JournalStorage(SQLJournalBackend(url)))
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, create_engine, event, insert, select, text
from sqlalchemy.engine import Engine

STUDIES_FILE = "studies.db"
SQLITE_BUSY_TIMEOUT_MS = 60_000

_metadata = MetaData()
JOURNAL = Table(
    "optuna_journal", _metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("log", Text, nullable=False),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL: workers read while one appends; the busy timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class SQLJournalBackend(BaseJournalBackend):
    """Optuna journal backend over a SQLAlchemy URL (see module docstring)."""

    def __init__(self, url: str):
        self.url = url
        self._engine = _engine(url)
        _metadata.create_all(self._engine, checkfirst=True)
        self._lock = threading.Lock()
        self._read_count, self._last_id = 0, 0

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        with self._lock, self._engine.connect() as connection:
            if log_number_from == self._read_count:
                query = select(JOURNAL.c.id, JOURNAL.c.log).where(JOURNAL.c.id > self._last_id)
            else:
                query = select(JOURNAL.c.id, JOURNAL.c.log).offset(log_number_from)
            rows = connection.execute(query.order_by(JOURNAL.c.id)).all()
            if rows:
                self._read_count, self._last_id = log_number_from + len(rows), rows[-1][0]
        return [json.loads(log) for _, log in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with self._engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"LOCK TABLE {JOURNAL.name} IN EXCLUSIVE MODE"))
            elif connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            connection.execute(insert(JOURNAL), [{"log": json.dumps(log)} for log in logs])

    def dispose(self) -> None:
        self._engine.dispose()


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # pysqlite's implicit transactions off (isolation_level None): appends BEGIN IMMEDIATE.
        engine = create_engine(url, connect_args={"isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def default_storage_url(database_url: str) -> str:
    """``studies.db`` beside a SQLite measurement database (parallel workers then never lock the
    measurement file); the same server for any other database."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and database_url != "sqlite:///:memory:":
        return prefix + str(Path(database_url[len(prefix):]).with_name(STUDIES_FILE))
    return database_url


def open_storage(url: str) -> JournalStorage:
    """An Optuna storage over ``url`` (a SQLAlchemy URL or a path of a SQLite file)."""
    if "://" not in url:
        url = "sqlite:///" + str(Path(url).expanduser().resolve())
    return JournalStorage(SQLJournalBackend(url))
