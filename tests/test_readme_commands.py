"""Every command the README and docs quote stays runnable: each benchmark script they name parses
its command line (``--help``), and each ``explorer`` subcommand they name exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(path.read_text() for path in DOCS)
SCRIPTS = sorted(set(re.findall(r"python (benchmarks/[a-z_]+\.py|scripts/[a-z_]+\.py)", TEXT)))
COMMANDS = sorted(set(re.findall(r"(?:`|^|/)explorer ([a-z]+)\b", TEXT, flags=re.MULTILINE)))


def test_docs_quote_scripts_and_commands():
    assert len(SCRIPTS) >= 5 and len(COMMANDS) >= 8


@pytest.mark.parametrize("script", SCRIPTS)
def test_quoted_script_runs(script):
    assert (ROOT / script).exists(), f"{script} is quoted in the docs but does not exist"
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_quoted_explorer_commands_exist():
    choices = build_parser()._subparsers._group_actions[0].choices
    missing = [command for command in COMMANDS if command not in choices]
    assert not missing, f"the docs quote explorer commands that do not exist: {missing}"


@pytest.mark.parametrize("line", sorted(set(re.findall(r"python (benchmarks/[a-z_]+\.py[^`\n]*)", TEXT))))
def test_quoted_benchmark_options_parse(line):
    """The options a quoted benchmark command uses are ones the script accepts."""
    script, *options = line.split()
    flags = [o for o in options if o.startswith("--")]
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    unknown = [flag for flag in flags if flag.split("=")[0] not in done.stdout]
    assert not unknown, f"{line}: options not accepted by the script: {unknown}"


def test_ci_runs_the_readme_test_command():
    """CI is what a user runs: `.ci/run` holds the README's test command, word for word."""
    ci = (ROOT / ".ci" / "run").read_text()
    command = ci[ci.index("bash scripts/setup.sh --test"):].strip()
    assert "-m serial" in command and command in (ROOT / "README.md").read_text()
