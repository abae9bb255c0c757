"""Loading a runner's result lines into the database, validated and idempotent.

Each line is self-contained (bundle id, device, architecture config and id, model hash,
settings, statistics, every raw sample, host fingerprint), so a results file can be ingested
without its bundle; given the bundle (``bundle_dir``), lines must also belong to it. A line is
checked completely before anything is written, then stored in its own transaction through the
campaign's :func:`~explorer.measure.campaign.record_result`, exactly like a local measurement.
One transaction per line (rather than per file) is what lets the SSH transport store results as
they stream in, and it means a bad line costs only itself: it is reported and skipped, never
half-written. A line already stored (same device, architecture, runtime settings, model hash
and start time) is skipped, so ingesting a file twice adds nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from explorer.architectures import config_from_dict
from explorer.db import Database, Measurement, UnknownDeviceError, resolve_device
from explorer.measure.campaign import Job, JobResult, record_result
from explorer.measure.protocol import ProtocolResult, Stats, summarize
from explorer.remote.bundle import BACKEND, Manifest
from explorer.remote.runner_main import RESULT_FORMAT
from search_spaces.base import KnobError, arch_id

STATUSES = ("ok", "failed")
MEDIAN_TOLERANCE = 1e-6


class LineError(ValueError):
    """A result line that cannot be stored; the message says why."""


@dataclass(frozen=True)
class ParsedResult:
    """A validated result line: where it was measured, under which bundle, and the result."""

    device: str
    bundle_id: str
    measurement_key: str
    key: str
    outcome: JobResult


@dataclass(frozen=True)
class IngestReport:
    """What one ingestion did: lines stored, lines already present, lines rejected (with why)."""

    path: str
    added: int
    duplicates: int
    rejected: tuple[tuple[int, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "added": self.added, "duplicates": self.duplicates,
                "rejected": [{"line": n, "error": e} for n, e in self.rejected]}


def _require(record: Mapping[str, Any], name: str, kinds: type | tuple[type, ...],
             *, optional: bool = False) -> Any:
    value = record.get(name)
    if value is None and optional:
        return None
    if name not in record:
        raise LineError(f"missing field {name!r}")
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise LineError(f"field {name!r} is {value!r}; expected {_kind_names(kinds)}")
    if not isinstance(value, kinds):
        raise LineError(f"field {name!r} is {type(value).__name__} {value!r:.60}; expected {_kind_names(kinds)}")
    return value


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def _numbers(record: Mapping[str, Any], name: str, *, allow_empty: bool = True) -> tuple[float, ...]:
    values = _require(record, name, list)
    if not allow_empty and not values:
        raise LineError(f"field {name!r} is empty")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise LineError(f"field {name!r} holds {value!r}; expected finite non-negative numbers")
    return tuple(float(v) for v in values)


def _stats(data: Any, name: str) -> Stats:
    if not isinstance(data, dict):
        raise LineError(f"field {name!r} is not an object")
    values = {}
    for field_name in Stats.__dataclass_fields__:
        kinds = int if field_name == "n" else (int, float)
        values[field_name] = _require(data, field_name, kinds)
    return Stats(**values)


def _time(record: Mapping[str, Any], name: str) -> datetime:
    text = _require(record, name, str)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise LineError(f"field {name!r} is {text!r}; expected an ISO 8601 time") from None
    if value.tzinfo is None:
        raise LineError(f"field {name!r} is {text!r}; expected a time with its UTC offset")
    return value


def _protocol_result(data: Any) -> ProtocolResult:
    if not isinstance(data, dict):
        raise LineError("field 'result' is not an object")
    samples = _numbers(data, "samples", allow_empty=False)
    stats = _stats(data.get("stats"), "stats")
    if stats.n != len(samples):
        raise LineError(f"stats say n={stats.n} but the line holds {len(samples)} samples")
    recomputed = summarize(samples).median
    if abs(recomputed - stats.median) > MEDIAN_TOLERANCE * max(1.0, recomputed):
        raise LineError(f"stats median {stats.median} does not match the samples' median {recomputed}")
    reference = data.get("reference_stats")
    flags = _require(data, "flags", list)
    if not all(isinstance(f, str) for f in flags):
        raise LineError(f"field 'flags' must hold strings, got {flags!r:.80}")
    return ProtocolResult(
        samples=samples, block_medians=_numbers(data, "block_medians"), stats=stats,
        reference_samples=_numbers(data, "reference_samples"),
        reference_block_medians=_numbers(data, "reference_block_medians"),
        reference_stats=None if reference is None else _stats(reference, "reference_stats"),
        flags=tuple(flags), warmup=_require(data, "warmup", int),
        load_before=_require(data, "load_before", dict), load_after=_require(data, "load_after", dict),
        load_during=data.get("load_during") if isinstance(data.get("load_during"), dict) else {})


def parse_result(text: str, manifest: Manifest | None = None) -> ParsedResult:
    """Validate one result line (against ``manifest`` if given); raise :class:`LineError`."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise LineError(f"not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise LineError(f"not a JSON object but {type(record).__name__}")
    if record.get("format") != RESULT_FORMAT:
        raise LineError(f"format is {record.get('format')!r}; expected {RESULT_FORMAT!r}")
    bundle = _require(record, "bundle_id", str)
    key = _require(record, "key", str)
    arch = _require(record, "arch_id", str)
    status = _require(record, "status", str)
    if status not in STATUSES:
        raise LineError(f"status is {status!r}; expected one of {', '.join(STATUSES)}")
    backend = _require(record, "backend", str)
    if backend != BACKEND:
        raise LineError(f"backend is {backend!r}; bundles measure with {BACKEND!r}")
    batch = _require(record, "batch", int)
    threads = _require(record, "threads", int, optional=True)
    if batch < 1 or (threads is not None and threads < 1):
        raise LineError(f"batch {batch} and threads {threads} must be positive")
    try:
        config = config_from_dict(_require(record, "config", dict))
    except (KnobError, TypeError) as err:
        raise LineError(f"invalid architecture config: {err}") from None
    if arch_id(config) != arch:
        raise LineError(f"arch_id {arch!r} is not the id of its config ({arch_id(config)!r})")
    sha = _require(record, "model_sha256", str)
    if manifest is not None:
        _check_against(manifest, record, bundle, key, arch, sha)
    result = _protocol_result(record.get("result")) if status == "ok" else None
    error = _require(record, "error", str) if status == "failed" else None
    host = dict(_require(record, "host", dict))
    if result is not None:
        host.update(load_before=result.load_before, load_after=result.load_after, load_during=result.load_during)
    job = Job(config, backend, batch, threads, _require(record, "name", str, optional=True),
              _require(record, "purpose", str))
    outcome = JobResult(job, status, result, error, settings=dict(_require(record, "settings", dict)),
                        model_sha256=sha, host=host, started_at=_time(record, "started_at"),
                        ended_at=_time(record, "ended_at"))
    return ParsedResult(_require(record, "device", str), bundle, _require(record, "measurement_key", str),
                        key, outcome)


def _check_against(manifest: Manifest, record: Mapping[str, Any], bundle: str, key: str, arch: str,
                   sha: str) -> None:
    if bundle != manifest.bundle_id:
        raise LineError(f"bundle id {bundle!r} is not the given bundle's ({manifest.bundle_id!r})")
    entry = manifest.model(key)
    if entry is None or entry.arch_id != arch:
        raise LineError(f"architecture {arch} (key {key!r}) is not in bundle {manifest.bundle_id}")
    if entry.sha256 != sha:
        raise LineError(f"model sha256 {sha[:12]}... differs from the bundle's {entry.sha256[:12]}...")
    if record.get("device") != manifest.device:
        raise LineError(f"device {record.get('device')!r} is not the bundle's ({manifest.device!r})")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def is_stored(session, device: str, outcome: JobResult) -> bool:
    """Whether this very measurement (same start time of the same model file) is stored."""
    job = outcome.job
    query = select(Measurement.started_at).where(
        Measurement.device == device, Measurement.arch_id == job.arch_id, Measurement.backend == job.backend,
        Measurement.batch == job.batch, Measurement.model_sha256 == outcome.model_sha256,
        Measurement.threads.is_(None) if job.threads is None else Measurement.threads == job.threads)
    started = _utc(outcome.started_at)
    return any(_utc(value) == started for value in session.scalars(query))


def store(database: Database, parsed: ParsedResult, campaign: str | None = None) -> bool:
    """Store one validated line in its own transaction; False if it was already stored."""
    with database.session() as session:
        try:
            device = resolve_device(session, parsed.device).name
        except UnknownDeviceError as err:
            raise LineError(str(err)) from None
        if is_stored(session, device, parsed.outcome):
            return False
        record_result(session, device, parsed.outcome, campaign or f"bundle-{parsed.bundle_id}")
    return True


def ingest_results(database: Database, path: str | Path, *, bundle_dir: str | Path | None = None,
                   on_message: Callable[[str], None] = lambda text: None) -> IngestReport:
    """Store every valid line of ``path``; report each rejected line (through ``on_message`` as
    well) and count the lines already stored."""
    path = Path(path)
    manifest = Manifest.load(bundle_dir) if bundle_dir is not None else None
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FileNotFoundError(f"cannot read results file {str(path)!r}: {err.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    added = duplicates = 0
    rejected: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cut = number == len(lines)  # the file does not end with a newline after this line
        try:
            parsed = parse_result(line, manifest)
        except LineError as err:
            reason = (f"incomplete last line (the runner was interrupted?); run the runner again with "
                      f"--output to measure it again ({err})" if cut else str(err))
            rejected.append((number, reason))
            on_message(f"{path}:{number}: skipped: {reason}")
            continue
        try:
            stored = store(database, parsed)
        except LineError as err:
            rejected.append((number, str(err)))
            on_message(f"{path}:{number}: skipped: {err}")
            continue
        added += stored
        duplicates += not stored
    return IngestReport(str(path), added, duplicates, tuple(rejected))


__all__ = ["IngestReport", "LineError", "ParsedResult", "ingest_results", "is_stored", "parse_result", "store"]
