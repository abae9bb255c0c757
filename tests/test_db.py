"""The measurement database: schema, migrations, URLs, devices and the query helpers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from explorer import resolve
from explorer.db import (
    AccuracyResult,
    Architecture,
    Base,
    Measurement,
    Predictor,
    ProxyScore,
    UnknownDeviceError,
    database_url,
    device_names,
    head_revision,
    ok_measurements,
    open_database,
    resolve_device,
    upsert_architecture,
)
from explorer.db.database import (
    REPO_ROOT,
    SCHEMA_REVISION,
    SHIPPED_DB_PATH,
    current_revision,
    make_engine,
    upgrade,
    user_db_path,
)
from explorer.errors import UserError

TABLES = {"devices", "architectures", "measurements", "predictors", "proxy_scores", "accuracy_results"}


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "m.db")


def test_open_creates_every_table_at_the_head_revision(tmp_path):
    database = open_database(tmp_path / "m.db")
    assert TABLES <= set(sa.inspect(database.engine).get_table_names())
    assert current_revision(database.engine) == head_revision()
    assert database.url == f"sqlite:///{tmp_path / 'm.db'}"


def test_the_schema_revision_opened_without_alembic_is_the_newest_migration():
    assert SCHEMA_REVISION == head_revision()


def test_sqlite_uses_wal_and_a_busy_timeout(db):
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_models_and_migrations_describe_the_same_schema(db):
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_url_from_path_env_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLORER_DB", raising=False)
    assert database_url() == f"sqlite:///{user_db_path()}"  # the user's own database, not the shipped one
    assert SHIPPED_DB_PATH == REPO_ROOT / "measurements.db" and (REPO_ROOT / "explorer").is_dir()
    assert database_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("EXPLORER_DB", str(tmp_path / "env.db"))
    assert database_url() == f"sqlite:///{tmp_path / 'env.db'}"
    with pytest.raises(UserError, match="does not exist"):
        database_url(tmp_path / "missing" / "a.db")


def test_session_commits_on_success_and_rolls_back_on_error(db):
    config = resolve("lowformer-b0")
    with pytest.raises(RuntimeError):
        with db.session() as session:
            upsert_architecture(session, config)
            raise RuntimeError("boom")
    with db.session() as session:
        assert session.get(Architecture, config.arch_id) is None
        upsert_architecture(session, config)
    with db.session() as session:
        assert session.get(Architecture, config.arch_id) is not None


def test_upsert_architecture_is_idempotent_and_counts(db):
    config = resolve("lowformer-b1")
    with db.session() as session:
        first = upsert_architecture(session, config)
        again = upsert_architecture(session, config)
        assert first is again
        assert first.name == "lowformer-b1" and first.exact
        table = config.op_table()
        assert (first.macs, first.params) == (table.macs, table.params)
        assert first.op_summary["depthwise_conv"]["ops"] > 0
        assert first.config_json["space"] == "lowformer" and first.resolution == 224
    with db.session() as session:
        toy = upsert_architecture(session, resolve("toy-conv-1"))
        assert toy.name == "toy-conv-1" and toy.exact is False
        assert session.scalar(sa.select(sa.func.count()).select_from(Architecture)) == 2


def test_builtin_devices_and_aliases(db):
    with db.session() as session:
        for alias, name in [("raspi5", "raspi5-ort"), ("jetson-tx2", "jetson-tx2-trt"),
                            ("iphone13", "iphone13-coreml"), ("titanrtx", "titanrtx-torchscript-b1"),
                            ("a40", "a40-torch-b200"), ("mali-g76", "mali-g76"), ("cortex-a53", "cortex-a53"),
                            ("titanrtx-torchscript-b16", "titanrtx-torchscript-b16")]:
            assert resolve_device(session, alias).name == name
            assert resolve_device(session, alias).provenance == "published"
        local = resolve_device(session, "local")
        assert (local.provenance, local.backend, local.default_threads, local.default_batch) == (
            "measured", "ort", 1, 1)  # one intra-op thread until `explorer devices probe` says otherwise


def test_unknown_device_lists_the_known_ones(db):
    with db.session() as session, pytest.raises(UnknownDeviceError) as info:
        resolve_device(session, "raspi4")
    message = str(info.value)
    assert "'raspi4'" in message and "raspi5-ort (raspi5)" in message and "local" in message
    assert isinstance(info.value, UserError)


def _measurement(arch_id: str, device: str = "local", **overrides) -> Measurement:
    values = dict(arch_id=arch_id, device=device, backend="ort", batch=1, threads=2, resolution=224,
                  metric="latency_ms", median_ms=1.0, status="ok", provenance="measured")
    return Measurement(**{**values, **overrides})


def test_ok_measurements_returns_the_latest_ok_row_per_architecture(db):
    b0, b1 = resolve("lowformer-b0"), resolve("lowformer-b1")
    with db.session() as session:
        for config in (b0, b1):
            upsert_architecture(session, config)
        session.add_all([_measurement(b0.arch_id, median_ms=5.0), _measurement(b0.arch_id, median_ms=6.0),
                         _measurement(b1.arch_id, status="failed", median_ms=None),
                         _measurement(b1.arch_id, threads=1, median_ms=9.0)])
    with db.session() as session:
        rows = ok_measurements(session, "local", backend="ort", batch=1, threads=2)
        assert [(r.arch_id, r.median_ms) for r in rows] == [(b0.arch_id, 6.0)]
        assert len(ok_measurements(session, "local")) == 2
        assert ok_measurements(session, "raspi5") == []


def _old_file(path):
    """A database file at schema revision 0001 with one measurement in it."""
    engine = make_engine(database_url(path))
    upgrade(engine, "0001")
    config = resolve("lowformer-b0")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO devices (name, aliases, description, hardware, runtime, backend, default_threads,"
            " default_batch, provenance, source) VALUES ('old-board', '[\"ob\"]', 'kept', 'arm', 'ort', 'ort',"
            " 4, 1, 'measured', NULL)"))
        connection.execute(sa.text(
            "INSERT INTO architectures (arch_id, space, name, config_json, resolution, exact, created_at)"
            " VALUES (:id, 'lowformer', 'lowformer-b0', :cfg, 224, 1, :now)"),
            {"id": config.arch_id, "cfg": '{"space": "lowformer"}', "now": now})
        connection.execute(sa.text(
            "INSERT INTO measurements (arch_id, device, backend, batch, threads, resolution, metric, median_ms,"
            " samples, n_samples, warmup, host, status, provenance) VALUES (:id, 'old-board', 'ort', 1, 4, 224,"
            " 'latency_ms', 12.5, '[12.0, 12.5, 13.0]', 3, 5, '{}', 'ok', 'measured')"), {"id": config.arch_id})
    engine.dispose()
    return config


def test_old_file_is_upgraded_on_open_without_losing_data(tmp_path):
    path = tmp_path / "old.db"
    config = _old_file(path)
    old = make_engine(database_url(path))
    assert current_revision(old) == "0001"
    assert "predictors" not in sa.inspect(old).get_table_names()
    old.dispose()

    database = open_database(path)
    assert current_revision(database.engine) == head_revision() != "0001"
    with database.session() as session:
        row = session.scalars(sa.select(Measurement)).one()
        assert (row.arch_id, row.device, row.median_ms, row.samples) == (config.arch_id, "old-board", 12.5,
                                                                          [12.0, 12.5, 13.0])
        assert row.flags == [] and row.settings == {} and row.relative_to_reference is None
        assert resolve_device(session, "ob").description == "kept"
        assert resolve_device(session, "local").provenance == "measured"
        assert ok_measurements(session, "old-board")[0].id == row.id


def test_pipeline_tables_round_trip_json_and_enforce_uniqueness(db):
    _round_trip_pipeline_tables(db)


def _round_trip_pipeline_tables(database):
    config = resolve("lowformer-b0")
    with database.session() as session:
        upsert_architecture(session, config)
        session.add(Predictor(device="local", backend="ort", batch=1, threads=2, kind="xgboost",
                              feature_version="v1", model_format="xgboost-json", model_blob='{"trees": []}',
                              metrics={"mape": 0.05}, training_arch_ids=[config.arch_id],
                              library_versions={"xgboost": "2"}, is_default=True))
        session.add(ProxyScore(arch_id=config.arch_id, score="params", version="1", resolution=224, value=1.5,
                               seconds=0.01))
        session.add(AccuracyResult(arch_id=config.arch_id, dataset="imagenet", top1=78.4, epochs=300,
                                   source="paper", provenance="published"))
    with database.session() as session:
        predictor = session.scalars(sa.select(Predictor)).one()
        assert predictor.metrics == {"mape": 0.05} and predictor.training_arch_ids == [config.arch_id]
        assert predictor.is_default is True and predictor.created_at is not None
    with pytest.raises(IntegrityError):
        with database.session() as session:
            session.add(ProxyScore(arch_id=config.arch_id, score="params", version="1", resolution=224,
                                   value=2.0, seconds=0.0))
    with pytest.raises(IntegrityError):
        with database.session() as session:
            session.add(_measurement(config.arch_id, device="no-such-device"))


@pytest.mark.postgres
def test_postgres_schema_devices_and_pipeline_tables(postgres_url):
    database = open_database(postgres_url)
    assert database.engine.dialect.name == "postgresql"
    assert TABLES <= set(sa.inspect(database.engine).get_table_names())
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with database.session() as session:
        assert resolve_device(session, "raspi5").name == "raspi5-ort"
    _round_trip_pipeline_tables(database)
    assert current_revision(open_database(postgres_url).engine) == head_revision()


@pytest.mark.postgres
def test_postgres_upgrades_an_old_schema(postgres_url):
    engine = make_engine(postgres_url)
    upgrade(engine, "0001")
    engine.dispose()
    database = open_database(postgres_url)
    assert current_revision(database.engine) == head_revision()
    assert "flags" in {c["name"] for c in sa.inspect(database.engine).get_columns("measurements")}


def _open_and_count_devices(path: str) -> int:
    with open_database(path).session() as session:
        return len(device_names(session))


@pytest.mark.slow
def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(3) as pool:
        counts = pool.map(_open_and_count_devices, [str(tmp_path / "new.db")] * 3)
    assert counts == [9, 9, 9]


def test_a_file_that_is_not_a_database_is_a_clear_error_and_stays_untouched(tmp_path, capsys):
    from explorer.cli import main

    path = tmp_path / "notadb.db"
    path.write_bytes(b"this is not sqlite\n" * 10)
    before = path.read_bytes()
    assert main(["devices", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot be opened as a measurement database" in err and "Traceback" not in err
    assert path.read_bytes() == before
