"""A board's profile holds the board's timings only: once a bundle's results are ingested into it,
measuring on this host into it is a one-line error that says how to name a profile for this host,
and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from explorer.cli import main
from explorer.db import Measurement, OtherHostError, open_database, resolve_device, upsert_architecture
from explorer.devices import DeviceProfile, add_device
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from explorer.measure.campaign import LocalTransport
from explorer.remote import ingest_results
from search_spaces.base import arch_id
from search_spaces.toys import ConvStackConfig

from test_guard_everywhere import QUICK, fake_bundle, run_fake_runner

BOARD = "rk3588-board"
OTHER = ConvStackConfig(channels=16, layers=1, resolution=32)


@pytest.fixture
def board_db(tmp_path, monkeypatch):
    """A database whose board profile holds one result of a bundle's runner (run here, allowed busy)."""
    monkeypatch.setenv("EXPLORER_HOST_ID", "this-host")
    db = open_database(tmp_path / "m.db")
    with db.session() as session:
        add_device(session, DeviceProfile(BOARD, hardware="Rockchip RK3588", default_threads=1))
    bundle = fake_bundle(tmp_path / "bundle", BOARD, ProtocolSettings(**QUICK))
    assert run_fake_runner(monkeypatch, bundle, tmp_path / "results.jsonl", "--allow-busy") == 0
    report = ingest_results(db, tmp_path / "results.jsonl", bundle_dir=bundle)
    assert report.added == 1 and not report.rejected
    yield db
    db.close()


def stored(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Measurement).where(Measurement.device == BOARD))


def test_measuring_here_into_a_board_profile_with_ingested_rows_is_refused(board_db):
    spec = CampaignSpec(device=BOARD, n=None, sampler="one", protocol=ProtocolSettings(**QUICK), drift_check=(),
                        reference=None)
    with pytest.raises(OtherHostError) as refused:
        run_campaign(board_db, spec, samplers={"one": lambda request: [OTHER]})
    message = str(refused.value)
    assert "\n" not in message and f"device '{BOARD}' holds measurements made elsewhere" in message
    assert "by the runner of bundle b0123456789abcde" in message
    assert "explorer devices add --name NAME --this-host" in message and f"--device {BOARD}" in message
    assert stored(board_db) == 1
    with board_db.session() as session:
        assert resolve_device(session, BOARD).host is None  # not claimed by this host either


def test_the_cli_says_it_in_one_line_and_exits_non_zero(board_db, capsys):
    quick = ["--allow-busy", "--time-limit", "0.2", "--min-samples", "2", "--max-samples", "2", "--no-drift-check",
             "--resolution", "64"]  # what a regression would measure, it measures quickly
    assert main(["measure", "--device", BOARD, "--n", "1", *quick, "--db", board_db.url]) == 2
    err = capsys.readouterr().err
    assert "holds measurements made elsewhere" in err and "Traceback" not in err
    assert stored(board_db) == 1


def test_a_fresh_profile_is_claimed_and_a_row_of_another_host_id_refuses(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_HOST_ID", "this-host")
    db = open_database(tmp_path / "m.db")
    with db.session() as session:
        add_device(session, DeviceProfile("mine", default_threads=1))
        device = resolve_device(session, "mine")
        LocalTransport().check(device, "ort")
        assert device.host["host_id"] == "this-host"
        upsert_architecture(session, OTHER)
        session.add(Measurement(arch_id=arch_id(OTHER), device="mine", backend="ort", batch=1, threads=1, resolution=32,
                                metric="latency_ms", status="ok", provenance="measured", settings={},
                                host={"host_id": "another-host", "cpu": "Cortex-A76", "cores": 4}))
        session.flush()
        with pytest.raises(OtherHostError, match="on host id another-host, on Cortex-A76, 4 cores"):
            LocalTransport().check(device, "ort")
