"""Known accuracy results: the published ImageNet top-1 of the presets, results imported from a
training repository, and micro-task results; and the surrogate fitted on them.

Import files are CSV (header row) or JSON lines with, per result: one of ``arch_id`` (an
architecture of the database, of a stored search study or of a suggestion), ``config`` (a config
as a JSON object, a JSON string in CSV, a path to a ``config.json`` or a name) or ``name`` (a named
architecture, with optional ``resolution``); ``dataset``; ``top1`` (percent, 0-100; a value <= 1
is taken for a fraction and refused); optional ``epochs`` (positive integer) and ``source``
(default: the file name). A file is validated completely before anything is written, and every
problem is reported with its line and field. A result that contradicts the published one of its
architecture, or lies far outside the surrogate's interval, is stored only when forced, because
one wrong number moves every accuracy prediction. Importing the same file twice changes nothing.
The format with an example: ``docs/results.md``.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from explorer.architectures import NAMED_ARCHITECTURES, UnknownArchitectureError, config_from_dict, resolve
from explorer.db import AccuracyResult, Architecture, Database, upsert_architecture
from explorer.errors import UserError
from predictors.evidence import cached_fit, evidence_digest_of
from predictors.surrogate import AccuracySurrogate
from search_spaces.base import ArchConfig, KnobError, arch_id

IMAGENET = "imagenet"
PUBLISHED, IMPORTED, MICRO_TASK = "published", "imported", "micro-task"
IMPORT_SUFFIXES = (".csv", ".jsonl")
MAX_DATASET_LENGTH = 64  # accuracy_results.dataset
MAX_EPOCHS = 2**31 - 1  # accuracy_results.epochs is a 32-bit integer
MICRO_TASK_SOURCE = "explorer micro-task "
PROVENANCES = (PUBLISHED, IMPORTED, MICRO_TASK)
#: a top-1 at or below this is a fraction written for a percentage (0.781 for 78.1 %)
FRACTION_LIMIT = 1.0
#: points an imported top-1 may differ from the published one of the same architecture and
#: dataset: reproductions with the paper's recipe land within a few tenths
PUBLISHED_TOLERANCE = 1.0
#: standard deviations the surrogate's ~90 % interval is widened by before a result counts as far
#: outside it (the interval +- 2 std is about +- 3.6 std around the mean, p ~ 3e-4)
SURROGATE_MARGIN_STD = 2.0


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
    result_id: int | None = None  # the row's id, what `explorer results remove` takes

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.result_id, "arch_id": self.arch_id, "name": self.name,
                "resolution": self.config.resolution, "space": self.config.space, "dataset": self.dataset,
                "top1": self.top1, "epochs": self.epochs, "source": self.source, "provenance": self.provenance}

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


def known_results(db: Database, provenance: str | None = None, dataset: str | None = None,
                  source: str | None = None, arch: str | None = None) -> list[KnownResult]:
    """Stored results, oldest first, optionally filtered (``arch``: an arch id or a name)."""
    query = select(AccuracyResult, Architecture).join(Architecture, AccuracyResult.arch_id == Architecture.arch_id)
    if provenance is not None:
        query = query.where(AccuracyResult.provenance == provenance)
    if dataset is not None:
        query = query.where(AccuracyResult.dataset == dataset)
    if source is not None:
        query = query.where(AccuracyResult.source == source)
    if arch is not None:
        query = query.where((Architecture.arch_id == arch) | (Architecture.name == arch))
    with db.session() as session:
        rows = session.execute(query.order_by(AccuracyResult.id)).all()
        return [KnownResult(r.arch_id, a.name, config_from_dict(a.config_json), r.dataset, r.top1, r.epochs,
                            r.source, r.provenance, r.id) for r, a in rows]


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

#: the config of an arch id the database does not hold (a search trial), or None
ArchLookup = Callable[[str], "ArchConfig | None"]


@dataclass(frozen=True)
class ImportWarning:
    """A stored result that contradicts the evidence (stored because the import was forced)."""

    line: int
    field: str
    arch_id: str
    message: str


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    inserted: int
    updated: int
    unchanged: int
    surrogate_loo: dict[str, float] | None  # leave-one-out figures after the refit
    warnings: tuple[ImportWarning, ...] = ()


@dataclass(frozen=True)
class _Row:
    line: int
    config: ArchConfig
    name: str | None
    dataset: str
    top1: float
    epochs: int | None
    source: str


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


def _config_spec(value: Any, folder: Path) -> Any:
    """A ``config`` cell as :func:`resolve` takes it: a JSON object (inline, or a JSON string), a
    name, or a path to a config JSON file (relative to the import file's folder, else to the
    working directory)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise _Problem("config", f"not valid JSON ({err.msg})") from None
    if text in NAMED_ARCHITECTURES:
        return text
    beside = folder / text
    if beside.is_file():
        return str(beside)
    if Path(text).is_file():
        return text
    raise _Problem("config", f"{text!r:.80} is not allowed; allowed: a JSON object of knobs, a name, or the path of "
                             "a config.json (relative to the import file's folder)")


def _architecture(session, record: Mapping[str, Any], folder: Path,
                  lookup: ArchLookup | None) -> tuple[ArchConfig, str | None]:
    """The row's config and name; raises :class:`_Problem`."""
    given = [key for key in ("arch_id", "config", "name") if key in record]
    if len(given) != 1:
        raise _Problem("arch_id|config|name", f"give exactly one of arch_id, config, name (got {given or 'none'})")
    key = given[0]
    if key == "arch_id":
        wanted = str(record["arch_id"]).strip()
        row = session.get(Architecture, wanted)
        if row is not None:
            return config_from_dict(row.config_json), row.name
        found = lookup(wanted) if lookup is not None else None
        if found is None:
            raise _Problem("arch_id", f"{wanted!r} is not an architecture of the database, of a suggestion or of a "
                                      "stored search study; give 'config' or 'name' instead")
        return found, None
    resolution = record.get("resolution")
    if resolution is not None:
        try:
            resolution = int(resolution)
        except (TypeError, ValueError):
            raise _Problem("resolution", f"{resolution!r} is not an integer") from None
    try:
        if key == "name":
            return resolve(str(record["name"]), resolution), str(record["name"])
        spec = _config_spec(record["config"], folder)
        if not isinstance(spec, (dict, str)):
            raise _Problem("config", f"{spec!r:.60} is not allowed; allowed: a JSON object of knobs")
        config = resolve(spec, resolution)
        return config, spec if isinstance(spec, str) and spec in NAMED_ARCHITECTURES else None
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
    if top1 <= FRACTION_LIMIT:
        raise _Problem("top1", f"{record['top1']} looks like a fraction: did you mean {top1 * 100:.1f}? "
                               f"(top-1 is in percent, above {FRACTION_LIMIT:g})")
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


def _contradictions(db: Database, rows: Sequence[_Row]) -> list[ImportWarning]:
    """Rows that contradict the evidence: more than :data:`PUBLISHED_TOLERANCE` points from the
    published top-1 of the same architecture and dataset; or, for an ImageNet result of an
    architecture the surrogate has no result of, outside its ~90 % interval widened by
    :data:`SURROGATE_MARGIN_STD` standard deviations (fits the surrogate only then)."""
    published: dict[tuple[str, str], list[KnownResult]] = defaultdict(list)
    for result in known_results(db, provenance=PUBLISHED):
        published[result.arch_id, result.dataset].append(result)
    found: list[ImportWarning] = []
    unseen: list[_Row] = []
    evidence = {r.arch_id for r in surrogate_training_results(db)}
    for row in rows:
        key = arch_id(row.config)
        if published[key, row.dataset]:
            nearest = min(published[key, row.dataset], key=lambda r: abs(r.top1 - row.top1))
            if abs(nearest.top1 - row.top1) > PUBLISHED_TOLERANCE:
                found.append(ImportWarning(
                    row.line, "top1", key,
                    f"{row.top1:g} contradicts the published {nearest.top1:g} of {result_label(nearest)} on "
                    f"{row.dataset} ({nearest.source}) by {abs(nearest.top1 - row.top1):.1f} points (tolerance "
                    f"{PUBLISHED_TOLERANCE:g})"))
        elif row.dataset == IMAGENET and key not in evidence:
            unseen.append(row)
    if unseen:
        try:
            surrogate = load_surrogate(db)
        except NotEnoughResultsError:
            return found
        prediction = surrogate.predict([row.config for row in unseen])
        margin = SURROGATE_MARGIN_STD * prediction.std
        for row, low, high, wide_low, wide_high in zip(unseen, prediction.low, prediction.high,
                                                       prediction.low - margin, prediction.high + margin):
            if not wide_low <= row.top1 <= wide_high:
                found.append(ImportWarning(
                    row.line, "top1", arch_id(row.config),
                    f"{row.top1:g} lies far outside the surrogate's ~90 % interval {low:.1f}-{high:.1f} "
                    f"(widened by {SURROGATE_MARGIN_STD:g} std: {wide_low:.1f}-{wide_high:.1f})"))
    return sorted(found, key=lambda w: w.line)


def import_results(db: Database, path: str | Path, *, force: bool = False,
                   lookup: ArchLookup | None = None) -> ImportSummary:
    """Validate and store the results of ``path`` (provenance ``imported``), then refit the
    surrogate. All-or-nothing: on any invalid row nothing is written, nor on any contradiction
    (:func:`_contradictions`) unless ``force``, when they come back as warnings. ``lookup``
    resolves arch ids the database does not hold (search trials)."""
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
    valid: list[_Row] = []
    with db.session() as session:
        for line, record in records:
            try:
                config, name = _architecture(session, record, path.parent, lookup)
                valid.append(_Row(line, config, name, *_validated(record, f"import:{path.name}")))
            except _Problem as problem:
                problems.append((line, problem.field, problem.message))
    if not records:
        problems.append((0, "file", "no result rows"))
    if problems:
        raise ResultsImportError(str(path), problems)
    warnings = _contradictions(db, valid)
    if warnings and not force:
        raise ResultsImportError(str(path), [(w.line, w.field, f"{w.message}; check the value, or store it anyway "
                                                               "with --force") for w in warnings])
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    with db.session() as session:
        for row in valid:
            outcome = store_result(session, row.config, row.dataset, row.top1, row.epochs, row.source, IMPORTED, row.name)
            counts[outcome] += 1
    try:
        loo = load_surrogate(db).loo_metrics()
    except NotEnoughResultsError:
        loo = None
    return ImportSummary(len(records), counts["inserted"], counts["updated"], counts["unchanged"], loo, tuple(warnings))


# -- list and remove -------------------------------------------------------------------------------


def remove_results(db: Database, ids: Sequence[int] = (), source: str | None = None,
                   force: bool = False) -> list[KnownResult]:
    """Delete results by id or by source and return them; published results only when ``force``
    (they are the release's evidence). Removes nothing on any unknown id."""
    if bool(ids) == (source is not None):
        raise UserError("give result ids or --source (one of them); `explorer results list` prints both")
    chosen = [r for r in known_results(db, source=source) if source is not None or r.result_id in set(ids)]
    missing = sorted(set(ids) - {r.result_id for r in chosen})
    if missing:
        raise UserError(f"unknown result id(s) {', '.join(map(str, missing))}; allowed: the ids `explorer results "
                        "list` prints")
    if not chosen:
        raise UserError(f"no result has source {source!r}; allowed: a source `explorer results list` prints")
    published = [r for r in chosen if r.provenance == PUBLISHED]
    if published and not force:
        raise UserError(f"{len(published)} of the {len(chosen)} results are published (id(s) "
                        f"{', '.join(str(r.result_id) for r in published)}), the release's evidence; nothing removed "
                        "(add --force to remove them too)")
    with db.session() as session:
        session.execute(delete(AccuracyResult).where(AccuracyResult.id.in_([r.result_id for r in chosen])))
    return chosen
