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
            "--time-limit", "0.3", "--no-drift-check", "--allow-busy", "--db", str(db_path)]
    assert main(argv) == 0
    with database.session() as session:
        rows = session.query(Measurement).filter_by(device=DEVELOPMENT_HOST).order_by(Measurement.id).all()
    assert len(rows) == before + 1
    assert rows[-1].campaign.startswith("uncertainty") and rows[-1].resolution == 64


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped database with a new device bound to this host (standing in for a
    user's own machine); the development host's profile is its transfer source."""
    if not SHIPPED_DB.exists():
        pytest.skip("needs the shipped measurements.db")
    db_path = tmp_path / "measurements.db"
    db_path.write_bytes(SHIPPED_DB.read_bytes())
    monkeypatch.setenv("EXPLORER_HOST_ID", "test-new-board")
    assert main(["devices", "add", "--name", "newboard", "--this-host", "--threads", "1", "--db", str(db_path)]) == 0
    return db_path


def test_calibrate_strategy_measures_the_chosen_architectures(shipped_copy):
    argv = ["measure", "--device", "newboard", "--strategy", "calibrate", "--n", "1", "--resolution", "64",
            "--time-limit", "0.3", "--no-drift-check", "--allow-busy", "--db", str(shipped_copy)]
    assert main(argv) == 0
    with open_database(str(shipped_copy)).session() as session:
        rows = session.query(Measurement).filter_by(device="newboard").all()
    assert len(rows) == 1 and rows[0].campaign.startswith("calibrate") and rows[0].resolution == 64


def test_calibrate_strategy_plans_a_bundle_and_refuses_a_bad_n(shipped_copy, capsys):
    from explorer.cli.measure import strategy_samplers
    from explorer.measure import CampaignSpec, plan_campaign

    plan = plan_campaign(open_database(str(shipped_copy)), CampaignSpec(device="raspi5", n=4, sampler="calibrate"),
                         strategy_samplers())
    assert plan.device == "raspi5-ort" and len(plan.jobs) == 4
    capsys.readouterr()
    assert main(["measure", "--device", "newboard", "--strategy", "calibrate", "--n", "0",
                 "--db", str(shipped_copy)]) != 0
    error = capsys.readouterr().err.strip()
    assert "'n'" in error and "positive" in error and len(error.splitlines()) == 1
