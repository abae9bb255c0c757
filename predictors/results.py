"""Known accuracy results: the published ImageNet top-1 of the presets, results imported from a
training repository, and micro-task results; and the surrogate fitted on them.

Import files are CSV (header row) or JSON lines with, per result: one of ``arch_id`` (an
architecture already in the database), ``config`` (a config as a JSON object, or a JSON string in
CSV) or ``name`` (a named architecture, with optional ``resolution``); ``dataset``; ``top1``
(percent, 0-100); optional ``epochs`` (positive integer) and ``source`` (default: the file name).
A file is validated completely before anything is written, and every problem is reported with
its line and field. Importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select

from explorer.architectures import UnknownArchitectureError, config_from_dict, resolve
from explorer.db import AccuracyResult, Architecture, Database, upsert_architecture
from explorer.errors import UserError
from predictors.evidence import cached_fit, evidence_digest_of
from predictors.surrogate import AccuracySurrogate
from search_spaces.base import ArchConfig, KnobError

IMAGENET = "imagenet"
PUBLISHED, IMPORTED, MICRO_TASK = "published", "imported", "micro-task"
IMPORT_SUFFIXES = (".csv", ".jsonl")
MAX_DATASET_LENGTH = 64  # accuracy_results.dataset
MAX_EPOCHS = 2**31 - 1  # accuracy_results.epochs is a 32-bit integer
MICRO_TASK_SOURCE = "explorer micro-task "


class ResultsImportError(UserError):
    """An import file with invalid rows; ``problems`` lists (line, field, message)."""

    def __init__(self, path: str, problems: Sequence[tuple[int, str, str]]):
        self.path, self.problems = path, list(problems)
        lines = [f"{path}, line {line}, field '{field}': {msg}" for line, field, msg in self.problems]
        if len(lines) == 1:  # the common case stays one line
            super().__init__(f"{lines[0]}; nothing imported")
        else:
            super().__init__(f"{len(lines)} invalid row(s), nothing imported:\n" + "\n".join(f"  {x}" for x in lines))


class NotEnoughResultsError(UserError):
    def __init__(self, n: int):
        super().__init__(
            f"the accuracy surrogate needs at least 3 ImageNet results, the database has {n}; "
            "load the published ones (predictors.results.load_published_accuracies) or "
            "run 'explorer results import FILE'")


@dataclass(frozen=True)
class KnownResult:
    arch_id: str
    name: str | None
    config: ArchConfig
    dataset: str
    top1: float
    epochs: int | None
    source: str
    provenance: str

    @property
    def result_set(self) -> str:
        """The set it is calibrated against: provenance and dataset, e.g. ``published:imagenet``;
        micro-task results also by their schedule (the source), which changes their meaning."""
        if self.provenance == MICRO_TASK:
            return f"{self.provenance}:{self.dataset} ({self.source.removeprefix(MICRO_TASK_SOURCE)})"
        return f"{self.provenance}:{self.dataset}"


def store_result(session, config: ArchConfig, dataset: str, top1: float, epochs: int | None, source: str,
                 provenance: str, name: str | None = None) -> str:
    """Insert or update one result; returns ``inserted``, ``updated`` or ``unchanged``.

    The unique key (arch_id, dataset, source, epochs) is matched explicitly, because SQL unique
    constraints treat NULL epochs as distinct."""
    arch = upsert_architecture(session, config, name)
    query = select(AccuracyResult).where(
        AccuracyResult.arch_id == arch.arch_id, AccuracyResult.dataset == dataset, AccuracyResult.source == source,
        AccuracyResult.epochs.is_(None) if epochs is None else AccuracyResult.epochs == epochs)
    row = session.scalars(query).first()
    if row is None:
        session.add(AccuracyResult(arch_id=arch.arch_id, dataset=dataset, top1=top1, epochs=epochs,
                                   source=source, provenance=provenance))
        return "inserted"
    if row.top1 == top1 and row.provenance == provenance:
        return "unchanged"
    row.top1, row.provenance = top1, provenance
    return "updated"


def published_accuracies() -> list[tuple[str, int, float, str]]:
    """(name, resolution, top-1 %, source) of every published ImageNet top-1 the project knows:
    the shipped reference CSV and the results read from the families' papers
    (``published_accuracy_papers.csv``, each row with its source and a note)."""
    data = resources.files("explorer") / "data"
    reference = [(row["model"], int(row["resolution"]), float(row["value"]), row["source"])
                 for row in csv.DictReader((data / "published_reference.csv").read_text().splitlines())
                 if row["metric"] == "top1" and row["device"] == IMAGENET]
    papers = [(row["model"], int(row["resolution"]), float(row["top1"]), row["source"])
              for row in csv.DictReader((data / "published_accuracy_papers.csv").read_text().splitlines())]
    return reference + papers


def load_published_accuracies(db: Database) -> int:
    """Store the published ImageNet top-1 results (provenance ``published``); idempotent.
    Returns how many were new or changed."""
    changed = 0
    with db.session() as session:
        for name, resolution, top1, source in published_accuracies():
            outcome = store_result(session, resolve(name, resolution), IMAGENET, top1, None, source, PUBLISHED, name)
            changed += outcome != "unchanged"
    return changed


def known_results(db: Database, provenance: str | None = None, dataset: str | None = None) -> list[KnownResult]:
    """Stored results, oldest first, optionally filtered."""
    query = select(AccuracyResult, Architecture).join(Architecture, AccuracyResult.arch_id == Architecture.arch_id)
    if provenance is not None:
        query = query.where(AccuracyResult.provenance == provenance)
    if dataset is not None:
        query = query.where(AccuracyResult.dataset == dataset)
    with db.session() as session:
        rows = session.execute(query.order_by(AccuracyResult.id)).all()
        return [KnownResult(r.arch_id, a.name, config_from_dict(a.config_json), r.dataset, r.top1, r.epochs,
                            r.source, r.provenance) for r, a in rows]


def mean_by_architecture(results: Iterable[KnownResult]) -> tuple[list[ArchConfig], list[float], list[str]]:
    """One (config, mean top-1) per architecture, in first-seen order; and the arch ids."""
    groups: dict[str, list[KnownResult]] = defaultdict(list)
    for result in results:
        groups[result.arch_id].append(result)
    ids = list(groups)
    return ([groups[i][0].config for i in ids], [sum(r.top1 for r in groups[i]) / len(groups[i]) for i in ids], ids)


def result_label(result: KnownResult) -> str:
    """``name @ resolution`` (or the arch id) of a result, as the surrogate names its evidence."""
    return f"{result.name or result.arch_id} @ {result.config.resolution}"


def surrogate_training_results(db: Database) -> list[KnownResult]:
    """ImageNet results the surrogate is fitted on: published and imported (not micro-task)."""
    return [r for r in known_results(db, dataset=IMAGENET) if r.provenance in (PUBLISHED, IMPORTED)]


def load_surrogate(db: Database, variant: str | None = None) -> AccuracySurrogate:
    """The surrogate fitted on the database's ImageNet results, so it always reflects the latest
    import (fitted once per distinct set of results and surrogate version, then cached on disk for
    every process; see :mod:`predictors.evidence`)."""
    configs, top1, ids, labels = _surrogate_inputs(db)
    if len(top1) < 3:
        raise NotEnoughResultsError(len(top1))
    return cached_fit(configs, top1, variant, labels, ids)


def _surrogate_inputs(db: Database) -> tuple[list[ArchConfig], list[float], list[str], list[str]]:
    """(configs, mean top-1, arch ids, labels) of the surrogate's training results."""
    results = surrogate_training_results(db)
    configs, top1, ids = mean_by_architecture(results)
    first = {r.arch_id: r for r in reversed(results)}
    return configs, top1, ids, [result_label(first[i]) for i in ids]


def evidence_digest(db: Database) -> str:
    """The digest of the surrogate's evidence in ``db`` (:func:`predictors.evidence.evidence_digest_of`):
    what a stored search compares to tell that its scores are stale. Fits nothing."""
    _, top1, ids, labels = _surrogate_inputs(db)
    return evidence_digest_of(ids, top1, labels)


# -- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    inserted: int
    updated: int
    unchanged: int
    surrogate_loo: dict[str, float] | None  # leave-one-out figures after the refit


def _read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) pairs; a JSON line that is not an object is a problem of field '*'."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            return [(reader.line_num, {k: v for k, v in row.items() if k is not None and v not in ("", None)})
                    for row in reader]
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ResultsImportError(str(path), [(number, "*", f"not valid JSON ({err.msg})")]) from None
        if not isinstance(record, dict):
            raise ResultsImportError(str(path), [(number, "*", "expected a JSON object")])
        rows.append((number, {k: v for k, v in record.items() if v not in ("", None)}))
    return rows


def _architecture(session, record: Mapping[str, Any]) -> tuple[ArchConfig, str | None]:
    """The row's config; raises ``(field, message)`` as a ValueError tuple."""
    given = [key for key in ("arch_id", "config", "name") if key in record]
    if len(given) != 1:
        raise _Problem("arch_id|config|name", f"give exactly one of arch_id, config, name (got {given or 'none'})")
    key = given[0]
    if key == "arch_id":
        row = session.get(Architecture, str(record["arch_id"]))
        if row is None:
            raise _Problem("arch_id", f"{record['arch_id']!r} is not in the database; give 'config' or 'name' instead")
        return config_from_dict(row.config_json), row.name
    resolution = record.get("resolution")
    if resolution is not None:
        try:
            resolution = int(resolution)
        except (TypeError, ValueError):
            raise _Problem("resolution", f"{resolution!r} is not an integer") from None
    try:
        if key == "name":
            return resolve(str(record["name"]), resolution), str(record["name"])
        knobs = record["config"]
        if isinstance(knobs, str):
            try:
                knobs = json.loads(knobs)
            except json.JSONDecodeError as err:
                raise _Problem("config", f"not valid JSON ({err.msg})") from None
        if not isinstance(knobs, dict):
            raise _Problem("config", f"{knobs!r:.60} is not allowed; allowed: a JSON object of knobs")
        return resolve(knobs, resolution), None
    except UnknownArchitectureError as err:
        raise _Problem("name", str(err)) from None
    except KnobError as err:
        raise _Problem(key, str(err)) from None


class _Problem(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _validated(record: Mapping[str, Any], default_source: str) -> tuple[str, float, int | None, str]:
    dataset = str(record.get("dataset", "")).strip()
    if not dataset:
        raise _Problem("dataset", "missing (e.g. 'imagenet')")
    if len(dataset) > MAX_DATASET_LENGTH:
        raise _Problem("dataset", f"{dataset!r} is longer than {MAX_DATASET_LENGTH} characters")
    if "top1" not in record:
        raise _Problem("top1", "missing (top-1 accuracy in percent, 0-100)")
    try:
        top1 = float(record["top1"])
    except (TypeError, ValueError):
        raise _Problem("top1", f"{record['top1']!r} is not a number; allowed: 0-100 (percent)") from None
    if not 0 <= top1 <= 100:
        raise _Problem("top1", f"{top1!r} is out of range; allowed: 0-100 (percent, not a fraction)")
    epochs = record.get("epochs")
    if epochs is not None:
        try:
            epochs = int(str(epochs))
        except ValueError:
            raise _Problem("epochs", f"{record['epochs']!r} is not an integer; allowed: a positive integer or empty") from None
        if not 1 <= epochs <= MAX_EPOCHS:
            raise _Problem("epochs", f"{str(epochs):.40} is out of range; allowed: an integer from 1 to {MAX_EPOCHS} or empty")
    source = str(record.get("source", default_source)).strip() or default_source
    return dataset.lower(), top1, epochs, source


def import_results(db: Database, path: str | Path) -> ImportSummary:
    """Validate and store the results of ``path`` (provenance ``imported``), then refit the
    surrogate. All-or-nothing: on any invalid row nothing is written."""
    path = Path(path)
    if path.suffix.lower() not in IMPORT_SUFFIXES:
        raise ResultsImportError(str(path), [(0, "file", f"suffix {path.suffix!r}; allowed: {', '.join(IMPORT_SUFFIXES)}")])
    if not path.is_file():
        raise ResultsImportError(str(path), [(0, "file", "no such file")])
    try:
        records = _read_rows(path)
    except UnicodeDecodeError as err:
        raise ResultsImportError(str(path), [(0, "file", f"not UTF-8 text (byte {err.object[err.start]:#04x} at "
                                                         f"offset {err.start}); allowed: a UTF-8 CSV or JSON lines file")])
    problems: list[tuple[int, str, str]] = []
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    with db.session() as session:
        valid = []
        for line, record in records:
            try:
                config, name = _architecture(session, record)
                valid.append((config, name, *_validated(record, f"import:{path.name}")))
            except _Problem as problem:
                problems.append((line, problem.field, problem.message))
        if not records:
            problems.append((0, "file", "no result rows"))
        if problems:
            raise ResultsImportError(str(path), problems)
        for config, name, dataset, top1, epochs, source in valid:
            counts[store_result(session, config, dataset, top1, epochs, source, IMPORTED, name)] += 1
    try:
        loo = load_surrogate(db).loo_metrics()
    except NotEnoughResultsError:
        loo = None
    return ImportSummary(len(records), counts["inserted"], counts["updated"], counts["unchanged"], loo)
