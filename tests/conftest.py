"""Shared fixtures.

PostgreSQL: ``postgres_url`` is a fresh, empty database per test on the server given by
``EXPLORER_TEST_POSTGRES_URL`` (its user needs CREATEDB), or else on a throwaway cluster this
session starts with the server binaries of the Debian ``postgresql`` package (as the ``postgres``
user when run as root, since the server refuses to run as root).
"""

from __future__ import annotations

import getpass
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

POSTGRES_ENV = "EXPLORER_TEST_POSTGRES_URL"


def pytest_configure(config) -> None:
    """On a pytest-xdist worker torch, BLAS and their subprocesses use one thread: two workers on
    two cores with two threads each mostly wait for each other (fvcore on a 128 px model took 5 s
    with two threads and 1 s with one on a busy 2-core host). The serial part keeps the default."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def user_home(tmp_path_factory) -> Iterator[Path]:
    """The user's database, studies and caches of this test session (``$EXPLORER_HOME``) and the
    host id (``$XDG_CONFIG_HOME``): tests never write into the real home directory, and never into
    the shipped database. Subprocesses and notebook kernels inherit them."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("explorer-home")
        patch.setenv("EXPLORER_HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / "config"))
        patch.delenv("EXPLORER_DB", raising=False)
        yield home


@pytest.fixture(scope="session")
def published_template(tmp_path_factory) -> Path:
    """The database behind ``published_db``, built once per test session (and worker)."""
    from explorer.db import open_database
    from explorer.devices import load_published
    from predictors import train_predictor
    from predictors.results import load_published_accuracies

    path = tmp_path_factory.mktemp("published") / "m.db"
    db = open_database(str(path))
    with db.session() as session:
        load_published(session)
    load_published_accuracies(db)
    train_predictor(db, "raspi5")
    db.close()
    return path


@pytest.fixture
def published_db(published_template, tmp_path) -> str:
    """Path of a database with the published measurements and accuracies, and the raspi5
    predictor made from them: a copy of one built once, so that a test may write to it."""
    shutil.copyfile(published_template, tmp_path / "m.db")
    return str(tmp_path / "m.db")


@pytest.fixture(scope="module")
def shipped_db_env(tmp_path_factory) -> dict[str, str]:
    """The environment that points the CLI at a copy of the shipped database (opening may
    migrate it: never the shipped file itself)."""
    shipped = Path(__file__).resolve().parents[1] / "measurements.db"
    if not shipped.exists():
        pytest.skip("needs the shipped measurements.db")
    copy = tmp_path_factory.mktemp("shipped") / "measurements.db"
    shutil.copyfile(shipped, copy)
    return {**os.environ, "EXPLORER_DB": str(copy)}


@pytest.fixture
def fed_load(monkeypatch) -> Callable[[float], None]:
    """``fed_load(cores)``: the quiet-machine guard reads ``cores`` cores used by other processes
    in every window from now on, whatever the host does (this process's own CPU time counts in
    the machine's, as in ``/proc/stat``). The host running the tests is shared: its load at that
    moment says nothing about the code."""
    from explorer.measure import protocol

    def feed(other_cores: float) -> None:
        clock = itertools.count()

        def counters() -> protocol.CpuCounters:
            wall, own = 0.25 * next(clock), time.process_time()
            return protocol.CpuCounters(wall, wall * other_cores + own, 0.0, own)

        monkeypatch.setattr(protocol, "cpu_counters", counters)
    return feed


@pytest.fixture
def quiet_host(fed_load) -> None:
    """A host whose other processes use no CPU, as far as the guard can tell."""
    fed_load(0.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of an existing database on a PostgreSQL server for this test session."""
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not initdbs:
        pytest.skip(f"no PostgreSQL: {POSTGRES_ENV} is unset and no server binaries in /usr/lib/postgresql/*/bin")
    bindir = Path(initdbs[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="explorer-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    user = "postgres" if os.geteuid() == 0 else getpass.getuser()
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user,
                                    "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
    subprocess.run(_as_server_user([*pg_ctl, "-o", options, "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*pg_ctl, "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    import psycopg

    name = f"explorer_test_{uuid.uuid4().hex[:12]}"
    address = postgres_server.split("://", 1)[1]  # user@host:port/database
    admin, server = f"postgresql://{address}", "postgresql+psycopg://" + address.rsplit("/", 1)[0]
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
