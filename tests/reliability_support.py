"""What the reliability tests and ``benchmarks/reliability.py`` share: running the CLI in-process
and as a process, judging an error message, fingerprinting a database, Hypothesis strategies for
every kind of user input, and the fault-injection trials (SIGKILL at a random moment, then the
same command again).

The tests call these with small counts; the benchmark with the counts the figures quote.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st

from explorer.architectures import NAMED_ARCHITECTURES, SPACES
from explorer.measure.protocol import ProtocolResult, summarize
from explorer.remote.runner_main import RESULT_FORMAT
from search_spaces.base import arch_id
from search_spaces.toys import ConvStackConfig

ROOT = Path(__file__).resolve().parents[1]
#: ``explorer ARGS`` as a child process of this interpreter (no dependence on the entry script)
EXPLORER = (sys.executable, "-c", "import sys; from explorer.cli import main; sys.exit(main(sys.argv[1:]))")
#: how a measurement run in these trials is made cheap: tiny models, few samples, no waiting for
#: a quiet machine, and no ``busy`` flag (a busy row is measured again by the next run, by design,
#: which these trials would count as a duplicate)
QUICK_MEASURE = ("--resolution", "32", "--no-drift-check", "--allow-busy", "--busy-cores", "1000",
                 "--time-limit", "0.05", "--min-samples", "4", "--max-samples", "8")


# -- running the CLI ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CliOutcome:
    """Exit code, output and, if the command raised instead of reporting, the traceback."""

    code: int
    out: str
    err: str
    traceback: str | None = None


def call_cli(argv: Sequence[str]) -> CliOutcome:
    """``explorer ARGV`` in this process (what ``main`` returns, prints and raises)."""
    from explorer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
        except Exception:  # noqa: BLE001 - an escaped exception is what these checks count
            return CliOutcome(1, out.getvalue(), err.getvalue(), traceback.format_exc())
    return CliOutcome(code, out.getvalue(), err.getvalue())


def run_explorer(argv: Sequence[str], *, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """``explorer ARGV`` as a child process, output captured."""
    return subprocess.run([*EXPLORER, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=child_env(), **kwargs)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "COLUMNS": "200"}


def clear_error(code: int, err: str, *, expected: Sequence[str] = ()) -> str | None:
    """Why ``err`` is not a clear rejection (None when it is): a non-zero exit code, no
    traceback, exactly one line saying ``error:`` (argparse may put its usage lines before it),
    and every word of ``expected`` (the field, what is allowed) in it."""
    if code == 0:
        return "exit code 0"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    usage = [line for line in lines if line.startswith(("usage:", " ")) and "error:" not in line]
    if len(errors) != 1 or len(errors) + len(usage) != len(lines):
        return f"{len(lines)} lines: {err.strip()[:300]!r}"
    missing = [word for word in expected if word.lower() not in errors[0].lower()]
    return f"does not name {missing}: {errors[0][:300]!r}" if missing else None


# -- databases ----------------------------------------------------------------------------------

def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{path}"


def fingerprint(url: str) -> str:
    """Hash of every row of every table: equal fingerprints mean nothing was written."""
    digest = hashlib.sha256()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            for name in sorted(sa.inspect(connection).get_table_names()):
                rows = connection.execute(sa.text(f'SELECT * FROM "{name}"')).all()
                digest.update(name.encode())
                for row in sorted(repr(tuple(r)) for r in rows):
                    digest.update(row.encode())
    finally:
        engine.dispose()
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def integrity(url: str) -> str:
    """``ok``, or what the database's own check finds: SQLite's ``integrity_check`` and
    ``foreign_key_check``; on PostgreSQL, ``amcheck`` is not always installed, so orphans of the
    foreign keys and duplicate primary keys are counted instead."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                result = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
                orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                return result if result != "ok" else (f"{len(orphans)} foreign-key orphans" if orphans else "ok")
            orphans = connection.execute(sa.text(
                "SELECT count(*) FROM measurements m LEFT JOIN architectures a ON a.arch_id = m.arch_id "
                "WHERE a.arch_id IS NULL")).scalar()
            doubled = connection.execute(sa.text(
                "SELECT count(*) FROM (SELECT id FROM measurements GROUP BY id HAVING count(*) > 1) d")).scalar()
            return "ok" if not orphans and not doubled else f"{orphans} orphans, {doubled} doubled ids"
    finally:
        engine.dispose()


def template_database(directory: Path) -> Path:
    """A migrated, empty measurement database to copy for each trial (opening one is slow)."""
    from explorer.db import open_database

    path = directory / "template.db"
    if not path.exists():
        open_database(path).close()
        _checkpoint(path)
    return path


def search_template(directory: Path) -> Path:
    """A migrated database with what ``explorer search --device raspi5`` needs and no accuracy
    results (so no surrogate is fitted for the report: a run takes seconds, not a minute)."""
    path = directory / "search-template.db"
    if not path.exists():
        shutil.copyfile(template_database(directory), path)
        search_database(sqlite_url(path))
        _checkpoint(path)
    return path


def fresh_copy(template: Path, path: Path) -> str:
    """``template`` copied to ``path`` (leftovers of an earlier trial removed); its URL."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, path)
    return sqlite_url(path)


def shipped_copy(directory: Path, name: str = "shipped.db") -> Path:
    """A copy of the shipped ``measurements.db`` (never written in place)."""
    target = directory / name
    shutil.copyfile(ROOT / "measurements.db", target)
    return target


def _checkpoint(path: Path) -> None:
    engine = sa.create_engine(sqlite_url(path))
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


# -- result lines a runner writes -----------------------------------------------------------------

TINY_CONFIGS = tuple(ConvStackConfig(channels=c, layers=layers, resolution=32)
                     for c in (4, 8, 12, 16) for layers in (1, 2, 3))


def result_line(config, *, device: str = "local", bundle: str = "bfuzz", started: datetime | None = None,
                median: float = 1.0) -> dict[str, Any]:
    """A valid runner result line for ``config`` (synthetic timings: what ingestion checks is the
    line, not the machine)."""
    samples = tuple(median * (1 + 0.01 * k) for k in (-2, -1, 0, 1, 2))
    stats = summarize(samples)
    result = ProtocolResult(samples=samples, block_medians=(stats.median,), stats=stats, warmup=1,
                            load_before={"loadavg": 0.1}, load_after={"loadavg": 0.1})
    started = started or datetime(2025, 1, 1, tzinfo=timezone.utc)
    key = arch_id(config)
    return {"format": RESULT_FORMAT, "bundle_id": bundle, "measurement_key": "mfuzz", "device": device,
            "key": key, "purpose": "campaign", "arch_id": key, "name": None,
            "config": {"space": config.space, **config.to_dict()}, "model_sha256": "0" * 64, "backend": "ort",
            "batch": 1, "threads": 1, "resolution": config.resolution, "settings": {"runtime": "fuzz"},
            "host": {"cores": 2}, "started_at": started.isoformat(),
            "result": result.to_dict(), "status": "ok", "error": None,
            "ended_at": (started + timedelta(seconds=1)).isoformat()}


def results_file(path: Path, n: int, first_minute: int = 0) -> Path:
    """``n`` valid result lines of distinct measurements (a tiny model each, distinct start times
    from ``first_minute``)."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=first_minute)
    path.write_text("".join(json.dumps(result_line(TINY_CONFIGS[i % len(TINY_CONFIGS)],
                                                   started=start + timedelta(minutes=i))) + "\n"
                            for i in range(n)))
    return path


def accuracy_file(path: Path, n: int, source: str = "faults") -> Path:
    """``n`` valid accuracy rows (LowFormer-B1 at distinct epochs) as CSV."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "dataset", "top1", "epochs", "source"])
        for i in range(n):
            writer.writerow(["lowformer-b1", "imagenet", f"{70 + i * 0.01:.2f}", i + 1, source])
    return path


# -- Hypothesis strategies ----------------------------------------------------------------------

JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)
#: a representative valid config per family: its presets
_ALL_PRESETS = {space: [entry.make(None) for entry in NAMED_ARCHITECTURES.values()
                        if entry.make(None).space == space] for space in SPACES}
#: spaces with named architectures to mutate (the reference space's networks are named by timm)
PRESETS = {space: presets for space, presets in _ALL_PRESETS.items() if presets}


def _set_path(data: Any, path: Sequence[Any], value: Any, delete: bool) -> Any:
    if not path:
        return value
    if isinstance(data, dict):
        key, rest = path[0], path[1:]
        out = dict(data)
        if delete and not rest:
            out.pop(key, None)
        else:
            out[key] = _set_path(data.get(key), rest, value, delete)
        return out
    if isinstance(data, list) and data:
        out = list(data)
        index = path[0] % len(data) if isinstance(path[0], int) else 0
        out[index] = _set_path(data[index], path[1:], value, delete)
        return out
    return value


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data[:4]):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: Any, *, extra_keys: bool = True) -> Any:
    """``valid`` with one to three of its fields replaced by junk, deleted, or a key added."""
    data = valid
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if extra_keys and draw(st.booleans()) and isinstance(data, dict):
            data = {**data, draw(st.text(min_size=1, max_size=8)): draw(JUNK)}
        elif paths:
            path = draw(st.sampled_from(paths))
            data = _set_path(data, path, draw(JUNK), delete=draw(st.integers(0, 4)) == 0)
    return data


@st.composite
def config_dicts(draw: st.DrawFn) -> tuple[str, Any]:
    """(family, a config JSON object of that family with some knobs mutated)."""
    space = draw(st.sampled_from(sorted(PRESETS)))
    preset = draw(st.sampled_from(PRESETS[space]))
    return space, draw(mutated({"space": space, **preset.to_dict()}))


def _number_text(draw: st.DrawFn) -> str:
    return draw(st.one_of(st.integers(-10**6, 10**6).map(str),
                          st.floats(allow_nan=True, allow_infinity=True).map(repr),
                          st.from_regex(r"[-+]?\d{0,4}(\.\d{0,3})?([eE][-+]?\d{1,3})?", fullmatch=True)))


@st.composite
def budgets(draw: st.DrawFn) -> str:
    """Budget strings: well-formed ones, wrong units and signs, and arbitrary text."""
    shaped = _number_text(draw) + draw(st.sampled_from(["", " ", "ms", " ms", "s", "us", "µs", "m", "MS", "sec"]))
    return draw(st.one_of(st.just(shaped), st.text(max_size=12)))


DEVICE_NAMES = st.one_of(st.text(max_size=80), st.sampled_from(["raspi5", "local", "jetson-tx2", "RASPI5", ""]),
                         st.text(alphabet="abc-_.0123456789", min_size=1, max_size=70))


@st.composite
def device_profiles(draw: st.DrawFn) -> Any:
    """A device profile JSON object (``explorer devices add --file``) with fields mutated."""
    valid = {"name": "fuzz-board", "description": "a board", "hardware": "ARM", "runtime": "onnxruntime",
             "backend": "ort", "default_threads": 4, "default_batch": 1, "aliases": ["fb"]}
    return draw(mutated(valid))


@st.composite
def ingest_lines(draw: st.DrawFn) -> str:
    """A runner result line with fields mutated, or text that is no such line at all."""
    config = draw(st.sampled_from(TINY_CONFIGS))
    record = draw(mutated(result_line(config), extra_keys=False))
    return draw(st.one_of(st.just(json.dumps(record, default=str, allow_nan=True)),
                          st.text(max_size=40).map(lambda t: t.replace("\n", " "))))


RESULT_FIELDS = ("name", "arch_id", "config", "dataset", "top1", "epochs", "source", "resolution")


@st.composite
def result_rows(draw: st.DrawFn) -> dict[str, Any]:
    """An accuracy row with plausible and implausible values per field."""
    valid = {"name": "lowformer-b1", "dataset": "imagenet", "top1": 79.9, "epochs": 300, "source": "fuzz"}
    row = draw(mutated(valid))
    if draw(st.integers(0, 3)) == 0:
        row[draw(st.sampled_from(RESULT_FIELDS))] = draw(st.one_of(
            JUNK, st.sampled_from(["lowformer-b9", "efficientvit-b1", "0" * 16, "-5", "1e400", "nan", "0.8x",
                                   0, -1, 2**31, 10**30, 1e300])))
    return row


def result_file_text(rows: Sequence[dict[str, Any]], kind: str) -> str:
    """The rows as a CSV (header from their keys; values as text, objects as JSON) or JSON lines."""
    if kind == "jsonl":
        return "".join(json.dumps(row, default=str) + "\n" for row in rows)
    keys = sorted({str(k) for row in rows for k in row})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(keys)
    for row in rows:
        values = {str(k): v for k, v in row.items()}
        writer.writerow([json.dumps(values[k]) if isinstance(values.get(k), (dict, list)) else values.get(k, "")
                         for k in keys])
    return buffer.getvalue()


#: model paths a manifest could use to make a reader leave the bundle directory
ESCAPING_PATHS = ("../outside.onnx", "/etc/passwd", "models/../../x.onnx", "models/../manifest.json", "..")


@st.composite
def manifests(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` (a bundle manifest) with fields mutated, model paths pointed out of the bundle."""
    data = draw(mutated(valid))
    if draw(st.integers(0, 3)) == 0 and isinstance(data, dict) and isinstance(data.get("models"), list) \
            and data["models"] and isinstance(data["models"][0], dict):
        escape = draw(st.sampled_from(ESCAPING_PATHS))
        data = {**data, "models": [{**data["models"][0], "file": escape}, *data["models"][1:]]}
    return data


# -- fault injection ----------------------------------------------------------------------------

@dataclass
class FaultReport:
    """One fault's trials: results lost or duplicated after the re-run, failed integrity
    checks, and trials whose re-run did not bring the work to its full count."""

    fault: str
    trials: int = 0
    lost: int = 0
    duplicated: int = 0
    integrity_failures: int = 0
    incomplete: int = 0
    killed_with_work_done: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, lost: int, duplicated: int, integrity_ok: bool, complete: bool, partial: bool,
            note: str = "") -> None:
        self.trials += 1
        self.lost += lost
        self.duplicated += duplicated
        self.integrity_failures += not integrity_ok
        self.incomplete += not complete
        self.killed_with_work_done += partial
        if lost or duplicated or not integrity_ok or not complete:
            self.problems.append(f"trial {self.trials}: lost {lost}, duplicated {duplicated}, integrity "
                                 f"{'ok' if integrity_ok else 'FAILED'}, complete {complete} {note}".strip())

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.integrity_failures or self.incomplete)

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "trials": self.trials, "lost": self.lost, "duplicated": self.duplicated,
                "integrity_failures": self.integrity_failures, "incomplete": self.incomplete,
                "killed_with_work_done": self.killed_with_work_done, "problems": self.problems}


def _rows(url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Scenario:
    """A command that writes results, how to read those results back as (identity, key) pairs
    (identity: the row; key: what must occur once), and how many keys a finished run holds.
    ``atomic``: the command writes everything in one transaction (there is no first result to
    wait for before killing it)."""

    name: str
    argv: Callable[[str], list[str]]
    results: Callable[[str], list[tuple[Any, Any]]]
    expected: int
    atomic: bool = False


#: seconds between two looks at the database while waiting for a command's first result
POLL_S = 0.05


def _start(argv: Sequence[str]) -> subprocess.Popen:
    """``explorer ARGV`` in its own process group: killing the group kills the command and any
    workers it spawned, as a crash or ``kill -9`` of the job would."""
    return subprocess.Popen([*EXPLORER, *map(str, argv)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT, env=child_env(), start_new_session=True)


def _first_result(process: subprocess.Popen, scenario: Scenario, url: str) -> None:
    """Return once ``url`` holds a result of the scenario (or the process ended)."""
    while process.poll() is None and not scenario.results(url):
        time.sleep(POLL_S)


def work_window(scenario: Scenario, url: str) -> float:
    """Seconds an uninterrupted run spends writing: from its first stored result to its end
    (an atomic command: its whole run)."""
    start = time.monotonic()
    process = _start(scenario.argv(url))
    if not scenario.atomic:
        _first_result(process, scenario, url)
        start = time.monotonic()
    assert process.wait() == 0, f"{scenario.name} failed on {url}"
    return time.monotonic() - start


def kill_during_work(scenario: Scenario, url: str, delay_s: float) -> bool:
    """Start the command, wait for its first result (an atomic one: its start), then SIGKILL
    its process group after ``delay_s``; False if it finished first."""
    process = _start(scenario.argv(url))
    if not scenario.atomic:
        _first_result(process, scenario, url)
    try:
        process.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def fault_trials(scenario: Scenario, fresh_database: Callable[[int], str], trials: int, *, seed: int = 0,
                 report: FaultReport | None = None,
                 on_trial: Callable[[FaultReport], None] = lambda report: None) -> FaultReport:
    """``trials`` times: a fresh database (``fresh_database(i)``; -1 is the run that measures
    the work window), the command SIGKILLed at a uniformly random moment of its work window
    (:func:`work_window`), then the same command again to completion. No result present after
    the kill may be missing, no key may occur twice, the database must pass its integrity check
    and hold the full count."""
    report = report or FaultReport(scenario.name)
    rng = random.Random(seed)
    window = None
    for trial in range(trials):
        if window is None:
            window = work_window(scenario, fresh_database(-1))
        url = fresh_database(trial)
        killed = kill_during_work(scenario, url, rng.uniform(0.0, 1.0) * window)
        before = scenario.results(url)
        again = run_explorer(scenario.argv(url))
        after = scenario.results(url)
        identities = {identity for identity, _ in after}
        keys = [key for _, key in after]
        lost = sum(identity not in identities for identity, _ in before)
        duplicated = len(keys) - len(set(keys))
        complete = again.returncode == 0 and len(set(keys)) == scenario.expected
        note = "" if again.returncode == 0 else f"re-run exit {again.returncode}: {again.stderr.strip()[-300:]}"
        report.add(lost, duplicated, integrity(url) == "ok", complete,
                   partial=killed and 0 < len(before) < scenario.expected, note=note)
        on_trial(report)
    return report


def measure_scenario(names_file: Path, n: int) -> Scenario:
    return Scenario(
        "explorer measure",
        lambda url: ["measure", "--device", "local", "--sampler", "file", "--file", str(names_file),
                     *QUICK_MEASURE, "--json", "--db", url],
        lambda url: [(row_id, arch) for row_id, arch in _rows(
            url, "SELECT id, arch_id FROM measurements WHERE provenance = 'measured'")],
        n)


def ingest_scenario(results: Path, n: int) -> Scenario:
    return Scenario(
        "explorer ingest",
        lambda url: ["ingest", str(results), "--json", "--db", url],
        lambda url: [(row_id, (arch, str(started))) for row_id, arch, started in _rows(
            url, "SELECT id, arch_id, started_at FROM measurements WHERE provenance = 'measured'")],
        n)


def results_scenario(path: Path, n: int, source: str = "faults") -> Scenario:
    return Scenario(
        "explorer results import",
        lambda url: ["results", "import", str(path), "--json", "--db", url],
        lambda url: [(row_id, (arch, epochs)) for row_id, arch, epochs in _rows(
            url, f"SELECT id, arch_id, epochs FROM accuracy_results WHERE source = '{source}'")],
        n, atomic=True)


def completed_trials(storage: str, study: str) -> list[Any]:
    """The completed trials of ``study`` (none if it does not exist yet)."""
    import optuna
    from optuna.trial import TrialState

    from explorer.search import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(storage))
    except KeyError:  # killed before the study was created
        return []
    return loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def search_scenario(storage: Callable[[str], str], trials: int) -> Scenario:
    """``explorer search`` with two workers; ``storage(db_url)`` gives the study storage URL and
    each database file its own study. Keys are trial numbers; a completed trial seen after the
    kill must still be there."""

    def study(url: str) -> str:
        return f"faults-{Path(url.split(':///', 1)[1]).stem}"

    def results(url: str) -> list[tuple[Any, Any]]:
        return [((t.number, t.user_attrs.get("arch_id")), t.number) for t in completed_trials(storage(url), study(url))]

    return Scenario(
        "explorer search --workers 2",
        lambda url: ["search", "--device", "raspi5", "--budget", "40ms", "--objective", "params", "--trials",
                     str(trials), "--workers", "2", "--study", study(url), "--no-dashboard", "--json", "--db", url,
                     "--storage", storage(url)],
        results,
        trials)


# -- damaged files ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Damaged:
    """A damaged file and what to run on it: ``argv`` must fail with a clear error naming
    ``expected``, ``guarded`` must keep its bytes (or, for a database, its rows), and
    ``usable`` (if any) must still succeed on the same file."""

    argv: list[str]
    guarded: Path
    expected: tuple[str, ...]
    usable: list[str] | None = None
    rows: bool = False  # compare the database's rows rather than the file's bytes


def _not_a_database(directory: Path) -> Damaged:
    path = directory / "notadb.db"
    path.write_text("these are notes, not a database\n" * 50)
    return Damaged(["devices", "--db", path], path, ("cannot be opened", "nothing was changed"))


def _truncated_database(directory: Path) -> Damaged:
    path = shipped_copy(directory, "truncated.db")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])
    return Damaged(["measurements", "list", "--device", "raspi5", "--db", path], path,
                   ("cannot be opened", "malformed"))


def _newer_schema(directory: Path) -> Damaged:
    path = directory / "newer.db"
    shutil.copyfile(template_database(directory), path)
    engine = sa.create_engine(sqlite_url(path))
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    _checkpoint(path)
    return Damaged(["devices", "--db", path], path, ("9999_from_the_future", "upgrade explorer"))


def _corrupt_predictor(directory: Path) -> Damaged:
    path = shipped_copy(directory, "predictor.db")
    engine = sa.create_engine(sqlite_url(path))
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE predictors SET model_blob = substr(model_blob, 1, 100) "
                                   "WHERE device = 'raspi5-ort'"))
    engine.dispose()
    return Damaged(["predict", "--device", "raspi5", "lowformer-b1", "--db", path], path,
                   ("predictor", "raspi5-ort", "retrain"),
                   usable=["predict", "--device", "jetson-tx2", "lowformer-b1", "--db", path], rows=True)


def tiny_bundle(directory: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """A bundle of two tiny models and a tiny reference in ``directory/name``, and its manifest."""
    from explorer.measure import Job, ProtocolSettings
    from explorer.remote import write_bundle

    out = directory / name
    settings = ProtocolSettings(warmup=1, block_size=4, reference_block_size=2, min_samples=4, max_samples=8,
                                time_limit_s=0.1, remeasure=False, allow_busy=True)
    write_bundle([Job(config, "ort", 1, 1) for config in TINY_CONFIGS[:2]], out, device="local",
                 reference=TINY_CONFIGS[2], settings=settings)
    return out, json.loads((out / "manifest.json").read_text())


def _damage_onnx(bundle: Path, manifest: dict[str, Any], entry: dict[str, Any]) -> Path:
    """Cut the entry's ONNX file in half and state the cut file's hash in the manifest, so the
    runner gets past its copy check to ONNX Runtime itself."""
    from explorer.onnx_export import file_sha256

    path = bundle / entry["file"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    entry["sha256"] = file_sha256(path)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return path


def _onnx_model(directory: Path) -> Damaged:
    bundle, manifest = tiny_bundle(directory, "model-bundle")
    path = _damage_onnx(bundle, manifest, manifest["models"][0])
    return Damaged(["runner", bundle, "--output", directory / "model-results.jsonl"], path,
                   ("does not load",), usable=["ingest", directory / "model-results.jsonl", "--db",
                                               template_database(directory)])


def _onnx_reference(directory: Path) -> Damaged:
    bundle, manifest = tiny_bundle(directory, "reference-bundle")
    path = _damage_onnx(bundle, manifest, manifest["reference"])
    return Damaged(["runner", bundle], path, ("reference model", "does not load"))


#: name -> builder of the damaged file in a scratch directory
DAMAGED_FILES: dict[str, Callable[[Path], Damaged]] = {
    "not a database": _not_a_database,
    "truncated database": _truncated_database,
    "newer schema version": _newer_schema,
    "corrupt predictor JSON": _corrupt_predictor,
    "ONNX model that does not load": _onnx_model,
    "ONNX reference that does not load": _onnx_reference,
}


def _command(argv: Sequence[Any]) -> list[str]:
    """``runner BUNDLE ...`` runs the bundle's standalone runner.py (isolated, as on a device);
    anything else is an ``explorer`` command."""
    if argv[0] == "runner":
        return [sys.executable, "-I", str(Path(argv[1]) / "runner.py"), *map(str, argv[1:])]
    return [*EXPLORER, *map(str, argv)]


@dataclass(frozen=True)
class DamagedOutcome:
    case: str
    message: str
    problem: str | None  # None: a clear error, the file kept, the rest usable

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "message": self.message, "ok": self.problem is None, "problem": self.problem}


def check_damaged(case: str, directory: Path) -> DamagedOutcome:
    """Build the case, run its command as a process and judge what happened."""
    damaged = DAMAGED_FILES[case](directory)
    guard = (lambda: fingerprint(sqlite_url(damaged.guarded))) if damaged.rows else (
        lambda: file_fingerprint(damaged.guarded))
    before = guard()
    done = subprocess.run(_command(damaged.argv), capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=child_env())
    if damaged.argv[0] == "runner" and done.returncode == 0:  # a model that fails is a failed result line
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        failed = [line["error"] for line in lines if line["status"] == "failed"]
        message = failed[0] if len(failed) == 1 else ""
        problem = None if len(failed) == 1 and all(w in message for w in damaged.expected) and len(lines) == 2 \
            else f"result lines: {[(line['status'], line.get('error')) for line in lines]}"
    else:
        # the runner reports progress on stderr before its one-line error: judge the last line
        message = (done.stderr.strip().splitlines() or [""])[-1]
        err = done.stderr if damaged.argv[0] != "runner" or "Traceback" in done.stderr else f"error: {message}"
        problem = clear_error(done.returncode, err, expected=damaged.expected)
    if problem is None and guard() != before:
        problem = f"{damaged.guarded.name} was changed"
    if problem is None and damaged.usable is not None:
        after = subprocess.run(_command(damaged.usable), capture_output=True, text=True, timeout=300, cwd=ROOT,
                               env=child_env())
        if after.returncode not in (0, 1) or "Traceback" in after.stderr or (
                damaged.usable[0] != "ingest" and after.returncode):
            problem = f"the rest is not usable: {' '.join(map(str, damaged.usable[:3]))} -> {after.stderr[-300:]!r}"
    return DamagedOutcome(case, message, problem)


# -- fuzzing: one check per kind of input ---------------------------------------------------------

@dataclass
class FuzzTally:
    """Generated cases of one kind: how many ran, were rejected, and any that were not clear."""

    kind: str
    cases: int = 0
    rejected: int = 0
    tracebacks: int = 0
    unclear: list[str] = field(default_factory=list)

    def record(self, rejected: bool, problem: str | None) -> None:
        self.cases += 1
        self.rejected += rejected
        if problem is not None:
            self.tracebacks += problem.startswith("traceback")
            self.unclear.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "cases": self.cases, "rejected": self.rejected, "tracebacks": self.tracebacks,
                "unclear": len(self.unclear), "examples": self.unclear[:3]}


class FuzzBench:
    """A scratch directory with a migrated database, a bundle and a results file, and one check
    per kind of input. A check runs the input through the CLI in this process; a rejection must
    be a clear error (:func:`clear_error`) and leave the database as it was."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.db = directory / "fuzz.db"
        shutil.copyfile(template_database(directory), self.db)
        self.url = sqlite_url(self.db)
        self.bundle, self.valid_manifest = tiny_bundle(directory, "fuzz-bundle")
        self.results = results_file(directory / "fuzz-results.jsonl", 2)
        self.tallies: dict[str, FuzzTally] = {}
        from explorer.db import open_database

        open_database()  # the user's database exists before the first input: its one-time note is no error line

    def tally(self, kind: str) -> FuzzTally:
        return self.tallies.setdefault(kind, FuzzTally(kind))

    def _judge(self, kind: str, argv: Sequence[Any], expected: Sequence[str], *, accepted: Sequence[int] = (0,),
               valid: bool | None = None, clear: Callable[[CliOutcome], str | None] | None = None) -> str | None:
        """Run ``argv``; an exit code in ``accepted`` is an accepted input (a problem if ``valid``
        is False), any other a rejection that ``clear`` (default :func:`clear_error`) judges."""
        before = fingerprint(self.url)
        outcome = call_cli(argv)
        if outcome.traceback is not None:
            problem = f"traceback: {argv!r:.200}: {outcome.traceback.strip().splitlines()[-1]}"
        elif outcome.code in accepted:
            problem = None if valid is not False else f"accepted {argv!r:.200}"
        else:
            problem = (clear or (lambda o: clear_error(o.code, o.err, expected=expected)))(outcome)
            if problem is None and fingerprint(self.url) != before:
                problem = f"rejected but the database changed: {argv!r:.200}"
        self.tally(kind).record(outcome.code not in accepted, problem)
        return problem

    def config(self, case: tuple[str, Any]) -> str | None:
        """A config JSON file of one family (``explorer space show FILE``)."""
        _, knobs = case
        path = self.directory / "config.json"
        path.write_text(json.dumps(knobs, allow_nan=True))
        return self._judge("config JSON", ["space", "show", path], ("allowed",))

    def budget(self, text: str) -> str | None:
        """A latency budget; valid ones are only parsed (a search per case would take seconds)."""
        from explorer.search import parse_budget
        from explorer.search.budget import BudgetError

        try:
            parse_budget(text)
        except BudgetError:
            return self._judge("budget", ["search", "--device", "raspi5", "--budget", text, "--db", self.db],
                               ("budget",), valid=False)
        self.tally("budget").record(False, None)
        return None

    def device(self, name: str) -> str | None:
        """A device name (``explorer measurements list --device NAME``)."""
        return self._judge("device name", ["measurements", "list", "--device", name, "--db", self.db],
                           ("device",))

    def profile(self, data: Any) -> str | None:
        """A device profile file (``explorer devices add --file``)."""
        path = self.directory / "profile.json"
        path.write_text(json.dumps(data, allow_nan=True))
        return self._judge("device profile", ["devices", "add", "--file", path, "--db", self.db], ("allowed",))

    def ingest_line(self, line: str) -> str | None:
        """One result line (``explorer ingest``): a bad line is reported by its number and
        skipped, exit status 1."""
        path = self.directory / "line.jsonl"
        path.write_text(line + "\n")

        def skipped(outcome: CliOutcome) -> str | None:
            lines = outcome.err.strip().splitlines()
            if outcome.code != 1 or len(lines) != 1 or ":1: skipped:" not in lines[0]:
                return f"exit {outcome.code}, {len(lines)} lines: {outcome.err[:300]!r}"
            return None

        return self._judge("ingest line", ["ingest", path, "--db", self.db], (), clear=skipped)

    def result_row(self, case: tuple[dict[str, Any], str]) -> str | None:
        """One accuracy row as CSV or JSON lines (``explorer results import``); accepted rows are
        removed again so that the surrogate is never refitted on fuzz."""
        row, kind = case
        path = self.directory / f"row.{kind}"
        path.write_text(result_file_text([row], kind))
        problem = self._judge("results row", ["results", "import", path, "--db", self.db], ("field",))
        engine = sa.create_engine(self.url)
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM accuracy_results"))
        engine.dispose()
        return problem

    def manifest(self, data: Any) -> str | None:
        """A bundle manifest (``explorer ingest RESULTS --bundle DIR``)."""
        (self.bundle / "manifest.json").write_text(json.dumps(data, allow_nan=True, default=str))
        return self._judge("bundle manifest", ["ingest", self.results, "--bundle", self.bundle, "--db", self.db],
                           ("manifest",), accepted=(0, 1))


def fuzz_targets(bench: FuzzBench) -> dict[str, tuple[st.SearchStrategy, Callable[[Any], str | None]]]:
    """Kind of input -> (its Hypothesis strategy, the check of ``bench`` it goes through)."""
    return {
        "config JSON": (config_dicts(), bench.config),
        "budget": (budgets(), bench.budget),
        "device name": (DEVICE_NAMES, bench.device),
        "device profile": (device_profiles(), bench.profile),
        "ingest line": (ingest_lines(), bench.ingest_line),
        "results row": (st.tuples(result_rows(), st.sampled_from(["csv", "jsonl"])), bench.result_row),
        "bundle manifest": (manifests(bench.valid_manifest), bench.manifest),
    }


def run_fuzz(check: Callable[[Any], str | None], strategy: st.SearchStrategy, max_examples: int, *,
             seed: int = 0) -> None:
    """``check`` on ``max_examples`` generated inputs (Hypothesis, reproducible by ``seed``);
    the first problem fails (and is shrunk to a small example)."""
    from hypothesis import HealthCheck, given, seed as hypothesis_seed, settings

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value: Any) -> None:
        problem = check(value)
        assert problem is None, problem

    prop()


# -- concurrency --------------------------------------------------------------------------------

def search_database(url: str) -> None:
    """Prepare ``url`` for ``explorer search --device raspi5``: the published measurements and
    the raspi5 predictor made from them (the shipped file has them; a new server does not)."""
    from explorer.db import open_database
    from explorer.devices import load_published
    from predictors import train_predictor

    database = open_database(url)
    with database.session() as session:
        load_published(session)
    train_predictor(database, "raspi5")
    database.close()


@dataclass(frozen=True)
class ConcurrencyOutcome:
    """Six writers on one database at once: their exit codes, how many said the database was
    locked, and the rows each kind of work should have left against those found."""

    database: str
    exit_codes: dict[str, int]
    locked: int
    expected: dict[str, int]
    found: dict[str, int]
    errors: dict[str, str]

    @property
    def lost(self) -> int:
        return sum(max(self.expected[k] - self.found[k], 0) for k in self.expected)

    @property
    def ok(self) -> bool:
        return not self.locked and not self.lost and self.found == self.expected and not any(self.exit_codes.values())

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "exit_codes": self.exit_codes, "database_is_locked": self.locked,
                "expected": self.expected, "found": self.found, "lost": self.lost, "errors": self.errors}


def concurrent_writers(url: str, storage: str, directory: Path, *, lines: int = 30, results: int = 20,
                       trials: int = 48) -> ConcurrencyOutcome:
    """Four processes writing to ``url`` (a measurement campaign, two ingests, a results import)
    while ``explorer search --workers 2`` runs on it with its study in ``storage``."""
    names = directory / "names.txt"
    names.write_text("conv20-c24\ntoy-conv-1\nfused-mbconv-c16\n")
    commands = {
        "measure": ["measure", "--device", "local", "--sampler", "file", "--file", names, *QUICK_MEASURE,
                    "--json", "--db", url],
        "ingest A": ["ingest", results_file(directory / "a.jsonl", lines), "--json", "--db", url],
        "ingest B": ["ingest", results_file(directory / "b.jsonl", lines, first_minute=10_000), "--json",
                     "--db", url],
        "results import": ["results", "import", accuracy_file(directory / "acc.csv", results, "concurrent"),
                           "--json", "--db", url],
        "search": ["search", "--device", "raspi5", "--budget", "40ms", "--objective", "params", "--trials",
                   str(trials), "--workers", "2", "--study", "concurrent", "--no-dashboard", "--json", "--db", url,
                   "--storage", storage],
    }
    processes = {name: subprocess.Popen([*EXPLORER, *map(str, argv)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=child_env())
                 for name, argv in commands.items()}
    errs = {name: process.communicate(timeout=900)[1] for name, process in processes.items()}
    found = {
        "measurements": len(_rows(url, "SELECT id FROM measurements WHERE provenance = 'measured'")),
        "accuracy results": len(_rows(url, "SELECT id FROM accuracy_results WHERE source = 'concurrent'")),
        "search trials": len(completed_trials(storage, "concurrent")),
    }
    return ConcurrencyOutcome(
        url.split("@")[-1], {name: p.returncode for name, p in processes.items()},
        sum("database is locked" in err for err in errs.values()),
        {"measurements": 3 + 2 * lines, "accuracy results": results, "search trials": trials}, found,
        {name: err.strip()[-300:] for name, err in errs.items() if processes[name].returncode})
