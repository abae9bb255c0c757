"""The SSH transport against a real OpenSSH server on 127.0.0.1, including a dropped link."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest_ssh import SSHServer, sshd_server  # noqa: F401  (the fixture)
from explorer.db import Measurement, open_database
from explorer.devices import DeviceProfile, add_device
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from explorer.remote import ConnectionLost, RemoteError, SSHTarget, SSHTransport
from search_spaces.base import arch_id
from search_spaces.toys import ConvStackConfig, MBConvStackConfig

pytestmark = pytest.mark.ssh

#: each model is timed for its full 0.6 s (the CI target is out of reach), so a drop lands mid-run;
#: the remote runner is a child process, where no load can be fed: its guard neither waits nor flags
TIMED = ProtocolSettings(warmup=1, block_size=5, reference_block_size=2, min_samples=5, max_samples=100_000,
                         target_rel_ci=1e-6, time_limit_s=0.6, remeasure=False, quiet_window_s=0.0,
                         busy_cores=1000.0)
TINY = (ConvStackConfig(channels=8, layers=2, resolution=32), MBConvStackConfig(channels=8, resolution=32),
        ConvStackConfig(channels=16, layers=1, resolution=32))


@pytest.fixture
def setup(tmp_path: Path, sshd_server: SSHServer):  # noqa: F811
    database = open_database(tmp_path / "measurements.db")
    with database.session() as session:
        add_device(session, DeviceProfile(name="loopback", backend="ort", default_threads=1,
                                          description="this host, reached over SSH"))
    configs = tmp_path / "configs.jsonl"
    configs.write_text("".join(json.dumps({"space": c.space, **c.to_dict()}) + "\n" for c in TINY))
    spec = CampaignSpec(device="loopback", n=None, sampler="file", file=str(configs), protocol=TIMED,
                        drift_check=(), name="over-ssh", reference=("conv20-c24", 32))
    target = SSHTarget.parse(sshd_server.target, port=sshd_server.port, identity=sshd_server.identity,
                             python=sys.executable, known_hosts=sshd_server.known_hosts,
                             remote_dir=str(tmp_path / "remote-home" / ".explorer"))
    yield database, spec, target, tmp_path / "remote-home" / ".explorer"
    database.close()


def stored(database) -> list[Measurement]:
    with database.session() as session:
        return list(session.scalars(select(Measurement).order_by(Measurement.id)))


@pytest.mark.serial  # the drop must land while a model is timed
def test_ssh_campaign_survives_a_dropped_connection(setup, sshd_server: SSHServer):  # noqa: F811
    database, spec, target, remote = setup
    drops = []

    def drop_after_first(outcome) -> None:
        if not drops:
            drops.append(sshd_server.drop_connections())

    with pytest.raises(ConnectionLost, match="run again to resume"):
        run_campaign(database, spec, transport=SSHTransport(target, "loopback"), callback=drop_after_first)
    assert drops and drops[0] >= 1
    assert len(stored(database)) == 1

    progress: list[str] = []
    report = run_campaign(database, spec, transport=SSHTransport(target, "loopback", progress.append))
    rows = stored(database)
    assert sorted(r.arch_id for r in rows) == sorted(arch_id(c) for c in TINY)
    assert all(r.status == "ok" and r.device == "loopback" and r.samples and r.host["cpu"] for r in rows)
    assert report.skipped == 1 and report.measured == 2

    (results,) = (remote / "results").iterdir()
    keys = [json.loads(line)["key"] for line in results.read_text().splitlines()]
    assert sorted(keys) == sorted(arch_id(c) for c in TINY), "the remote runner measured a model twice"
    assert any("1 to measure, 1 already done" in line for line in progress), progress

    again = run_campaign(database, spec, transport=SSHTransport(target, "loopback"))
    assert (again.measured, again.skipped) == (0, 3) and len(stored(database)) == 3


def test_missing_remote_packages_are_a_clear_error(setup):
    database, spec, target, _ = setup
    broken = dataclasses.replace(target, python="/bin/false")
    with pytest.raises(RemoteError, match="pip install numpy onnxruntime"):
        run_campaign(database, spec, transport=SSHTransport(broken, "loopback"))
    assert stored(database) == []


def test_refused_key_is_a_clear_error(setup, tmp_path: Path):
    import paramiko

    database, spec, target, _ = setup
    stranger = tmp_path / "stranger_rsa"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(stranger))
    with pytest.raises(RemoteError, match="authentication"):
        run_campaign(database, spec, transport=SSHTransport(
            dataclasses.replace(target, identity=stranger), "loopback"))


@pytest.mark.slow
def test_study_over_ssh(setup):
    from explorer.study import StudyOptions, run_study

    database, _, target, _ = setup
    options = StudyOptions.make("attention", quick=True, resolutions=(8,), time_limit_s=0.05)
    options = dataclasses.replace(options, protocol=dataclasses.replace(
        options.protocol, quiet_window_s=TIMED.quiet_window_s, busy_cores=TIMED.busy_cores))
    result = run_study("attention", "loopback", database, options, transport=SSHTransport(target, "loopback"))
    assert result.device == "loopback" and all(row["latency_ms"] > 0 for row in result.rows)
    assert {r.device for r in stored(database)} == {"loopback"} and len(stored(database)) == 4


@pytest.mark.slow
def test_cli_measure_over_ssh(setup, sshd_server: SSHServer, tmp_path: Path, capsys):  # noqa: F811
    from explorer.cli import main

    database, spec, target, remote = setup
    argv = ["measure", "--device", "loopback", "--sampler", "file", "--file", spec.file, "--time-limit", "0.1",
            "--allow-busy", "--busy-cores", "1000",  # as TIMED: the remote runner's guard neither waits nor flags
            "--ssh", sshd_server.target, "--port", str(sshd_server.port), "--identity", str(sshd_server.identity),
            "--remote-python", sys.executable, "--known-hosts", str(sshd_server.known_hosts),
            "--remote-dir", str(remote), "--db", database.url, "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["device"], report["measured"], report["failed"]) == ("loopback", 3, 0)
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["skipped"] == 3
