"""The measurement database schema (SQLAlchemy 2.x typed declarative models).

JSON columns use the generic ``JSON`` type, which is TEXT on SQLite and ``json`` on PostgreSQL,
so one schema (and one set of migrations) serves both. Times are stored as UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Device(Base):
    """A device profile: where and how measurements are taken (or were published)."""

    __tablename__ = "devices"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    hardware: Mapped[str] = mapped_column(Text, default="")
    runtime: Mapped[str] = mapped_column(String(128), default="")
    backend: Mapped[str] = mapped_column(String(32), default="ort")
    default_threads: Mapped[int | None] = mapped_column(Integer)
    default_batch: Mapped[int] = mapped_column(Integer, default=1)
    provenance: Mapped[str] = mapped_column(String(16), default="measured")
    source: Mapped[str | None] = mapped_column(Text)
    #: The host a measured profile belongs to (``host_id``, CPU, cores); None until a host
    #: measures under it. Published profiles have none.
    host: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What ``explorer devices probe`` found (thread counts and their repeatability).
    probe: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Architecture(Base):
    """One architecture at one resolution (the id hashes the canonical config incl. resolution)."""

    __tablename__ = "architectures"

    arch_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    space: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    config_json: Mapped[dict[str, Any]]
    resolution: Mapped[int] = mapped_column(Integer)
    params: Mapped[int | None] = mapped_column(BigInteger)
    macs: Mapped[int | None] = mapped_column(BigInteger)
    op_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exact: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Measurement(Base):
    """One measurement of one architecture on one device, with every raw sample.

    All ``*_ms`` figures and ``samples`` are milliseconds per image (run time / batch). ``value``
    is the figure in the unit of ``metric``: ms for ``latency_ms``, images/s for
    ``throughput_img_s``.
    """

    __tablename__ = "measurements"
    __table_args__ = (
        Index("ix_measurements_key", "device", "backend", "batch", "threads", "arch_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"), index=True)
    device: Mapped[str] = mapped_column(ForeignKey("devices.name"))
    backend: Mapped[str] = mapped_column(String(32))
    batch: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int | None] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    median_ms: Mapped[float | None] = mapped_column(Float)
    mean_ms: Mapped[float | None] = mapped_column(Float)
    std_ms: Mapped[float | None] = mapped_column(Float)
    p5_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    cv: Mapped[float | None] = mapped_column(Float)
    ci_low_ms: Mapped[float | None] = mapped_column(Float)
    ci_high_ms: Mapped[float | None] = mapped_column(Float)
    relative_to_reference: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[list[Any]] = mapped_column(default=list)
    n_samples: Mapped[int] = mapped_column(Integer, default=0)
    warmup: Mapped[int] = mapped_column(Integer, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    host: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(String(16), default="measured")
    source: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    campaign: Mapped[str | None] = mapped_column(String(128), index=True)
    flags: Mapped[list[Any]] = mapped_column(default=list)


class Predictor(Base):
    """A trained latency predictor, stored as XGBoost JSON or plain JSON (never a pickle)."""

    __tablename__ = "predictors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(ForeignKey("devices.name"), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    batch: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    feature_version: Mapped[str] = mapped_column(String(32))
    model_format: Mapped[str] = mapped_column(String(32))
    model_blob: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training_arch_ids: Mapped[list[Any]] = mapped_column(default=list)
    library_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class ProxyScore(Base):
    """A cached zero-cost proxy / size score of an architecture."""

    __tablename__ = "proxy_scores"
    __table_args__ = (UniqueConstraint("arch_id", "score", "version", "resolution"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"), index=True)
    score: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    resolution: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccuracyResult(Base):
    """A top-1 accuracy of an architecture: published, imported from training, or a micro-task."""

    __tablename__ = "accuracy_results"
    __table_args__ = (UniqueConstraint("arch_id", "dataset", "source", "epochs"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    arch_id: Mapped[str] = mapped_column(ForeignKey("architectures.arch_id"), index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    top1: Mapped[float] = mapped_column(Float)
    epochs: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
