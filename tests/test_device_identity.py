"""``local`` is the host that runs the command: hosts never mix under one profile, old ``local``
rows become a named profile flagged by their recorded load, and the thread count is probed."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from explorer.architectures import resolve
from explorer.cli import main
from explorer.db import (
    BUSY_FLAG,
    Device,
    Measurement,
    OtherHostError,
    database_url,
    host_id,
    ok_measurements,
    open_database,
    resolve_device,
)
from explorer.db.database import make_engine, upgrade
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from explorer.measure.probe import best_thread_count, pair_deviations, probe_threads, repeatability

TINY = ProtocolSettings(warmup=1, block_size=4, reference_block_size=2, min_samples=4, max_samples=8,
                        time_limit_s=0.2, remeasure=False, quiet_window_s=0.2, quiet_wait_s=1.0)
pytestmark = pytest.mark.usefixtures("quiet_host")  # whatever else runs beside the tests


def campaign(device: str = "local") -> CampaignSpec:
    return CampaignSpec(device=device, n=2, sampler="presets", space="lowformer", resolution=64, protocol=TINY,
                        drift_check=(), reference=("conv20-c24", 32))


@pytest.fixture
def host_a(monkeypatch):
    monkeypatch.setenv("EXPLORER_HOST_ID", "host-a")


def test_host_id_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLORER_HOST_ID", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    first = host_id()
    assert len(first) == 32 and host_id() == first
    assert (tmp_path / "explorer" / "host-id").read_text().strip() == first


def test_first_host_claims_local_and_another_host_gets_a_clear_error(tmp_path, monkeypatch, host_a):
    db = open_database(tmp_path / "m.db")
    report = run_campaign(db, campaign())
    assert report.measured == 2 and report.skipped == 0  # nothing skipped on a fresh database
    with db.session() as session:
        local = resolve_device(session, "local")
        assert local.name == "local" and local.host["host_id"] == "host-a" and local.host["cores"] >= 1
    monkeypatch.setenv("EXPLORER_HOST_ID", "host-b")
    with pytest.raises(OtherHostError, match="devices add --name NAME --this-host"):
        run_campaign(db, campaign())
    assert main(["measure", "--device", "local", "--sampler", "presets", "--db", str(tmp_path / "m.db")]) == 2


def test_a_named_profile_of_this_host_is_what_local_means_here(tmp_path, monkeypatch, capsys, host_a):
    path = str(tmp_path / "m.db")
    assert main(["devices", "add", "--name", "lab-pc", "--this-host", "--threads", "1", "--db", path,
                 "--create-db"]) == 0
    db = open_database(path)
    with db.session() as session:
        assert resolve_device(session, "local").name == "lab-pc"
    run_campaign(db, campaign())
    with db.session() as session:
        assert {m.device for m in session.scalars(sa.select(Measurement))} == {"lab-pc"}
    monkeypatch.setenv("EXPLORER_HOST_ID", "host-b")
    with pytest.raises(OtherHostError, match="another host"):
        run_campaign(db, campaign("lab-pc"))
    with db.session() as session:
        assert resolve_device(session, "local").name == "local"  # unclaimed: host-b may take it


def test_predict_on_a_host_without_measurements_says_what_to_run(tmp_path, capsys, host_a):
    path = str(tmp_path / "m.db")
    assert main(["predict", "--device", "local", "lowformer-b1", "--db", path, "--create-db"]) == 2
    err = capsys.readouterr().err
    assert "explorer measure --device local --sampler presets" in err and "Traceback" not in err


def _file_with_loaded_local_rows(path) -> None:
    """A database at revision 0002 whose 'local' rows were measured at load averages 18 and 0.5."""
    engine = make_engine(database_url(path))
    upgrade(engine, "0002")
    config = resolve("lowformer-b0")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO devices (name, aliases, description, hardware, runtime, backend, default_threads,"
            " default_batch, provenance, source) VALUES ('local', '[]', '', '', 'ORT', 'ort', 2, 1, 'measured', NULL)"))
        connection.execute(sa.text(
            "INSERT INTO architectures (arch_id, space, name, config_json, resolution, exact, created_at)"
            " VALUES (:id, 'lowformer', 'lowformer-b0', :cfg, 224, 1, :now)"),
            {"id": config.arch_id, "cfg": json.dumps({"space": "lowformer", **config.to_dict()}), "now": now})
        for load, median in ((18.0, 30.0), (0.5, 10.0)):
            host = {"cpu": "Test CPU 9000", "cores": 2, "load_before": {"loadavg": [load, load, load]}}
            connection.execute(sa.text(
                "INSERT INTO measurements (arch_id, device, backend, batch, threads, resolution, metric, median_ms,"
                " samples, n_samples, warmup, host, status, provenance, settings, flags) VALUES (:id, 'local', 'ort',"
                " 1, 2, 224, 'latency_ms', :median, '[]', 3, 5, :host, 'ok', 'measured', '{}', '[]')"),
                {"id": config.arch_id, "median": median, "host": json.dumps(host)})
    engine.dispose()


def test_migration_moves_old_local_rows_to_a_named_profile_flagged_by_load(tmp_path):
    path = tmp_path / "old.db"
    _file_with_loaded_local_rows(path)
    db = open_database(path)
    with db.session() as session:
        legacy = session.get(Device, "test-cpu-9000-2c-ort-legacy")
        assert legacy is not None and "1 measured with a load average above the 2 cores" in legacy.description
        rows = list(session.scalars(sa.select(Measurement).order_by(Measurement.id)))
        assert [r.device for r in rows] == [legacy.name] * 2
        assert [BUSY_FLAG in r.flags for r in rows] == [True, False]
        assert [r.median_ms for r in ok_measurements(session, legacy)] == [10.0]  # busy row left out
        assert len(ok_measurements(session, legacy, include_busy=True)) == 1  # latest of the two
        local = session.get(Device, "local")
        assert local.host is None and local.default_threads == 1


def test_repeatability_counts_pairs():
    assert pair_deviations([10.0, 10.5, 12.0]) == pytest.approx([0.05, 0.2, 12.0 / 10.5 - 1])
    steady = repeatability(1, {"a": [10.0, 10.1, 9.9], "b": [5.0, 5.05, 5.0]})
    jumpy = repeatability(2, {"a": [10.0, 13.0, 9.0], "b": [5.0, 6.5, 5.0]})
    assert steady.within_10pct == 1.0 and jumpy.within_10pct < 0.5
    assert best_thread_count([jumpy, steady]) == 1
    tie = repeatability(4, {"a": [10.0, 10.1, 9.9], "b": [5.0, 5.05, 5.0]})
    assert best_thread_count([tie, steady]) == 1  # a tie goes to fewer threads


@pytest.mark.slow
def test_probe_measures_each_thread_count_and_stores_the_best(tmp_path, host_a):
    db = open_database(tmp_path / "m.db")
    report = probe_threads(db, "local", threads=(1, 2), n=2, passes=2, protocol=TINY)
    assert [r.threads for r in report.results] == [1, 2] and all(r.pairs == 2 for r in report.results)
    with db.session() as session:
        local = resolve_device(session, "local")
        assert local.default_threads == report.best_threads and local.probe["best_threads"] == report.best_threads
        assert local.host["host_id"] == "host-a"
        assert session.scalar(sa.select(sa.func.count()).select_from(Measurement)) == 0  # the probe stores no rows
