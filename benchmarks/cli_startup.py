"""Start-up time of ``explorer --help`` and the light commands, and which heavy libraries they load.

Each command runs ``--runs`` times in a fresh interpreter running what the ``explorer`` script
runs on a temporary copy of the measurement database, output discarded, in turn with the others
(so a machine whose speed drifts slows them alike); the figures are the median wall and CPU
(user + system) time of those runs, interpreter start included, and the median ratio of each
run's wall time to the ``--help`` run beside it. On a shared machine the ratio and the CPU time
move less than the wall time. One more run of each reports the heavy libraries it imported
(``sys.modules`` at exit): the light commands need no torch, ``explorer predict`` of a preset no
scikit-learn either (predictors load only what predicting uses), and ``--help`` none of them.

    python benchmarks/cli_startup.py [--runs 5] [--db measurements.db] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIGHT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("devices",),
    ("space", "presets"),
    ("measurements", "list", "--device", "raspi5"),
    ("predict", "--device", "raspi5", "lowformer-b1"),
)
HEAVY_MODULES = ("torch", "onnx", "onnxruntime", "optuna", "xgboost", "sklearn", "scipy", "pandas", "plotly",
                 "numpy", "sqlalchemy", "alembic")
_SCRIPT = "import sys; from explorer.cli import main; sys.exit(main())"
# Runs the CLI in this interpreter, then prints the heavy modules it loaded as the last line.
_PROBE = """
import contextlib, io, json, sys
from explorer.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & set(%r))))
"""


def imported_heavy_modules(command: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """The heavy libraries (of ``HEAVY_MODULES``) that running ``explorer COMMAND`` imports."""
    done = subprocess.run([sys.executable, "-c", _PROBE % (HEAVY_MODULES,), *command], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_times(command: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    """Seconds of wall and CPU (user + system) time of one fresh run of ``explorer COMMAND``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _SCRIPT, *command], cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def database_env(db_copy: Path) -> dict[str, str]:
    """The environment that points the CLI at ``db_copy``, with Python's bytecode caches on as an
    installed package has them (the first run of each command, the import probe, writes them)."""
    env = {**os.environ, "EXPLORER_DB": str(db_copy)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh runs per command (default 5)")
    parser.add_argument("--db", type=Path, default=ROOT / "measurements.db",
                        help="database copied for the runs (default: the shipped measurements.db)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: give at least 1")
    if not args.db.is_file():
        parser.error(f"--db {args.db}: no such file")
    from rich.progress import Progress

    rows = []
    with tempfile.TemporaryDirectory() as tmp, Progress(transient=True) as progress:
        db_copy = Path(tmp) / "measurements.db"
        shutil.copyfile(args.db, db_copy)
        env = database_env(db_copy)
        task = progress.add_task("explorer start-up", total=len(LIGHT_COMMANDS) * (args.runs + 1))
        heavy = {}
        for command in LIGHT_COMMANDS:
            heavy[command] = imported_heavy_modules(command, env)
            progress.advance(task)
        times: dict[tuple[str, ...], list[tuple[float, float]]] = {command: [] for command in LIGHT_COMMANDS}
        for _ in range(args.runs):
            for command in LIGHT_COMMANDS:
                times[command].append(run_times(command, env))
                progress.advance(task)
        help_walls = [wall for wall, _ in times[LIGHT_COMMANDS[0]]]
        for command in LIGHT_COMMANDS:
            walls, cpus = [wall for wall, _ in times[command]], [cpu for _, cpu in times[command]]
            rows.append({"command": "explorer " + " ".join(command), "runs": args.runs,
                         "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                         "median_cpu_s": statistics.median(cpus),
                         "median_ratio_to_help": statistics.median(w / h for w, h in zip(walls, help_walls)),
                         "heavy_modules": heavy[command]})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        print(f"{row['command']:45s} median {row['median_s']:.3f} s (min {row['min_s']:.3f}, max "
              f"{row['max_s']:.3f}; {row['runs']} runs), CPU {row['median_cpu_s']:.3f} s, "
              f"{row['median_ratio_to_help']:.2f}x --help  imports: {', '.join(row['heavy_modules']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
