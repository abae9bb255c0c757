"""The quiet-machine guard wherever this tool measures: ``explorer measure``, ``explorer verify`` and
a bundle's ``runner.py`` take the same options, and a wait is said on stderr, output piped or not.

The guard sees fed load readings (:func:`feed_load`), never the real machine's: the machine that
runs the tests is shared, and its load says nothing about the code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from explorer.cli import main
from explorer.db import Measurement, open_database
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from explorer.measure import protocol
from explorer.remote import runner_main
from explorer.remote.bundle import render_runner
from search_spaces.base import arch_id
from search_spaces.toys import ConvStackConfig

TINY = ConvStackConfig(channels=8, layers=2, resolution=32)
#: short enough that a wait of the whole limit costs a second
QUICK = dict(warmup=1, block_size=2, reference_block_size=2, min_samples=2, max_samples=4, time_limit_s=0.2,
             remeasure=False, quiet_window_s=0.2, quiet_wait_s=0.6)
WAITING = "waiting for a quiet machine"


def feed_load(monkeypatch, other_cores: float) -> None:
    """Make every load window of the guard read ``other_cores`` cores used by other processes."""
    ticks = itertools.count()

    def counters() -> protocol.CpuCounters:
        wall = next(ticks) * 0.5
        return protocol.CpuCounters(wall, wall * other_cores, 0.0, 0.0)

    monkeypatch.setattr(protocol, "cpu_counters", counters)


def fake_bundle(directory: Path, device: str, settings: ProtocolSettings, config=TINY) -> Path:
    """A bundle of one model as ``explorer bundle`` lays it out, with a stand-in model file (the
    runner's timer is replaced in the tests, so nothing loads it)."""
    model = directory / "models" / f"{arch_id(config)}.onnx"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"stand-in")
    manifest = {
        "format": runner_main.MANIFEST_FORMAT, "bundle_id": "b0123456789abcde", "measurement_key": "m0123456789abcde",
        "created_at": "", "device": device, "backend": "ort", "input_seed": 0,
        "runtime": {"runtime": "onnxruntime CPUExecutionProvider", "batch": 1, "threads": 1,
                    "graph_optimization_level": "ORT_ENABLE_ALL", "opset": 17},
        "protocol": settings.to_dict(), "reference": None,
        "models": [{"key": arch_id(config), "purpose": "campaign", "arch_id": arch_id(config), "name": None,
                    "config": {"space": config.space, **config.to_dict()},
                    "file": f"models/{model.name}", "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
                    "input_shape": list(config.input_shape(1))}],
    }
    (directory / runner_main.MANIFEST_NAME).write_text(json.dumps(manifest))
    return directory


def run_fake_runner(monkeypatch, bundle: Path, output: Path, *options: str) -> int:
    """``runner.py BUNDLE --output OUTPUT OPTIONS`` in this process, each model timed at 1 ms."""
    monkeypatch.setattr(runner_main, "ort_timer", lambda *args: (lambda: 1.0))
    return runner_main.main([str(bundle), "--output", str(output), *options])


def test_runner_takes_the_guard_options_and_says_that_it_waits(monkeypatch, tmp_path, capfd):
    bundle = fake_bundle(tmp_path / "bundle", "rk3588-board", ProtocolSettings(**QUICK))
    feed_load(monkeypatch, 1.5)
    assert run_fake_runner(monkeypatch, bundle, tmp_path / "r.jsonl", "--busy-cores", "0.9",
                           "--quiet-wait", "0.4") == 0
    err = capfd.readouterr().err
    assert f"runner: {WAITING}: other processes use 1.50 cores (more than --busy-cores 0.9)" in err
    assert "after 0.4 s at most" in err
    [line] = (tmp_path / "r.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["settings"]["protocol"]["busy_cores"] == 0.9 and record["settings"]["protocol"]["quiet_wait_s"] == 0.4
    assert protocol.BUSY in record["result"]["flags"]
    waited = record["result"]["load_before"]["quiet_wait"]
    assert not waited["quiet"] and waited["waited_s"] >= 0.4


def test_runner_allow_busy_does_not_wait_and_a_bad_value_is_one_line(monkeypatch, tmp_path, capfd):
    bundle = fake_bundle(tmp_path / "bundle", "rk3588-board", ProtocolSettings(**{**QUICK, "quiet_wait_s": 600.0}))
    feed_load(monkeypatch, 1.5)
    assert run_fake_runner(monkeypatch, bundle, tmp_path / "r.jsonl", "--allow-busy") == 0
    assert WAITING not in capfd.readouterr().err
    record = json.loads((tmp_path / "r.jsonl").read_text())
    assert record["settings"]["protocol"]["allow_busy"] is True
    assert record["result"]["load_before"]["quiet_wait"]["waited_s"] < 5
    with pytest.raises(SystemExit, match="runner: busy_cores must be >= 0"):
        run_fake_runner(monkeypatch, bundle, tmp_path / "r.jsonl", "--busy-cores", "-1")


def test_the_generated_runner_declares_the_guard_options():
    source = render_runner()
    assert all(f'"--{name}"' in source for name in ("quiet-wait", "busy-cores", "allow-busy"))


def test_a_local_measurement_says_on_stderr_that_it_waits(monkeypatch, tmp_path, capfd):
    """What ``explorer measure`` and ``explorer verify`` run: stdout is captured here, not a
    terminal, as when piped; the wait is said on stderr all the same."""
    db = open_database(tmp_path / "m.db")
    feed_load(monkeypatch, 1.2)
    spec = CampaignSpec(device="local", n=None, sampler="one", protocol=ProtocolSettings(**{**QUICK, "busy_cores": 0.7}),
                        drift_check=(), reference=None)
    report = run_campaign(db, spec, samplers={"one": lambda request: [TINY]}, show_progress=True)
    assert report.measured == 1
    out, err = capfd.readouterr()
    assert f"{WAITING}: other processes use 1.20 cores (more than --busy-cores 0.7)" in err and WAITING not in out
    with db.session() as session:
        row = session.scalars(select(Measurement).where(Measurement.device == "local")).one()
        assert protocol.BUSY in row.flags and row.settings["protocol"]["busy_cores"] == 0.7


def test_verify_passes_the_guard_options_to_its_measurements(monkeypatch, tmp_path, capsys):
    import explorer.search
    import explorer.verify

    seen = []

    def verify_shortlist(db, study, device, **options):
        seen.append(options["protocol"])
        raise SystemExit(0)  # what it measures is the campaign's business (the test above)

    open_database(tmp_path / "m.db").close()
    stored = SimpleNamespace(study_name="s", user_attrs={})  # a study that records no evidence
    monkeypatch.setattr(explorer.search, "load_study", lambda storage, name: stored)
    monkeypatch.setattr(explorer.verify, "verify_shortlist", verify_shortlist)
    common = ["verify", "--study", "s", "--device", "local", "--db", str(tmp_path / "m.db"),
              "--storage", f"sqlite:///{tmp_path}/studies.db"]
    for options in ([], ["--quiet-wait", "30", "--busy-cores", "1.5", "--allow-busy"]):
        with pytest.raises(SystemExit):
            main(common + options)
    default, given = seen
    assert (default.quiet_wait_s, default.busy_cores, default.allow_busy) == (600.0, 0.3, False)
    assert (given.quiet_wait_s, given.busy_cores, given.allow_busy) == (30.0, 1.5, True)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(common + ["--busy-cores", "-1"])
    assert exit_info.value.code == 2 and "--busy-cores: '-1' is not a number >= 0" in capsys.readouterr().err
