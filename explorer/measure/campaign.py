"""Measurement campaigns: choose architectures, measure them somewhere, commit each result.

Three pluggable parts, each a small table or interface so that new ones need no change here:
- **samplers** (``SAMPLERS``): ``name -> function(SampleRequest) -> list[ArchConfig]``. A selection
  strategy (e.g. picking the architectures a predictor is least sure about) is one more entry:
  ``run_campaign(db, spec, samplers={**SAMPLERS, "uncertainty": pick})``.
- **transports** (:class:`Transport`): where the models run. :class:`LocalTransport` measures on
  this host; a remote transport (SSH, bundle) yields the same :class:`JobResult` objects.
- **backends** (``explorer.measure.backends.BACKENDS``): which runtime times the model.

Every result is committed as soon as it arrives, so an interrupt loses at most the architecture
in flight, and a re-run skips what is already stored under the same device, backend, batch and
threads (``force`` re-measures). A config that fails to build, export or run is stored as
``failed`` with its error and the campaign goes on. The reference model and a few presets are
measured at the start and end of every campaign to detect drift of the machine's speed.
"""

from __future__ import annotations

import abc
import json
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import object_session

from explorer.architectures import NAMED_ARCHITECTURES, family_of, flat_space, name_of, resolve
from explorer.db import (
    BUSY_FLAG,
    Database,
    Device,
    Measurement,
    OtherHostError,
    bind_host,
    host_id,
    resolve_device,
    resolve_stored,
    upsert_architecture,
)
from explorer.errors import UserError
from explorer.measure.backends import Backend, Prepared, get_backend
from explorer.measure.protocol import ProtocolResult, ProtocolSettings, host_fingerprint, measure, wait_notice
from explorer.onnx_export import pre_exported
from explorer.reference import SPACE as REFERENCE_SPACE
from explorer.reference import ReferenceConfig, reference_configs, require_built
from search_spaces.base import ArchConfig, KnobError, arch_id
from search_spaces.lowformer import LowFormerConfig

#: The per-device reference model interleaved with every measurement. A LowFormer preset at a
#: small resolution rather than a plain conv stack: it has the same op mix (depthwise, pointwise,
#: dense convs, attention) as what is measured, so a neighbour's load slows both alike, and it
#: takes ~2 ms on a laptop CPU, so interleaving it costs little.
REFERENCE = ("lowformer-b0", 128)
#: Presets re-measured at the start and end of a campaign to detect drift.
DRIFT_CHECK = ("lowformer-b0", "lowformer-b1")
DRIFT_CHECK_FLAG = "drift-check"


@dataclass(frozen=True)
class SampleRequest:
    """What a sampler is asked for; ``database`` and ``device`` let a strategy consult stored
    measurements or predictors."""

    n: int | None
    seed: int
    resolution: int | None = None
    file: str | None = None
    database: Database | None = None
    device: str | None = None
    space: str | None = None


Sampler = Callable[[SampleRequest], list[ArchConfig]]


def _need_n(request: SampleRequest, sampler: str) -> int:
    if request.n is None or request.n < 1:
        raise KnobError("n", request.n, f"a positive number of architectures for sampler {sampler!r}")
    return request.n


def _random(request: SampleRequest) -> list[ArchConfig]:
    space = flat_space(request.space or LowFormerConfig.space)
    return space.sample(_need_n(request, "random"), request.seed, resolution=request.resolution or 224)


def _sobol(request: SampleRequest) -> list[ArchConfig]:
    space = flat_space(request.space or LowFormerConfig.space)
    return space.sobol(_need_n(request, "sobol"), request.seed, resolution=request.resolution or 224)


def _presets(request: SampleRequest) -> list[ArchConfig]:
    """Every preset and ablation, of one family if ``space`` is given (the first ``n`` if given);
    of the ``reference`` space, its published networks."""
    if request.space == REFERENCE_SPACE:
        configs = reference_configs(request.resolution)
        return configs[: request.n] if request.n else configs
    configs = [config for config in (entry.make(request.resolution) for entry in NAMED_ARCHITECTURES.values()
                                     if entry.kind in ("preset", "ablation"))
               if request.space is None or family_of(config.space) == family_of(request.space)]
    return configs[: request.n] if request.n else configs


def read_config_file(path: str | Path, resolution: int | None = None,
                     database: Database | None = None) -> list[ArchConfig]:
    """Configs from a file: a JSON list, or one JSON object, architecture name or arch id of
    ``database`` per line."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise KnobError("file", str(path), f"a readable file of configs ({err.strerror})") from None
    try:
        items = json.loads(text)
        items = items if isinstance(items, list) else [items]
    except json.JSONDecodeError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                items.append(json.loads(line) if line.startswith("{") else line)
            except json.JSONDecodeError as err:
                raise KnobError("file", f"{path}:{number}", f"a JSON object or a name per line ({err})") from None
    return [resolve(item, resolution) if database is None else resolve_stored(database, item, resolution)
            for item in items]


def _file(request: SampleRequest) -> list[ArchConfig]:
    if request.file is None:
        raise KnobError("file", None, "a path to a file of configs or names (--file) for sampler 'file'")
    configs = read_config_file(request.file, request.resolution, request.database)
    return configs[: request.n] if request.n else configs


SAMPLERS: Mapping[str, Sampler] = {"random": _random, "sobol": _sobol, "presets": _presets, "file": _file}


@dataclass(frozen=True)
class Job:
    """One architecture to measure, and how."""

    config: ArchConfig
    backend: str
    batch: int
    threads: int | None
    name: str | None = None
    purpose: str = "campaign"

    @property
    def arch_id(self) -> str:
        return arch_id(self.config)


@dataclass(frozen=True)
class JobResult:
    """What a transport returns for a job: the protocol result, or the error that stopped it."""

    job: Job
    status: str
    result: ProtocolResult | None = None
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    model_sha256: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class Transport(abc.ABC):
    """Where the models run. Yields one :class:`JobResult` per job, in any order, as soon as
    each is known (a remote transport streams them back)."""

    @abc.abstractmethod
    def check(self, device: Device, backend: str) -> None:
        """Raise :class:`~explorer.errors.UserError` if this transport cannot measure ``device``
        with ``backend``; called before any work starts."""

    @abc.abstractmethod
    def run(self, jobs: Sequence[Job], protocol: ProtocolSettings,
            reference: ArchConfig | None) -> Iterator[JobResult]:
        """Measure ``jobs`` (all share backend, batch and threads), each interleaved with
        ``reference`` (none: absolute figures only)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalTransport(Transport):
    """Measures on this host, in this process. ONNX files go to ``workdir`` (a temporary
    directory by default). A wait for a quiet machine is always said on stderr
    (:func:`~explorer.measure.protocol.wait_notice`), then passed to ``on_wait`` (a progress
    display)."""

    def __init__(self, workdir: str | Path | None = None, on_wait: Callable[[dict], None] | None = None):
        self.workdir = workdir
        self.on_wait = on_wait

    def _on_wait(self, load: dict) -> None:
        _say_wait(load)
        if self.on_wait is not None:
            self.on_wait(load)

    def check(self, device: Device, backend: str) -> None:
        get_backend(backend).check_available()
        if device.provenance != "measured":
            raise UserError(f"device {device.name!r} has published figures only and is not this host; "
                             "measure it remotely (explorer bundle, or --ssh) or use a measured device "
                             "such as 'local'")
        bind_host(device, host_fingerprint())  # a profile bound to another host: its own error first
        refuse_foreign_profile(device)  # the claim above is rolled back with the session

    def run(self, jobs, protocol, reference):
        if not jobs:
            return
        first = jobs[0]
        backend = get_backend(first.backend)
        with tempfile.TemporaryDirectory(prefix="explorer-measure-") as tmp:
            # the host id makes each row tell which host measured it, whatever profile it lands in
            bench = _Bench(backend, protocol, Path(self.workdir or tmp), {**host_fingerprint(), "host_id": host_id()},
                           self._on_wait)
            if reference is not None:
                bench.reference = backend.prepare(reference, reference.build(), batch=first.batch,
                                                  threads=first.threads, workdir=bench.workdir)
                bench.reference_info = {"name": name_of(reference), "arch_id": arch_id(reference),
                                        "resolution": reference.resolution}
            try:
                for job in jobs:
                    yield bench.measure(job)
            finally:
                if bench.reference is not None:
                    bench.reference.close()


_say_wait = wait_notice(lambda text: print(text, file=sys.stderr, flush=True))


def refuse_foreign_profile(device: Device) -> None:
    """Refuse to measure on this host into ``device`` when it holds measurements made elsewhere:
    by a bundle's runner (ingested, or over SSH: a board's timings) or recorded with another
    host's id. The profile's host binding alone does not tell, since ingestion binds nothing."""
    session = object_session(device)
    if session is None:
        return
    bundle, recorded = Measurement.settings["bundle_id"].as_string(), Measurement.host["host_id"].as_string()
    row = session.execute(
        select(bundle, recorded, Measurement.host["cpu"].as_string(), Measurement.host["cores"].as_string())
        .where(Measurement.device == device.name, Measurement.provenance == "measured",
               or_(bundle.is_not(None), and_(recorded.is_not(None), recorded != host_id())))
        .limit(1)).first()
    if row is None:
        return
    source, other, cpu, cores = row
    where = (f"by the runner of bundle {source}" if source is not None else f"on host id {other}")
    raise OtherHostError(
        f"device {device.name!r} holds measurements made elsewhere ({where}, on {cpu or 'an unknown CPU'}, "
        f"{cores or '?'} cores): this host's timings would mix into them; measure it with `explorer bundle "
        f"--device {device.name}` or `explorer measure --ssh USER@HOST --device {device.name}`, or name a "
        "profile for this host with `explorer devices add --name NAME --this-host` and measure with --device NAME")


@dataclass
class _Bench:
    """What stays fixed while a local campaign measures job after job."""

    backend: Backend
    protocol: ProtocolSettings
    workdir: Path
    fingerprint: dict[str, Any]
    on_wait: Callable[[dict], None] | None = None
    reference: Prepared | None = None
    reference_info: dict[str, Any] | None = None

    def measure(self, job: Job) -> JobResult:
        started = _now()
        stage = "build"
        try:
            model = None if pre_exported(job.config) else job.config.build()
            stage = "prepare"
            prepared = self.backend.prepare(job.config, model, batch=job.batch, threads=job.threads,
                                            workdir=self.workdir)
            stage = "run"
            try:
                result = measure(prepared.timer, self.protocol,
                                 self.reference.timer if self.reference is not None else None,
                                 on_wait=self.on_wait)
            finally:
                prepared.close()
        except Exception as err:  # noqa: BLE001 - a failing config is a result, not a crash
            last = traceback.extract_tb(err.__traceback__)[-1]
            return JobResult(job, "failed", error=f"{stage}: {type(err).__name__}: {err} "
                                                  f"({Path(last.filename).name}:{last.lineno})",
                             host=self.fingerprint, started_at=started, ended_at=_now())
        settings = {**prepared.settings, "protocol": self.protocol.to_dict(), "reference": self.reference_info}
        host = {**self.fingerprint, "load_before": result.load_before, "load_after": result.load_after,
                "load_during": result.load_during}
        return JobResult(job, "ok", result, settings=settings, model_sha256=prepared.model_sha256,
                         host=host, started_at=started, ended_at=_now())


def metric_for(batch: int) -> str:
    """Batch 1 measures latency; a larger batch measures throughput."""
    return "latency_ms" if batch == 1 else "throughput_img_s"


def _ms(values: Sequence[float], batch: int) -> list[float]:
    return [round(v / batch, 5) for v in values]


def record_result(session, device: str, outcome: JobResult, campaign: str | None = None) -> Measurement:
    """Store one :class:`JobResult` as a ``measurements`` row (and its architecture). Times are
    per image: run time / batch. Used by every transport and by result ingestion."""
    job = outcome.job
    note = None
    try:
        upsert_architecture(session, job.config, job.name)
    except Exception as err:  # noqa: BLE001 - keep the measurement; say why the counts are missing
        upsert_architecture(session, job.config, job.name, counts=False)
        note = f"op table failed: {type(err).__name__}: {err}"
    row = Measurement(
        arch_id=job.arch_id, device=device, backend=job.backend, batch=job.batch, threads=job.threads,
        resolution=job.config.resolution, metric=metric_for(job.batch), status=outcome.status,
        error=outcome.error, settings=outcome.settings, host=outcome.host, model_sha256=outcome.model_sha256,
        started_at=outcome.started_at, ended_at=outcome.ended_at, provenance="measured",
        campaign=campaign, note=note, flags=[DRIFT_CHECK_FLAG] if job.purpose == DRIFT_CHECK_FLAG else [],
    )
    result = outcome.result
    if result is not None:
        s, b = result.stats, job.batch
        row.samples = _ms(result.samples, b)
        row.n_samples, row.warmup = s.n, result.warmup
        row.median_ms, row.mean_ms, row.std_ms = s.median / b, s.mean / b, s.std / b
        row.p5_ms, row.p95_ms, row.cv = s.p5 / b, s.p95 / b, s.cv
        row.ci_low_ms, row.ci_high_ms = s.ci_low / b, s.ci_high / b
        row.value = row.median_ms if b == 1 else 1000.0 / row.median_ms
        row.relative_to_reference = result.relative_to_reference
        row.flags = list(result.flags) + row.flags
        row.settings = {**row.settings, "block_medians_ms": _ms(result.block_medians, b),
                        "reference_samples_ms": _ms(result.reference_samples, b)}
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign: which architectures, on which device, with which runtime settings.
    ``backend``, ``threads`` and ``batch`` default to the device profile's. ``drift_check``
    names the presets measured at the start and end; ``reference`` (name, resolution) is the
    interleaved reference model. Keep it fixed per device: relative figures compare only
    under the same reference (each row records it in ``settings``)."""

    device: str = "local"
    n: int | None = 10
    sampler: str = "random"
    seed: int = 0
    space: str | None = None
    file: str | None = None
    backend: str | None = None
    threads: int | None = None
    batch: int | None = None
    resolution: int | None = None
    force: bool = False
    retry_failed: bool = False
    name: str | None = None
    protocol: ProtocolSettings = ProtocolSettings()
    drift_check: tuple[str, ...] = DRIFT_CHECK
    reference: tuple[str, int] | None = REFERENCE

    def label(self) -> str:
        prefix = f"{self.space}-" if self.space and self.space != LowFormerConfig.space else ""
        return self.name or f"{prefix}{self.sampler}-n{self.n}-seed{self.seed}"


@dataclass(frozen=True)
class CampaignPlan:
    """The resolved campaign: the device's name, the jobs to run and how many were skipped."""

    device: str
    backend: str
    batch: int
    threads: int | None
    jobs: tuple[Job, ...]
    skipped: int


@dataclass(frozen=True)
class DriftCheck:
    name: str
    start_ms: float | None
    end_ms: float | None
    start_relative: float | None
    end_relative: float | None

    @property
    def change(self) -> float | None:
        """Relative change of the absolute median from start to end."""
        if not self.start_ms or self.end_ms is None:
            return None
        return self.end_ms / self.start_ms - 1.0

    @property
    def relative_change(self) -> float | None:
        """Relative change of the reference-normalised median from start to end."""
        if not self.start_relative or self.end_relative is None:
            return None
        return self.end_relative / self.start_relative - 1.0


@dataclass(frozen=True)
class CampaignReport:
    campaign: str
    device: str
    measured: int
    failed: int
    skipped: int
    drift: tuple[DriftCheck, ...] = ()
    drift_threshold: float = 0.10

    @property
    def drift_detected(self) -> bool:
        return any(c.change is not None and abs(c.change) > self.drift_threshold for c in self.drift)

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "device": self.device, "measured": self.measured,
                "failed": self.failed, "skipped": self.skipped, "drift_detected": self.drift_detected,
                "drift": [{"name": c.name, "start_ms": c.start_ms, "end_ms": c.end_ms, "change": c.change,
                           "relative_change": c.relative_change} for c in self.drift]}


def plan_campaign(database: Database, spec: CampaignSpec, samplers: Mapping[str, Sampler] = SAMPLERS) -> CampaignPlan:
    """Sample the architectures and drop those already measured (unless ``spec.force``)."""
    if spec.sampler not in samplers:
        raise KnobError("sampler", spec.sampler, "one of " + ", ".join(samplers))
    if spec.space is not None and spec.space != REFERENCE_SPACE:
        flat_space(spec.space)
    with database.session() as session:
        device = resolve_device(session, spec.device)
        backend = spec.backend or device.backend
        batch = spec.batch or device.default_batch
        threads = spec.threads if spec.threads is not None else device.default_threads
        get_backend(backend)
        request = SampleRequest(spec.n, spec.seed, spec.resolution, spec.file, database, device.name, spec.space)
        configs = list({arch_id(c): c for c in samplers[spec.sampler](request)}.values())
        _check_pre_exported(configs, backend)
        done: set[str] = set()
        if not spec.force:
            # a result measured on a busy machine does not count as done: a re-run measures it again
            done = {key for key, flags in session.execute(select(Measurement.arch_id, Measurement.flags).where(
                Measurement.device == device.name, Measurement.backend == backend, Measurement.batch == batch,
                Measurement.threads.is_(None) if threads is None else Measurement.threads == threads,
                Measurement.provenance == "measured",
                *((Measurement.status == "ok",) if spec.retry_failed else ())))
                if BUSY_FLAG not in (flags or ())}
        jobs = tuple(Job(c, backend, batch, threads) for c in configs if arch_id(c) not in done)
        return CampaignPlan(device.name, backend, batch, threads, jobs, len(configs) - len(jobs))


def _check_pre_exported(configs: Sequence[ArchConfig], backend: str) -> None:
    """Networks built elsewhere (the reference networks) run only from their ONNX files, which must
    exist before the campaign starts rather than fail one by one."""
    references = [c for c in configs if isinstance(c, ReferenceConfig)]
    if references and backend != "ort":
        raise KnobError("backend", backend, "ort: the reference networks are measured from their ONNX files")
    require_built(references)


def _progress() -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), transient=False)


def run_campaign(database: Database, spec: CampaignSpec, *, transport: Transport | None = None,
                 samplers: Mapping[str, Sampler] = SAMPLERS,
                 callback: Callable[[JobResult], None] | None = None,
                 show_progress: bool = False) -> CampaignReport:
    """Plan, then measure every job through ``transport`` (this host by default), committing
    each result at once. ``callback`` sees each stored result (after its commit)."""
    plan = plan_campaign(database, spec, samplers)
    label = spec.label()
    checks = tuple(Job(resolve(name), plan.backend, plan.batch, plan.threads, name, DRIFT_CHECK_FLAG)
                   for name in spec.drift_check)
    jobs = checks + plan.jobs + checks
    counts = {"ok": 0, "failed": 0}
    check_rows: dict[str, list[Measurement]] = {name: [] for name in spec.drift_check}
    progress = _progress() if show_progress else _NoProgress()
    description = f"measuring on {plan.device}"
    task = progress.add_task(description, total=len(jobs))

    def show_wait(load: dict) -> None:
        progress.update(task, description=f"waiting for a quiet machine: others use {load['other_cores']:.2f} "
                                          f"cores ({load['waited_s']:.0f} of {load['limit_s']:.0f} s)")

    transport = transport or LocalTransport(on_wait=show_wait)
    with database.session() as session:  # a refused device shows no progress bar first
        transport.check(resolve_device(session, plan.device), plan.backend)
    with progress:
        if not plan.jobs:
            return CampaignReport(label, plan.device, 0, 0, plan.skipped,
                                  drift_threshold=spec.protocol.drift_threshold)
        reference = resolve(*spec.reference) if spec.reference else None
        for outcome in transport.run(jobs, spec.protocol, reference):
            with database.session() as session:
                row = record_result(session, plan.device, outcome, label)
            if outcome.job.purpose == DRIFT_CHECK_FLAG:
                check_rows[outcome.job.name].append(row)
            else:
                counts[outcome.status] += 1
            progress.update(task, description=description)
            progress.advance(task)
            if callback is not None:
                callback(outcome)
    drift = tuple(_drift_check(name, rows) for name, rows in check_rows.items())
    return CampaignReport(label, plan.device, counts["ok"], counts["failed"], plan.skipped, drift,
                          spec.protocol.drift_threshold)


def _drift_check(name: str, rows: list[Measurement]) -> DriftCheck:
    ok = [r for r in rows if r.status == "ok"]
    if len(ok) < 2:
        return DriftCheck(name, None, None, None, None)
    return DriftCheck(name, ok[0].median_ms, ok[-1].median_ms, ok[0].relative_to_reference,
                      ok[-1].relative_to_reference)


class _NoProgress:
    """Stands in for a rich ``Progress`` when nothing is shown (tests, ``--json``)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, task: int) -> None:
        return None

    def update(self, task: int, **kwargs) -> None:
        return None
