"""The shipped database and the user's own: the release's data reach the user's database without
ever being written, and without overwriting anything the user stored.

The git-tracked ``measurements.db`` is the release's data. The user's database starts as a copy
of it (:func:`copy_release`); a record beside it (``measurements.release.json``) says which
release it came from (the shipped file's SHA-256). When the shipped file changes (a new release
pulled), :func:`merge_release` inserts the release's rows that the user's database lacks, matched
by each table's natural key (:data:`NATURAL_KEYS`); rows the user has are never changed. A
release's new default latency predictor of a device becomes the default only where the user's
default is still a release's one (not one the user trained).

Only SQLite files take part (the shipped database is one); both are read with the ``sqlite3``
module, the shipped one read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from explorer.db.models import Base

#: Columns that identify "the same row" in a release and in the user's database; a table not
#: listed here (added later) matches on all its common columns but an integer ``id``.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "devices": ("name",),
    "architectures": ("arch_id",),
    "measurements": ("device", "arch_id", "backend", "batch", "threads", "metric", "provenance", "source",
                     "campaign", "started_at", "median_ms"),
    "predictors": ("device", "backend", "batch", "threads", "kind", "feature_version", "created_at"),
    "proxy_scores": ("arch_id", "score", "version", "resolution"),
    "accuracy_results": ("arch_id", "dataset", "source", "epochs"),
}
RECORD_SUFFIX = ".release.json"
PREDICTOR_KEY = ("device", "kind", "created_at")


@dataclass(frozen=True)
class ReleaseMerge:
    """What a merge inserted: rows per table (tables with none left out)."""

    release: str  # the shipped file's SHA-256
    inserted: dict[str, int]

    def describe(self) -> str:
        rows = ", ".join(f"{n} {table}" for table, n in self.inserted.items()) or "no new rows"
        return f"release {self.release[:12]}: {rows}"


def record_path(database: Path) -> Path:
    return database.with_name(database.name + RECORD_SUFFIX)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_only_uri(path: Path) -> str:
    """Read-only, and ``immutable`` (no lock, no ``-shm`` file) unless a writer left a write-ahead
    log whose transactions only a normal reader sees (an earlier version wrote into the file)."""
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
    return f"{path.resolve().as_uri()}?{mode}"


def _release_predictors(connection: sqlite3.Connection, schema: str) -> list[list]:
    try:
        return [list(row) for row in connection.execute(
            f"SELECT {', '.join(PREDICTOR_KEY)} FROM {schema}.predictors ORDER BY id")]
    except sqlite3.OperationalError:  # a release without the table
        return []


def _write_record(database: Path, shipped: Path, sha256: str, predictors: list[list]) -> None:
    stat = shipped.stat()
    record = {"shipped": str(shipped), "sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
              "release_predictors": predictors}
    target = record_path(database)
    scratch = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(record, indent=1))
    os.replace(scratch, target)


def read_record(database: Path) -> dict:
    """The release record of the user's database ({} when there is none or it is unreadable)."""
    try:
        return json.loads(record_path(database).read_text())
    except (OSError, ValueError):
        return {}


def copy_release(shipped: Path, database: Path) -> str:
    """Create ``database`` as a copy of the shipped file and record the release; returns its
    SHA-256. A concurrent creator wins cleanly: the copy is linked into place only if absent."""
    database.parent.mkdir(parents=True, exist_ok=True)
    scratch = database.with_name(f".{database.name}.{os.getpid()}.tmp")
    scratch.unlink(missing_ok=True)
    source = sqlite3.connect(_read_only_uri(shipped), uri=True)
    target = sqlite3.connect(scratch)
    try:
        source.backup(target)
        predictors = _release_predictors(target, "main")
    finally:
        source.close()
        target.close()
    sha256 = file_sha256(shipped)
    try:
        os.link(scratch, database)
    except FileExistsError:
        return read_record(database).get("sha256", sha256)
    finally:
        scratch.unlink(missing_ok=True)
    _write_record(database, shipped, sha256, predictors)
    return sha256


def release_changed(shipped: Path, database: Path) -> str | None:
    """The shipped file's SHA-256 if it is another release than the one ``database`` last took
    in, else None. The file is hashed only when its size or modification time changed."""
    record = read_record(database)
    stat = shipped.stat()
    if record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return None
    sha256 = file_sha256(shipped)
    if sha256 == record.get("sha256"):
        _write_record(database, shipped, sha256, record.get("release_predictors", []))
        return None
    return sha256


def _columns(connection: sqlite3.Connection, schema: str, table: str) -> list[tuple[str, bool]]:
    """(name, is an integer primary key) of each column."""
    return [(row[1], bool(row[5]) and row[2].upper() == "INTEGER")
            for row in connection.execute(f'PRAGMA {schema}.table_info("{table}")')]


def merge_release(shipped: Path, database: Path, sha256: str) -> ReleaseMerge:
    """Insert the rows of the shipped file that ``database`` (migrated to this package's schema)
    lacks, in one transaction, and record the release. Never updates or deletes a row."""
    record = read_record(database)
    known_release = {tuple(key) for key in record.get("release_predictors", [])}
    connection = sqlite3.connect(database, isolation_level=None, timeout=30)
    inserted: dict[str, int] = {}
    try:
        connection.execute("ATTACH DATABASE ? AS shipped", (_read_only_uri(shipped),))
        connection.execute("BEGIN IMMEDIATE")
        defaults_before = {row[0]: row for row in connection.execute(
            f"SELECT {', '.join(PREDICTOR_KEY)} FROM main.predictors WHERE is_default")}
        last_predictor = connection.execute("SELECT coalesce(max(id), 0) FROM main.predictors").fetchone()[0]
        for table in (t.name for t in Base.metadata.sorted_tables):
            mine = _columns(connection, "main", table)
            theirs = {name for name, _ in _columns(connection, "shipped", table)}
            if not mine or not theirs:
                continue
            columns = [name for name, integer_key in mine if name in theirs and not integer_key]
            keys = [c for c in NATURAL_KEYS.get(table, columns) if c in columns]
            match = " AND ".join(f'u."{c}" IS s."{c}"' for c in keys)
            listed, selected = ", ".join(f'"{c}"' for c in columns), ", ".join(f's."{c}"' for c in columns)
            cursor = connection.execute(
                f'INSERT INTO main."{table}" ({listed}) SELECT {selected} FROM shipped."{table}" AS s '
                f'WHERE NOT EXISTS (SELECT 1 FROM main."{table}" AS u WHERE {match})')
            if cursor.rowcount:
                inserted[table] = cursor.rowcount
        _hand_over_defaults(connection, last_predictor, defaults_before, known_release)
        predictors = _release_predictors(connection, "shipped")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    releases = sorted(known_release | {tuple(p) for p in predictors}, key=str)
    _write_record(database, shipped, sha256, [list(p) for p in releases])
    return ReleaseMerge(sha256, inserted)


def _hand_over_defaults(connection: sqlite3.Connection, last_predictor: int, defaults_before: dict[str, tuple],
                        known_release: set[tuple]) -> None:
    """A release's new default predictor of a device serves where the device's default was a
    release's (or there was none); a default the user trained stays, the new one is kept beside it."""
    new_defaults = connection.execute(
        "SELECT id, device FROM main.predictors WHERE id > ? AND is_default", (last_predictor,)).fetchall()
    for predictor_id, device in new_defaults:
        before = defaults_before.get(device)
        if before is None or tuple(before) in known_release:
            connection.execute("UPDATE main.predictors SET is_default = 0 WHERE device = ? AND id != ?",
                               (device, predictor_id))
        else:
            connection.execute("UPDATE main.predictors SET is_default = 0 WHERE id = ?", (predictor_id,))
