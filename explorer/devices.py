"""Device profiles (built-in, published, user-defined) and the published measurements.

Built-in profiles ship in ``explorer/data/devices.json`` and are stored by ``open_database``; a
user adds their own from a JSON file or the command line. The published measurements of the
LowFormer papers (``explorer/data/published_reference.csv``) become ``measurements`` rows with
provenance ``published``, attached to the named architecture at the row's resolution.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from explorer.db import Device, Measurement, device_names, resolve_device, upsert_architecture
from explorer.db.database import builtin_device_rows
from search_spaces.base import KnobError, arch_id

PROVENANCES = ("measured", "published")
#: the largest thread or batch count a profile may state (the database column is a 32-bit integer)
MAX_COUNT = 2**31 - 1
#: text fields of a profile and their longest allowed value (None: any length)
TEXT_FIELDS = {"description": None, "hardware": None, "runtime": 128, "backend": 32}
MEASUREMENT_METRICS = ("latency_ms", "throughput_img_s")


@dataclass(frozen=True)
class DeviceProfile:
    """A device: the hardware, the runtime and the defaults a campaign uses on it."""

    name: str
    description: str = ""
    hardware: str = ""
    runtime: str = ""
    backend: str = "ort"
    default_threads: int | None = None
    default_batch: int = 1
    provenance: str = "measured"
    source: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    host: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 64:
            raise KnobError("name", self.name, "a non-empty device name of at most 64 characters")
        if self.provenance not in PROVENANCES:
            raise KnobError("provenance", self.provenance, "one of " + ", ".join(PROVENANCES))
        if self.default_threads is not None and not _count(self.default_threads):
            raise KnobError("default_threads", self.default_threads, f"an integer from 1 to {MAX_COUNT} or null")
        if not _count(self.default_batch):
            raise KnobError("default_batch", self.default_batch, f"an integer from 1 to {MAX_COUNT}")
        for name, longest in TEXT_FIELDS.items():
            value = getattr(self, name)
            if not isinstance(value, str) or (longest is not None and len(value) > longest):
                raise KnobError(name, value, "text" + (f" of at most {longest} characters" if longest else ""))
        if self.source is not None and not isinstance(self.source, str):
            raise KnobError("source", self.source, "text or null")
        if not isinstance(self.aliases, (list, tuple)) or not all(
                isinstance(a, str) and a.strip() and len(a) <= 64 for a in self.aliases):
            raise KnobError("aliases", self.aliases, "a list of non-empty names of at most 64 characters")
        for name in ("host", "probe"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise KnobError(name, getattr(self, name), "an object or null")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceProfile:
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise KnobError("profile field", unknown[0], "one of " + ", ".join(sorted(allowed)))
        if "name" not in data:
            raise KnobError("name", None, "a non-empty device name of at most 64 characters (required)")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT


def builtin_profiles() -> list[DeviceProfile]:
    return [DeviceProfile.from_dict(row) for row in builtin_device_rows()]


def profile_from_file(path: str | Path) -> DeviceProfile:
    """A profile from a JSON object file (fields of :class:`DeviceProfile`)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise KnobError("file", str(path), f"a readable JSON file ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise KnobError("file", str(path), f"a JSON object with device profile fields ({err})") from None
    if not isinstance(data, dict):
        raise KnobError("file", str(path), "a JSON object with device profile fields")
    return DeviceProfile.from_dict(data)


def profile_of(device: Device) -> DeviceProfile:
    return DeviceProfile(device.name, device.description, device.hardware, device.runtime, device.backend,
                         device.default_threads, device.default_batch, device.provenance, device.source,
                         tuple(device.aliases), device.host, device.probe)


def add_device(session: Session, profile: DeviceProfile) -> Device:
    """Store a user-defined profile; its name and aliases must not name an existing device."""
    devices = list(session.scalars(select(Device)))
    taken = {d.name for d in devices} | {a for d in devices for a in d.aliases}
    clash = [n for n in (profile.name, *profile.aliases) if n in taken]
    if clash:
        known = ", ".join(device_names(session))
        raise KnobError("name", clash[0], f"a name not used by another device ({known})")
    device = Device(**profile.to_dict())
    session.add(device)
    session.flush()
    return device


def list_devices(session: Session) -> list[dict[str, Any]]:
    """Every stored profile with its number of successful measurements."""
    counts = dict(session.execute(select(Measurement.device, func.count()).where(Measurement.status == "ok")
                                  .group_by(Measurement.device)).all())
    return [{**profile_of(d).to_dict(), "measurements": counts.get(d.name, 0)}
            for d in session.scalars(select(Device).order_by(Device.provenance, Device.name))]


@dataclass(frozen=True)
class PublishedRow:
    """One row of ``published_reference.csv``. ``device`` is ``-`` for counts (params_m,
    macs_m) and a dataset name (``imagenet``) for accuracies (top1)."""

    model: str
    resolution: int
    device: str
    metric: str
    value: float
    source: str
    note: str

    @property
    def is_measurement(self) -> bool:
        return self.metric in MEASUREMENT_METRICS


def published_rows(path: str | Path | None = None) -> list[PublishedRow]:
    """Every row of the published reference table (measurements, counts and accuracies)."""
    handle = (open(path, newline="") if path is not None
              else (resources.files("explorer") / "data" / "published_reference.csv").open(newline=""))
    with handle:
        return [PublishedRow(r["model"], int(r["resolution"]), r["device"], r["metric"], float(r["value"]),
                             r["source"], r["note"] or "") for r in csv.DictReader(handle)]


@dataclass(frozen=True)
class PublishedLoad:
    loaded: int
    existing: int
    skipped: tuple[str, ...]


INEXACT_NOTE = ("the published layers per stage are unknown; attached to this project's reconstruction "
                "(same channels, layers chosen to match the published MACs)")


def load_published(session: Session, path: str | Path | None = None) -> PublishedLoad:
    """Store every published measurement (idempotent). A throughput row keeps images/s in
    ``value`` and ms per image (1000 / value) in ``median_ms``. Rows naming an architecture the
    registry does not know are skipped and reported."""
    from explorer.architectures import NAMED_ARCHITECTURES, UnknownArchitectureError, resolve  # every space

    loaded = existing = 0
    skipped = []
    for row in (r for r in published_rows(path) if r.is_measurement):
        try:
            config = resolve(row.model, row.resolution)
        except (UnknownArchitectureError, KnobError) as err:
            skipped.append(f"{row.model} @ {row.resolution} on {row.device}: {err}")
            continue
        device = resolve_device(session, row.device)
        key = arch_id(config)
        duplicate = session.scalar(select(Measurement.id).where(
            Measurement.arch_id == key, Measurement.device == device.name, Measurement.metric == row.metric,
            Measurement.source == row.source, Measurement.provenance == "published"))
        if duplicate is not None:
            existing += 1
            continue
        architecture = upsert_architecture(session, config, row.model)
        entry = NAMED_ARCHITECTURES[row.model]
        notes = [row.note] if row.note else []
        if not entry.exact:
            notes.append(INEXACT_NOTE)
        median = row.value if row.metric == "latency_ms" else 1000.0 / row.value
        session.add(Measurement(
            arch_id=architecture.arch_id, device=device.name, backend=device.backend, batch=device.default_batch,
            threads=device.default_threads, resolution=row.resolution, metric=row.metric, value=row.value,
            median_ms=median, status="ok", provenance="published", source=row.source,
            note="; ".join(notes) or None))
        loaded += 1
    session.flush()
    return PublishedLoad(loaded, existing, tuple(skipped))
