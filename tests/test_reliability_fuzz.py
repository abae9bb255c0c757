"""Property-based fuzzing of every kind of user input: config JSON of every family, budgets,
device names and profiles, ingest lines, results rows, bundle manifests. Each generated input
goes through the CLI in-process; a rejection is one line naming the field, a non-zero exit, no
traceback, and the database unchanged. ``benchmarks/reliability.py`` runs the same checks with
the full counts; a few real processes here prove the exit code and stderr of the installed tool."""

from __future__ import annotations

import json

import pytest

from reliability_support import FuzzBench, clear_error, fuzz_targets, run_explorer, run_fuzz

#: generated cases per kind here (the benchmark runs 1,500 per kind)
EXAMPLES = 60


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> FuzzBench:
    return FuzzBench(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("kind", ["config JSON", "budget", "device name", "device profile", "ingest line",
                                  "results row", "bundle manifest"])
def test_generated_input_is_accepted_or_clearly_rejected(bench, kind):
    strategy, check = fuzz_targets(bench)[kind]
    run_fuzz(check, strategy, EXAMPLES)
    tally = bench.tally(kind)
    assert tally.cases >= EXAMPLES and tally.tracebacks == 0 and not tally.unclear


@pytest.mark.parametrize(("argv", "expected"), [
    (["search", "--device", "raspi5", "--budget", "-5ms"], ("budget", "positive latency")),
    (["search", "--device", "no-such-board", "--budget", "40ms"], ("unknown device", "known devices")),
    (["space", "show", "{config}"], ("knob 'widths'", "allowed")),
    (["results", "import", "{csv}"], ("field 'top1'", "allowed: 0-100")),
    (["ingest", "{jsonl}"], ("skipped", "not JSON")),
])
def test_a_real_process_exits_non_zero_with_one_line(bench, tmp_path, argv, expected):
    (tmp_path / "c.json").write_text(json.dumps({"space": "lowformer", "widths": [1, 2]}))
    (tmp_path / "r.csv").write_text("name,dataset,top1\nlowformer-b1,imagenet,179\n")
    (tmp_path / "r.jsonl").write_text("{cut\n")
    files = {"{config}": tmp_path / "c.json", "{csv}": tmp_path / "r.csv", "{jsonl}": tmp_path / "r.jsonl"}
    database = [] if argv[0] == "space" else ["--db", bench.db]
    done = run_explorer([*(files.get(a, a) for a in argv), *database], timeout=300)
    err = done.stderr.replace(":1: skipped:", ": error: skipped:") if argv[0] == "ingest" else done.stderr
    assert clear_error(done.returncode, err, expected=expected) is None, done.stderr
