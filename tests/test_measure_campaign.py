"""Real measurement campaigns on tiny architectures: storage, resume, failures, backends, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import torch

from explorer import resolve
from explorer.cli import main
from explorer.db import Architecture, Measurement, open_database
from explorer.errors import UserError
from explorer.measure import (
    SAMPLERS,
    BackendUnavailable,
    CampaignSpec,
    ProtocolSettings,
    get_backend,
    plan_campaign,
    run_campaign,
)
from search_spaces.base import KnobError

TINY = ProtocolSettings(warmup=1, block_size=4, reference_block_size=2, min_samples=4, max_samples=8,
                        time_limit_s=0.2, remeasure=False)
#: a busy row is measured again by the next run, so the resume tests need a host the guard reads as
#: quiet, whatever else runs beside them
pytestmark = pytest.mark.usefixtures("quiet_host")
NAMES = ("conv20-c24", "toy-conv-1", "fused-mbconv-c16")


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "m.db")


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "archs.txt"
    path.write_text("\n".join(NAMES) + "\n")
    return path


def spec(names_file, **overrides) -> CampaignSpec:
    values = dict(device="local", n=None, sampler="file", file=str(names_file), resolution=32,
                  protocol=TINY, drift_check=(), name="test", reference=("conv20-c24", 32))
    return CampaignSpec(**{**values, **overrides})


def rows(database) -> list[Measurement]:
    with database.session() as session:
        return list(session.scalars(sa.select(Measurement).order_by(Measurement.id)))


def test_campaign_stores_every_measurement_with_its_provenance(db, names_file):
    report = run_campaign(db, spec(names_file))
    assert (report.measured, report.failed, report.skipped) == (3, 0, 0)
    stored = rows(db)
    assert {r.arch_id for r in stored} == {resolve(n, 32).arch_id for n in NAMES}
    for row in stored:
        assert (row.device, row.backend, row.batch, row.threads, row.resolution) == ("local", "ort", 1, 1, 32)
        assert row.status == "ok" and row.provenance == "measured" and row.campaign == "test"
        assert row.metric == "latency_ms" and row.value == row.median_ms
        assert row.n_samples == len(row.samples) >= TINY.min_samples and row.warmup == 1
        assert row.ci_low_ms <= row.median_ms <= row.ci_high_ms and row.p5_ms <= row.p95_ms
        # stored samples are rounded to 10 ns; the ratio was computed before rounding
        assert row.relative_to_reference == pytest.approx(
            row.median_ms / _median(row.settings["reference_samples_ms"]), rel=1e-4)
        assert row.settings["graph_optimization_level"] == "ORT_ENABLE_ALL"
        assert row.settings["intra_op_num_threads"] == 1
        assert row.settings["reference"] == {"name": "conv20-c24", "resolution": 32,
                                             "arch_id": resolve("conv20-c24", 32).arch_id}
        assert len(row.model_sha256) == 64
        assert row.host["cores"] and row.host["versions"]["onnxruntime"] and "loadavg" in row.host["load_before"]
        assert row.host["load_before"]["quiet_wait"]["quiet"] in (True, False) and "other_cores" in row.host["load_during"]
        assert row.started_at <= row.ended_at
    with db.session() as session:
        names = set(session.scalars(sa.select(Architecture.name)))
    assert names == set(NAMES)


def _median(values):
    import numpy as np

    return float(np.median(values))


class Interrupted(Exception):
    pass


def test_interrupted_campaign_resumes_without_repeating_or_losing(db, names_file):
    seen = []

    def crash_after_first(outcome):
        seen.append(outcome.job.arch_id)
        raise Interrupted

    with pytest.raises(Interrupted):
        run_campaign(db, spec(names_file), callback=crash_after_first)
    assert [r.arch_id for r in rows(db)] == seen

    plan = plan_campaign(db, spec(names_file))
    assert plan.skipped == 1 and len(plan.jobs) == 2
    report = run_campaign(db, spec(names_file))
    assert (report.measured, report.skipped) == (2, 1)
    stored = [r.arch_id for r in rows(db)]
    assert sorted(stored) == sorted(resolve(n, 32).arch_id for n in NAMES)

    assert run_campaign(db, spec(names_file)).measured == 0
    assert run_campaign(db, spec(names_file, force=True)).measured == 3
    assert len(rows(db)) == 6


@pytest.mark.slow
def test_other_settings_are_measured_separately(db, names_file):
    run_campaign(db, spec(names_file))
    assert len(plan_campaign(db, spec(names_file, threads=2)).jobs) == 3
    assert len(plan_campaign(db, spec(names_file)).jobs) == 0


@dataclass(frozen=True)
class BrokenConfig:
    """A config whose model cannot be built (stands in for a bug in a design space)."""

    space: ClassVar[str] = "broken"
    resolution: int = 32

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution}

    def build(self):
        raise RuntimeError("cannot build this one")

    def op_table(self):
        raise RuntimeError("no op table either")

    def input_shape(self, batch: int = 1):
        return (batch, 3, self.resolution, self.resolution)

    def with_resolution(self, resolution: int):
        return BrokenConfig(resolution)


def test_failing_config_is_recorded_and_the_campaign_goes_on(db, names_file):
    samplers = {**SAMPLERS, "with-broken": lambda request: [BrokenConfig(), resolve("conv20-c24", 32)]}
    report = run_campaign(db, spec(names_file, sampler="with-broken"), samplers=samplers)
    assert (report.measured, report.failed) == (1, 1)
    failed, ok = rows(db)
    assert failed.status == "failed" and "build: RuntimeError: cannot build this one" in failed.error
    assert failed.samples == [] and failed.median_ms is None
    assert "op table failed" in failed.note
    assert ok.status == "ok"
    assert run_campaign(db, spec(names_file, sampler="with-broken"), samplers=samplers).skipped == 2
    retried = run_campaign(db, spec(names_file, sampler="with-broken", retry_failed=True), samplers=samplers)
    assert (retried.skipped, retried.failed) == (1, 1)  # only the failed one is tried again
    assert [r.status for r in rows(db)] == ["failed", "ok", "failed"]  # the history is kept


def test_bad_campaign_input_is_a_clear_error(db, names_file):
    with pytest.raises(KnobError, match="sampler.*random, sobol, presets, file"):
        run_campaign(db, spec(names_file, sampler="grid"))
    with pytest.raises(KnobError, match="'n'"):
        run_campaign(db, spec(names_file, sampler="random", n=None))
    with pytest.raises(KnobError, match="backend.*ort, torch, torchscript, cuda"):
        run_campaign(db, spec(names_file, backend="tflite"))
    with pytest.raises(UserError, match="published figures only"):
        run_campaign(db, spec(names_file, device="raspi5"))
    assert rows(db) == []


def test_samplers_give_the_requested_configs(db):
    from explorer.measure.campaign import SampleRequest

    random = SAMPLERS["random"](SampleRequest(n=4, seed=1, resolution=160))
    assert len(random) == 4 and {c.resolution for c in random} == {160}
    assert [c.arch_id for c in random] == [c.arch_id for c in SAMPLERS["random"](SampleRequest(n=4, seed=1,
                                                                                             resolution=160))]
    assert len(SAMPLERS["sobol"](SampleRequest(n=4, seed=0))) == 4
    presets = SAMPLERS["presets"](SampleRequest(n=None, seed=0))
    assert resolve("lowformer-b1").arch_id in {c.arch_id for c in presets} and len(presets) >= 8
    assert {"lowformer", "efficientvit", "fmvit", "mcga"} <= {c.space for c in presets}


@pytest.mark.parametrize("space", ["efficientvit", "fmvit", "mcga"])
def test_samplers_draw_from_the_requested_space(db, space):
    from explorer.measure.campaign import SampleRequest

    for sampler in ("random", "sobol"):
        configs = SAMPLERS[sampler](SampleRequest(n=3, seed=0, space=space))
        assert len(configs) == 3 and {c.space for c in configs} == {space}
    presets = SAMPLERS["presets"](SampleRequest(n=None, seed=0, space=space))
    assert presets and {c.space.split("-")[0] for c in presets} == {space}
    assert CampaignSpec(space=space, n=5).label() == f"{space}-random-n5-seed0"
    with pytest.raises(KnobError, match="space.*lowformer, efficientvit, fmvit, mcga"):
        run_campaign(db, CampaignSpec(space="resnet", n=1))


@pytest.mark.parametrize("backend", ["torch", "torchscript"])
def test_torch_backends(db, names_file, backend):
    report = run_campaign(db, spec(names_file, backend=backend, threads=1))
    assert report.measured == 3
    for row in rows(db):
        assert row.backend == backend and row.threads == 1 and row.settings["torch"] == torch.__version__


@pytest.mark.slow
def test_throughput_at_a_larger_batch_is_stored_per_image(db, names_file):
    run_campaign(db, spec(names_file, batch=4))
    for row in rows(db):
        assert row.metric == "throughput_img_s" and row.batch == 4
        assert row.value == pytest.approx(1000.0 / row.median_ms)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA")
def test_cuda_backend_is_unavailable_without_a_gpu(db, names_file):
    with pytest.raises(BackendUnavailable, match="CUDA"):
        get_backend("cuda").check_available()
    with pytest.raises(BackendUnavailable):
        run_campaign(db, spec(names_file, backend="cuda"))


@pytest.mark.slow
def test_drift_check_measures_presets_at_start_and_end(db, tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("conv20-c24\n")
    report = run_campaign(db, spec(path, drift_check=("lowformer-b0",)))
    assert report.measured == 1 and len(report.drift) == 1
    check = report.drift[0]
    assert check.start_ms > 0 and check.end_ms > 0 and check.change is not None
    flagged = [r for r in rows(db) if "drift-check" in r.flags]
    assert len(flagged) == 2 and {r.arch_id for r in flagged} == {resolve("lowformer-b0").arch_id}


@pytest.mark.slow
def test_cli_devices_measure_and_list(tmp_path, names_file, capsys):
    db = str(tmp_path / "cli.db")
    assert main(["devices", "--json", "--db", db, "--create-db"]) == 0
    devices = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert devices["raspi5-ort"]["aliases"] == ["raspi5"] and devices["local"]["provenance"] == "measured"

    assert main(["measure", "--device", "local", "--no-drift-check", "--allow-busy", "--sampler", "file", "--file",
                 str(names_file), "--resolution", "32", "--time-limit", "0.2", "--min-samples", "4",
                 "--max-samples", "8", "--json", "--db", db]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["measured"] == 3 and report["device"] == "local"

    assert main(["measurements", "list", "--device", "local", "--json", "--db", db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) >= 3
    required = {"arch_id", "name", "device", "backend", "batch", "threads", "resolution", "median_ms",
                "n_samples", "cv", "provenance"}
    assert all(required <= set(row) for row in listed)
    assert {row["name"] for row in listed} >= set(NAMES)
    assert main(["measurements", "list", "--provenance", "published", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["measure", "--device", "nope", "--n", "1", "--db", db]) == 2
    assert "unknown device 'nope'" in capsys.readouterr().err


def test_cli_adds_a_device_from_a_file_and_flags(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    profile = tmp_path / "pi.json"
    profile.write_text(json.dumps({"name": "my-pi", "description": "desk Pi", "hardware": "Raspberry Pi 4",
                                   "backend": "ort", "default_threads": 4, "aliases": ["pi"]}))
    assert main(["devices", "add", "--file", str(profile), "--db", db, "--create-db"]) == 0
    assert main(["devices", "add", "--name", "laptop", "--threads", "4", "--alias", "lap", "--db", db]) == 0
    assert main(["devices", "add", "--name", "pi", "--db", db]) == 2
    assert "'pi'" in capsys.readouterr().err
    assert main(["devices", "--json", "--db", db]) == 0
    devices = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert devices["my-pi"]["aliases"] == ["pi"] and devices["my-pi"]["default_threads"] == 4
    assert devices["laptop"]["provenance"] == "measured"


@pytest.mark.slow
@pytest.mark.serial  # the kill must land while the second model is timed
def test_killed_campaign_process_resumes(tmp_path, names_file):
    db = tmp_path / "killed.db"
    # no load can be fed to a child process: its guard neither waits nor flags (a busy row would be
    # measured again, not skipped)
    command = [sys.executable, "-c", "import sys; from explorer.cli import main; sys.exit(main(sys.argv[1:]))",
               "measure", "--device", "local", "--no-drift-check", "--allow-busy", "--busy-cores", "1000",
               "--sampler", "file",
               "--file", str(names_file), "--resolution", "32", "--time-limit", "1", "--min-samples", "200",
               "--max-samples", "200", "--json", "--db", str(db)]
    database = open_database(db)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 600
    measured = lambda: {r.arch_id for r in rows(database) if "drift-check" not in r.flags}  # noqa: E731
    while time.monotonic() < deadline and not measured():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = measured()
    assert 1 <= len(done) < 3
    report = run_campaign(database, spec(names_file))
    assert report.skipped == len(done) and report.measured == 3 - len(done)
    assert sorted(r.arch_id for r in rows(database) if "drift-check" not in r.flags) == sorted(
        resolve(n, 32).arch_id for n in NAMES)


@pytest.mark.postgres
def test_campaign_round_trip_on_postgres(postgres_url, names_file):
    from explorer.db import list_measurements, ok_measurements
    from explorer.devices import load_published

    database = open_database(postgres_url)
    with database.session() as session:
        published = load_published(session)
    assert published.loaded > 100 and published.skipped == ()

    def crash_after_first(outcome):
        raise Interrupted

    with pytest.raises(Interrupted):
        run_campaign(database, spec(names_file), callback=crash_after_first)
    report = run_campaign(database, spec(names_file))
    assert (report.measured, report.skipped) == (2, 1)
    with database.session() as session:
        measured = ok_measurements(session, "local", backend="ort", batch=1, threads=1)
        assert sorted(r.arch_id for r in measured) == sorted(resolve(n, 32).arch_id for n in NAMES)
        assert all(len(r.samples) == r.n_samples and r.host["cores"] for r in measured)
        assert len(list_measurements(session, "raspi5", "published")) > 0
