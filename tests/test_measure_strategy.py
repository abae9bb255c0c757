"""``explorer measure --strategy uncertainty`` picks where the device's predictor is least sure."""

from pathlib import Path

import pytest

from explorer.cli import main
from explorer.db import open_database
from explorer.db.models import Device, Measurement

SHIPPED_DB = Path(__file__).resolve().parents[1] / "measurements.db"
DEVELOPMENT_HOST = "dev-epyc-2c-ort"  # the shipped profile of the host the database was measured on


@pytest.mark.skipif(not SHIPPED_DB.exists(), reason="needs the shipped measurements.db")
def test_uncertainty_strategy_measures_new_architectures(tmp_path, monkeypatch):
    db_path = tmp_path / "measurements.db"
    db_path.write_bytes(SHIPPED_DB.read_bytes())
    database = open_database(str(db_path))
    with database.session() as session:
        device = session.get(Device, DEVELOPMENT_HOST)
        monkeypatch.setenv("EXPLORER_HOST_ID", device.host["host_id"])  # this test stands in for that host
        before = session.query(Measurement).filter_by(device=DEVELOPMENT_HOST).count()
    argv = ["measure", "--device", "local", "--strategy", "uncertainty", "--n", "1", "--resolution", "64",
            "--time-limit", "0.3", "--no-drift-check", "--db", str(db_path)]
    assert main(argv) == 0
    with database.session() as session:
        rows = session.query(Measurement).filter_by(device=DEVELOPMENT_HOST).order_by(Measurement.id).all()
    assert len(rows) == before + 1
    assert rows[-1].campaign.startswith("uncertainty") and rows[-1].resolution == 64
