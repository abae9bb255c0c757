"""Bundles, the standalone runner and result ingestion, as a user with a board on the desk runs them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from explorer.db import Architecture, Measurement, open_database
from explorer.measure import Job, ProtocolSettings
from explorer.measure import protocol as protocol_module
from explorer.onnx_export import file_sha256
from explorer.remote import BundleError, Manifest, ingest_results, render_runner, write_bundle
from search_spaces.base import arch_id
from search_spaces.toys import ConvStackConfig, MBConvStackConfig

#: the runner is a child process, where no load can be fed: its guard neither waits nor flags busy
FAST = ProtocolSettings(warmup=1, block_size=5, reference_block_size=2, min_samples=5, max_samples=10,
                        time_limit_s=0.2, quiet_window_s=0.0, busy_cores=1000.0)
TINY = (ConvStackConfig(channels=8, layers=2, resolution=32), MBConvStackConfig(channels=8, resolution=32))
REFERENCE = ConvStackConfig(channels=4, layers=1, resolution=32)


def tiny_jobs(configs=TINY) -> list[Job]:
    return [Job(config, "ort", 1, 1) for config in configs]


def run_runner(bundle: Path, *extra: str) -> subprocess.CompletedProcess:
    """``python runner.py BUNDLE`` in isolated mode: nothing of this repository is importable."""
    return subprocess.run([sys.executable, "-I", str(bundle / "runner.py"), str(bundle), *extra],
                          capture_output=True, text=True, timeout=300, cwd=bundle.parent)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    write_bundle(tiny_jobs(), out, device="local", settings=FAST, reference=REFERENCE)
    return out


@pytest.fixture(scope="module")
def results(bundle: Path) -> Path:
    path = bundle.parent / "results.jsonl"
    done = run_runner(bundle, "--output", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == path.read_text()
    return path


@pytest.fixture
def database(tmp_path):
    db = open_database(tmp_path / "measurements.db")
    yield db
    db.close()


def counts(database) -> tuple[int, int]:
    with database.session() as session:
        return (session.scalar(select(func.count()).select_from(Measurement)),
                session.scalar(select(func.count()).select_from(Architecture)))


def test_runner_is_the_protocol_module_plus_a_main():
    source = render_runner()
    assert "def measure_once(" in source and "def main(" in source
    assert "import explorer" not in source and "from explorer" not in source
    body = [line for line in Path(protocol_module.__file__).read_text().splitlines()
            if line.strip() and not line.startswith("from __future__")]
    assert all(line in source.splitlines() for line in body)


def test_bundle_holds_models_manifest_and_runner(bundle: Path):
    manifest = Manifest.load(bundle)
    assert [m.arch_id for m in manifest.models] == [arch_id(c) for c in TINY]
    assert manifest.device == "local" and manifest.threads == 1 and manifest.protocol == FAST.to_dict()
    assert manifest.reference.arch_id == arch_id(REFERENCE)
    for model in (*manifest.models, manifest.reference):
        assert file_sha256(bundle / model.file) == model.sha256
    again = write_bundle(tiny_jobs(), bundle, device="local", settings=FAST, reference=REFERENCE)
    assert again.bundle_id == manifest.bundle_id


def test_bundle_refuses_a_directory_holding_another_bundle(bundle: Path):
    with pytest.raises(BundleError, match="already holds bundle"):
        write_bundle(tiny_jobs(TINY[:1]), bundle, device="local", settings=FAST, reference=REFERENCE)


def test_runner_writes_one_complete_line_per_model(bundle: Path, results: Path):
    manifest = Manifest.load(bundle)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["arch_id"] for r in records] == [m.arch_id for m in manifest.models]
    for record, model in zip(records, manifest.models):
        assert record["status"] == "ok", record["error"]
        assert record["bundle_id"] == manifest.bundle_id and record["model_sha256"] == model.sha256
        result = record["result"]
        assert len(result["samples"]) == result["stats"]["n"] >= FAST.min_samples
        assert result["reference_samples"] and result["relative_to_reference"] > 0
        assert {"cpu", "cores", "python", "versions"} <= set(record["host"])
        assert record["host"]["versions"]["onnxruntime"]


def test_runner_resumes_and_drops_a_cut_line(bundle: Path, results: Path, tmp_path: Path):
    partial = tmp_path / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    partial.write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    done = run_runner(bundle, "--output", str(partial))
    assert done.returncode == 0, done.stderr
    assert "dropped an incomplete last line" in done.stderr and "1 to measure, 1 already done" in done.stderr
    stored = partial.read_text().splitlines(keepends=True)
    assert stored[0] == lines[0] and len(stored) == 2
    assert json.loads(stored[1])["arch_id"] == json.loads(lines[1])["arch_id"]
    assert done.stdout == "".join(stored), "stdout carries every model: the stored one, then the new one"
    again = run_runner(bundle, "--output", str(partial))
    assert again.stdout == "".join(stored) and "0 to measure" in again.stderr
    assert partial.read_text() == "".join(stored)


def test_ingest_stores_every_sample_and_is_idempotent(database, bundle: Path, results: Path):
    first = ingest_results(database, results, bundle_dir=bundle)
    assert (first.added, first.duplicates, first.rejected) == (2, 0, ())
    second = ingest_results(database, results)
    assert (second.added, second.duplicates, second.rejected) == (0, 2, ())
    assert counts(database) == (2, 2)
    record = json.loads(results.read_text().splitlines()[0])
    with database.session() as session:
        row = session.scalars(select(Measurement).where(Measurement.arch_id == record["arch_id"])).one()
        assert row.samples == pytest.approx(record["result"]["samples"], abs=1e-5)  # stored to 10 ns
        assert row.median_ms == pytest.approx(record["result"]["stats"]["median"])
        assert (row.device, row.backend, row.threads, row.status) == ("local", "ort", 1, "ok")
        assert row.model_sha256 == record["model_sha256"] and row.campaign == f"bundle-{record['bundle_id']}"


def _corrupt(lines: list[str], case: str) -> str:
    record = json.loads(lines[0])
    if case == "truncated":
        return "".join(lines) + lines[0][:100]
    if case == "duplicates":
        return "".join(lines + lines)
    if case == "garbage":
        return "".join(lines) + "this is not json\n[1, 2]\n"
    if case == "wrong types":
        return json.dumps({**record, "batch": "1"}) + "\n"
    if case == "unknown architecture":
        return json.dumps({**record, "config": {**record["config"], "space": "no-such-space"}}) + "\n"
    if case == "id of another config":
        return json.dumps({**record, "arch_id": "0123456789abcdef"}) + "\n"
    if case == "stats not of the samples":
        result = {**record["result"], "stats": {**record["result"]["stats"], "median": 1e6}}
        return json.dumps({**record, "result": result}) + "\n"
    if case == "unknown device":
        return json.dumps({**record, "device": "no-such-board"}) + "\n"
    raise AssertionError(case)


EXPECTED = {
    "truncated": "incomplete last line",
    "duplicates": None,
    "garbage": "not (a )?JSON",
    "wrong types": "field 'batch' is str '1'; expected int",
    "unknown architecture": "invalid architecture config",
    "id of another config": "is not the id of its config",
    "stats not of the samples": "does not match the samples",
    "unknown device": "known devices: ",
}


@pytest.mark.parametrize("case", EXPECTED)
def test_ingest_skips_bad_lines_with_a_message_and_keeps_the_database(database, results: Path, tmp_path: Path,
                                                                       case: str):
    ingest_results(database, results)
    before = counts(database)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_corrupt(results.read_text().splitlines(keepends=True), case))
    messages: list[str] = []
    report = ingest_results(database, bad, on_message=messages.append)
    assert report.added == 0 and counts(database) == before
    if EXPECTED[case] is None:
        assert report.rejected == () and report.duplicates == 4
    else:
        assert report.rejected and all(re.search(EXPECTED[case], error) for _, error in report.rejected)
        assert any(f"bad.jsonl:{report.rejected[0][0]}:" in m and re.search(EXPECTED[case], m) for m in messages)


def test_ingest_refuses_lines_of_another_bundle(database, results: Path, tmp_path: Path):
    other = tmp_path / "other"
    write_bundle(tiny_jobs(TINY[:1]), other, device="local", settings=FAST, reference=REFERENCE)
    report = ingest_results(database, results, bundle_dir=other)
    assert report.added == 0 and counts(database) == (0, 0)
    assert len(report.rejected) == 2 and all("is not the given bundle's" in e for _, e in report.rejected)


def test_ingest_of_a_missing_bundle_is_a_clear_error(database, results: Path, tmp_path: Path):
    with pytest.raises(BundleError, match="no manifest.json"):
        ingest_results(database, results, bundle_dir=tmp_path)


def test_cli_bundle_then_ingest(tmp_path: Path, bundle: Path, results: Path):
    from explorer.cli import main

    db = str(tmp_path / "cli.db")
    configs = tmp_path / "configs.jsonl"
    configs.write_text("".join(json.dumps({"space": c.space, **c.to_dict()}) + "\n" for c in TINY))
    out = tmp_path / "cli-bundle"
    assert main(["bundle", "--device", "local", "--sampler", "file", "--file", str(configs), "--threads", "1",
                 "-o", str(out), "--db", db, "--create-db", "--json"]) == 0
    assert [m.arch_id for m in Manifest.load(out).models] == [arch_id(c) for c in TINY]
    copied = tmp_path / "results.jsonl"
    shutil.copy(results, copied)
    assert main(["ingest", str(copied), "--db", db, "--json"]) == 0
    copied.write_text(copied.read_text() + "garbage\n")
    assert main(["ingest", str(copied), "--db", db]) == 1


@pytest.mark.postgres
def test_ingest_is_idempotent_on_postgresql(postgres_url: str, bundle: Path, results: Path):
    database = open_database(postgres_url)
    try:
        assert ingest_results(database, results, bundle_dir=bundle).added == 2
        again = ingest_results(database, results, bundle_dir=bundle)
        assert (again.added, again.duplicates) == (0, 2) and counts(database) == (2, 2)
    finally:
        database.close()


def test_an_interrupted_bundle_export_keeps_its_finished_models(tmp_path: Path, monkeypatch):
    from explorer.remote import bundle as bundle_module

    out = tmp_path / "b"
    calls = []
    real_export = bundle_module.export_onnx

    def export_then_fail(config, path, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(config)
        return real_export(config, path, **kwargs)

    monkeypatch.setattr(bundle_module, "export_onnx", export_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(tiny_jobs(), out, device="local", settings=FAST, reference=REFERENCE)
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(bundle_module, "export_onnx", real_export)
    first = sorted(p.name for p in (out / "models").glob("*.onnx"))
    manifest = write_bundle(tiny_jobs(), out, device="local", settings=FAST, reference=REFERENCE)
    assert manifest.models[0].file == f"models/{first[0]}"


def test_a_bundle_without_reference_gives_absolute_figures(database, tmp_path: Path):
    out = tmp_path / "no-reference"
    manifest = write_bundle(tiny_jobs(TINY[:1]), out, device="local", settings=FAST, reference=None)
    assert manifest.reference is None
    done = run_runner(out, "--output", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["result"]["relative_to_reference"] is None and record["result"]["reference_samples"] == []
    assert ingest_results(database, tmp_path / "r.jsonl", bundle_dir=out).added == 1
    with database.session() as session:
        assert session.scalars(select(Measurement)).one().relative_to_reference is None
