"""Reliability figures: faults injected, bad input fuzzed, damaged files, concurrent writers.

* faults: ``explorer measure`` (20 trials), ``explorer search --workers 2`` with its study in
  SQLite and in PostgreSQL (10 each), ``explorer ingest`` and ``explorer results import`` (10
  each), each SIGKILLed at a random moment of its usual run time and run again; per fault: trials,
  results lost, results duplicated, failed integrity checks, runs that did not reach their count;
* fuzz: Hypothesis-generated config JSON of every family, budgets, device names and profiles,
  ingest lines, results rows and bundle manifests through the CLI (1,500 per kind); cases run,
  rejected, tracebacks, rejections that were not one clear line or changed the database;
* files: every damaged-file case with the message it gave;
* concurrency: a campaign, two ingests and a results import writing to one database while a
  two-worker search runs on it, on SQLite and on PostgreSQL; processes reporting "database is
  locked", rows lost.

PostgreSQL parts need ``EXPLORER_TEST_POSTGRES_URL`` or the Debian server binaries (as in the
tests); without either they are reported as skipped. Every database is a scratch copy; the
shipped ``measurements.db`` is never written.

    python benchmarks/reliability.py [--quick] [--only faults,fuzz,files,concurrency] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import reliability_support as support  # noqa: E402

PARTS = ("faults", "fuzz", "files", "concurrency")
#: trials per fault and generated cases per input kind: (full, --quick)
FAULT_TRIALS = {"measure": (20, 2), "search-sqlite": (10, 1), "search-postgresql": (10, 1), "ingest": (10, 2),
                "results": (10, 2)}
FUZZ_CASES = (1500, 40)
SEARCH_TRIALS = 400  # 200 per worker: four batches of 50 each, so a kill can land between them


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database (the tests' fixtures, called directly), or None without one."""
    import _pytest.outcomes

    import conftest

    server = conftest.postgres_server.__wrapped__()
    try:
        url = next(server)
    except _pytest.outcomes.Skipped:
        yield None
        return
    database = conftest.postgres_url.__wrapped__(url)
    try:
        yield next(database)
    finally:
        for generator in (database, server):
            with contextlib.suppress(StopIteration):
                next(generator)


def run_faults(directory: Path, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    names = directory / "names.txt"
    names.write_text("conv20-c24\ntoy-conv-1\nfused-mbconv-c16\nunfused-mbconv-c16\n")
    template, search = support.template_database(directory), support.search_template(directory)

    def fresh(source: Path, tag: str) -> Callable[[int], str]:
        return lambda i: support.fresh_copy(source, directory / f"{tag}{i}.db")

    reports = []
    plans = [
        ("measure", support.measure_scenario(names, 4), fresh(template, "measure")),
        ("search-sqlite", support.search_scenario(lambda url: url.replace(".db", "-studies.db"), SEARCH_TRIALS),
         fresh(search, "search")),
        ("search-postgresql", None, fresh(search, "pgsearch")),
        ("ingest", support.ingest_scenario(support.results_file(directory / "r.jsonl", 300), 300),
         fresh(template, "ingest")),
        ("results", support.results_scenario(support.accuracy_file(directory / "a.csv", 40), 40),
         fresh(template, "results")),
    ]
    for seed, (key, scenario, databases) in enumerate(plans):
        trials = FAULT_TRIALS[key][quick]
        with contextlib.ExitStack() as stack:
            if scenario is None:
                url = stack.enter_context(postgres_database())
                if url is None:
                    reports.append({"fault": "explorer search --workers 2 (PostgreSQL)", "skipped": "no PostgreSQL"})
                    continue
                scenario = support.search_scenario(lambda _: url, SEARCH_TRIALS)
            name = f"{scenario.name} ({'PostgreSQL' if key == 'search-postgresql' else 'SQLite'})" \
                if key.startswith("search") else scenario.name
            task = progress.add_task(f"faults: {name}", total=trials)
            report = support.FaultReport(name)
            support.fault_trials(scenario, databases, trials, seed=seed, report=report,
                                 on_trial=lambda r: progress.advance(task))
            reports.append(report.to_dict())
    return reports


def run_fuzz(directory: Path, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    bench = support.FuzzBench(directory)
    cases = FUZZ_CASES[quick]
    for kind, (strategy, check) in support.fuzz_targets(bench).items():
        task = progress.add_task(f"fuzz: {kind}", total=cases)

        def counted(value: Any, check=check, task=task) -> str | None:
            progress.advance(task)
            check(value)
            return None  # every case is tallied; the run goes on past a problem to count them all

        support.run_fuzz(counted, strategy, cases)
    return [tally.to_dict() for tally in bench.tallies.values()]


def run_files(directory: Path, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    task = progress.add_task("damaged files", total=len(support.DAMAGED_FILES))
    outcomes = []
    for index, case in enumerate(support.DAMAGED_FILES):
        case_dir = directory / f"case{index}"
        case_dir.mkdir()
        outcomes.append(support.check_damaged(case, case_dir).to_dict())
        progress.advance(task)
    return outcomes


def run_concurrency(directory: Path, quick: bool, progress: Progress) -> list[dict[str, Any]]:
    task = progress.add_task("concurrency", total=2)
    sqlite_dir = directory / "sqlite"
    sqlite_dir.mkdir()
    url = support.fresh_copy(support.search_template(directory), sqlite_dir / "shared.db")
    outcomes = [support.concurrent_writers(url, url, sqlite_dir).to_dict()]
    progress.advance(task)
    with postgres_database() as pg:
        if pg is None:
            outcomes.append({"database": "PostgreSQL", "skipped": "no PostgreSQL"})
        else:
            pg_dir = directory / "postgresql"
            pg_dir.mkdir()
            support.search_database(pg)
            outcomes.append(support.concurrent_writers(pg, pg, pg_dir).to_dict())
    progress.advance(task)
    return outcomes


RUNNERS = {"faults": run_faults, "fuzz": run_fuzz, "files": run_files, "concurrency": run_concurrency}


def print_report(report: dict[str, Any], console: Console) -> None:
    if "faults" in report:
        table = Table("fault (SIGKILL at a random moment, then run again)", "trials", "lost", "duplicated",
                      "integrity check", "reached its count", "killed with work done",
                      title="Fault injection")
        for r in report["faults"]:
            if "skipped" in r:
                table.add_row(r["fault"], "skipped", r["skipped"], "", "", "", "")
                continue
            table.add_row(r["fault"], str(r["trials"]), str(r["lost"]), str(r["duplicated"]),
                          f"{r['trials'] - r['integrity_failures']}/{r['trials']} ok",
                          f"{r['trials'] - r['incomplete']}/{r['trials']}", str(r["killed_with_work_done"]))
        console.print(table)
    if "fuzz" in report:
        table = Table("input (Hypothesis)", "cases", "rejected", "tracebacks", "unclear rejections", title="Fuzzing")
        for r in report["fuzz"]:
            table.add_row(r["kind"], f"{r['cases']:,}", f"{r['rejected']:,}", str(r["tracebacks"]), str(r["unclear"]))
        total = sum(r["cases"] for r in report["fuzz"])
        table.add_row("all", f"{total:,}", f"{sum(r['rejected'] for r in report['fuzz']):,}",
                      str(sum(r["tracebacks"] for r in report["fuzz"])), str(sum(r["unclear"] for r in report["fuzz"])))
        console.print(table)
    if "files" in report:
        table = Table("damaged file", "clear error, file kept, rest usable", "message", title="Damaged files")
        for r in report["files"]:
            table.add_row(r["case"], "yes" if r["ok"] else f"NO: {r['problem']}", r["message"])
        console.print(table)
    if "concurrency" in report:
        table = Table("database", "processes failed", "'database is locked'", "rows lost", "found / expected",
                      title="Concurrency: campaign + 2 ingests + results import + 2 search workers")
        for r in report["concurrency"]:
            if "skipped" in r:
                table.add_row(r["database"], "skipped", r["skipped"], "", "")
                continue
            table.add_row(r["database"], str(sum(1 for c in r["exit_codes"].values() if c)),
                          str(r["database_is_locked"]), str(r["lost"]),
                          ", ".join(f"{k} {r['found'][k]}/{v}" for k, v in r["expected"].items()))
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few trials and cases per part (a smoke run)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default all): {', '.join(PARTS)}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"--only {unknown[0]!r}: allowed: {', '.join(PARTS)}")
    console = Console(stderr=args.json)
    report: dict[str, Any] = {"quick": args.quick}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="explorer-reliability-") as scratch, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True)) as progress:
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(Path(scratch) / ".hypothesis")  # nothing left in the working tree
        for part in parts:
            directory = Path(scratch) / part
            directory.mkdir()
            report[part] = RUNNERS[part](directory, args.quick, progress)
    report["seconds"] = round(time.monotonic() - start, 1)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(report, console)
        console.print(f"{report['seconds']:.0f} s")
    failed = any(not r.get("ok", True) for r in report.get("files", ())) or any(
        r.get("lost") or r.get("duplicated") or r.get("integrity_failures") or r.get("incomplete")
        for r in report.get("faults", ())) or any(r["tracebacks"] or r["unclear"] for r in report.get("fuzz", ()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
