"""Cost per trial of the study storages Optuna tools can open, on a search-sized trial.

Each trial asks 40 categorical parameters (the LowFormer knob table's size), reports two values
and sets a constraint and three user attributes, as ``explorer search`` does; the objective itself
costs nothing, so the time is the storage's. Compared: this project's journal table in SQLite
(``explorer.search.open_storage``; what ``explorer dashboard --serve`` shows), Optuna's journal
file (``JournalFileBackend``) and Optuna's RDB storage in SQLite. Median of ``--repeats`` runs of
``--trials`` trials each, in milliseconds per trial of wall time, on fresh files.

    python benchmarks/study_storage.py [--trials 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.search import open_storage  # noqa: E402

KNOBS = 40
CHOICES = tuple(range(6))


def objective(trial: optuna.Trial) -> tuple[float, float]:
    values = [trial.suggest_categorical(f"knob{i}", CHOICES) for i in range(KNOBS)]
    for key in ("arch_id", "family", "space"):
        trial.set_user_attr(key, "x")
    trial.set_user_attr("constraint", [0.0])
    return float(sum(values)), float(values[0])


def run(storage, trials: int) -> float:
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - started) / trials * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    makers = {
        "journal table (explorer)": lambda d: open_storage(f"sqlite:///{d}/studies.db"),
        "Optuna journal file": lambda d: JournalStorage(JournalFileBackend(str(Path(d) / "journal.log"))),
        "Optuna RDB (SQLite)": lambda d: RDBStorage(f"sqlite:///{d}/rdb.db"),
    }
    results = {name: [] for name in makers}
    for _ in range(args.repeats):
        for name, make in makers.items():
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(run(make(tmp), args.trials))
    print(f"{KNOBS} categorical parameters per trial, {args.trials} trials, median of {args.repeats} runs")
    for name, values in results.items():
        print(f"  {name:26s} {statistics.median(values):7.2f} ms per trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
