"""The measurement database: devices, architectures, measurements and the tables of the later
pipeline steps (predictors, proxy scores, accuracies).

``open_database(url)`` creates or migrates the schema and returns a :class:`Database`; all reads
and writes go through ``Database.session()``. Without a URL it opens the user's own database
(:func:`user_db_path`), never the shipped ``measurements.db`` (:mod:`explorer.db.release`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from explorer.db.database import Database, database_url, head_revision, open_database, user_data_dir, user_db_path
from explorer.db.hosts import host_id
from explorer.db.models import (
    AccuracyResult,
    Architecture,
    Base,
    Device,
    Measurement,
    Predictor,
    ProxyScore,
)
from explorer.errors import UserError
from search_spaces.base import ArchConfig, arch_id


class UnknownDeviceError(UserError, LookupError):
    """A device name that is neither a stored profile nor one of their aliases."""

    def __init__(self, name: str, known: Sequence[str]):
        super().__init__(name)
        self.name, self.known = name, tuple(known)

    def __str__(self) -> str:
        return f"unknown device {self.name!r}; known devices: {', '.join(self.known)}"


def device_names(session: Session) -> list[str]:
    """Every stored device as ``name`` or ``name (alias, ...)``, for listings and errors."""
    return [d.name + (f" ({', '.join(d.aliases)})" if d.aliases else "")
            for d in session.scalars(select(Device).order_by(Device.name))]


LOCAL = "local"


class OtherHostError(UserError):
    """``local`` (or a named measured profile) belongs to another host than this one."""


def describe_host(host: dict | None) -> str:
    if not host:
        return "no host yet"
    return f"{host.get('cpu') or 'unknown CPU'}, {host.get('cores') or '?'} cores, host id {host.get('host_id')}"


def local_device(session: Session) -> Device:
    """The profile of the host running this command: the measured profile bound to this host's
    id, else the ``local`` profile while no other host has claimed it."""
    me = host_id()
    for device in session.scalars(select(Device).where(Device.provenance == "measured")):
        if (device.host or {}).get("host_id") == me:
            return device
    device = session.get(Device, LOCAL)
    if device is None:
        raise UnknownDeviceError(LOCAL, device_names(session))
    owner = (device.host or {}).get("host_id")
    if owner not in (None, me):
        raise OtherHostError(
            f"device 'local' in this database is another host ({describe_host(device.host)}); this host "
            f"(id {me}) has no profile yet: add one with `explorer devices add --name NAME --this-host` "
            "and measure with --device NAME")
    return device


def bind_host(device: Device, fingerprint: dict) -> None:
    """Claim ``device`` for the host that measures on it now, or refuse if it is another's."""
    me = host_id()
    owner = (device.host or {}).get("host_id")
    if owner is not None and owner != me:
        raise OtherHostError(
            f"device {device.name!r} holds measurements of another host ({describe_host(device.host)}); "
            f"this host is {fingerprint.get('cpu')}, {fingerprint.get('cores')} cores, id {me}: measure with "
            "--device local, or add a profile with `explorer devices add --name NAME --this-host`")
    if owner is None:
        device.host = {"host_id": me, "cpu": fingerprint.get("cpu"), "cores": fingerprint.get("cores"),
                       "machine": fingerprint.get("machine"), "os": fingerprint.get("os")}


def resolve_device(session: Session, name: str) -> Device:
    """The stored device called ``name`` or having ``name`` as an alias; ``local`` is the
    profile of the host running this command (:func:`local_device`)."""
    if name == LOCAL:
        return local_device(session)
    device = session.get(Device, name)
    if device is not None:
        return device
    for device in session.scalars(select(Device)):
        if name in device.aliases:
            return device
    raise UnknownDeviceError(name, device_names(session))


def upsert_architecture(session: Session, config: ArchConfig, name: str | None = None, *,
                        counts: bool = True) -> Architecture:
    """The stored row of ``config`` (inserted on first sight) with params, MACs and op-class
    summary from its analytic op table. ``name`` defaults to the registry name, if any;
    ``counts=False`` stores a config whose op table cannot be computed (a failed build)."""
    key = arch_id(config)
    row = session.get(Architecture, key)
    if row is not None:
        if counts and row.macs is None:
            _fill_counts(row, config)
        return row
    from explorer.architectures import NAMED_ARCHITECTURES, name_of  # every design space: only when storing one

    name = name or name_of(config)
    entry = NAMED_ARCHITECTURES.get(name) if name else None
    values = {"arch_id": key, "space": config.space, "name": name,
              "config_json": {"space": config.space, **config.to_dict()}, "resolution": config.resolution,
              "exact": entry.exact if entry else True}
    if counts:
        table = config.op_table()
        values.update(params=table.params, macs=table.macs, op_summary=table.by_class())
    # another process (a campaign, an ingest, an import) may store the same architecture between
    # the lookup above and this insert: the first row stands, and this one is not an error
    on_conflict = _INSERTS_ON_CONFLICT.get(session.get_bind().dialect.name)
    session.execute(insert(Architecture).values(**values) if on_conflict is None else
                    on_conflict(Architecture).values(**values).on_conflict_do_nothing(index_elements=["arch_id"]))
    return session.get(Architecture, key)


def resolve_stored(database: Database, spec, resolution: int | None = None) -> ArchConfig:
    """:func:`explorer.architectures.resolve`, and an arch id of ``database``'s architectures
    table: what imports, campaigns and ``explorer suggest`` stored, so an id the tool printed
    names its architecture wherever a spec is taken."""
    from explorer.architectures import UnknownArchitectureError, config_from_dict, resolve

    try:
        return resolve(spec, resolution)
    except UnknownArchitectureError:
        if not isinstance(spec, str):
            raise
    with database.session() as session:
        row = session.get(Architecture, spec)
        if row is None:
            raise UnknownArchitectureError(spec, database.url) from None
        config = config_from_dict(row.config_json)
    return config if resolution is None else config.with_resolution(resolution)


_INSERTS_ON_CONFLICT = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _fill_counts(row: Architecture, config: ArchConfig) -> None:
    table = config.op_table()
    row.params, row.macs, row.op_summary = table.params, table.macs, table.by_class()


BUSY_FLAG = "busy"


def ok_measurements(session: Session, device: str | Device, backend: str | None = None,
                    batch: int | None = None, threads: int | None = None, *,
                    include_busy: bool = False) -> list[Measurement]:
    """The current successful measurement of each architecture on ``device`` (name or alias):
    the latest one per (architecture, backend, batch, threads), in measurement order. Rows
    measured on a busy machine (flag ``busy``) are left out unless ``include_busy``."""
    name = device.name if isinstance(device, Device) else resolve_device(session, device).name
    query = select(Measurement).where(Measurement.device == name, Measurement.status == "ok")
    for column, value in ((Measurement.backend, backend), (Measurement.batch, batch),
                          (Measurement.threads, threads)):
        if value is not None:
            query = query.where(column == value)
    latest: dict[tuple, Measurement] = {}
    for row in session.scalars(query.order_by(Measurement.id)):
        if include_busy or BUSY_FLAG not in (row.flags or ()):
            latest[(row.arch_id, row.backend, row.batch, row.threads)] = row
    return sorted(latest.values(), key=lambda m: m.id)


def list_measurements(session: Session, device: str | None = None, provenance: str | None = None,
                      status: str | None = None) -> list[dict]:
    """Measurements as plain dicts (what ``explorer measurements list --json`` prints)."""
    query = select(Measurement, Architecture.name).join(Architecture, Measurement.arch_id == Architecture.arch_id)
    if device is not None:
        query = query.where(Measurement.device == resolve_device(session, device).name)
    if provenance is not None:
        query = query.where(Measurement.provenance == provenance)
    if status is not None:
        query = query.where(Measurement.status == status)
    return [{"id": m.id, "arch_id": m.arch_id, "name": name, "device": m.device, "backend": m.backend,
             "batch": m.batch, "threads": m.threads, "resolution": m.resolution, "metric": m.metric,
             "value": m.value, "median_ms": m.median_ms, "ci_low_ms": m.ci_low_ms, "ci_high_ms": m.ci_high_ms,
             "relative_to_reference": m.relative_to_reference, "n_samples": m.n_samples, "cv": m.cv,
             "status": m.status, "error": m.error, "flags": m.flags, "provenance": m.provenance,
             "source": m.source, "campaign": m.campaign, "note": m.note}
            for m, name in session.execute(query.order_by(Measurement.id))]


__all__ = [
    "BUSY_FLAG",
    "AccuracyResult",
    "Architecture",
    "Base",
    "Database",
    "Device",
    "Measurement",
    "OtherHostError",
    "Predictor",
    "ProxyScore",
    "UnknownDeviceError",
    "bind_host",
    "database_url",
    "describe_host",
    "device_names",
    "head_revision",
    "host_id",
    "list_measurements",
    "local_device",
    "ok_measurements",
    "open_database",
    "resolve_device",
    "resolve_stored",
    "upsert_architecture",
    "user_data_dir",
    "user_db_path",
]
