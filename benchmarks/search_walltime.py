"""Wall time of the default search: ``explorer search --device raspi5 --budget 40ms`` (1,000 trials).

    python benchmarks/search_walltime.py [--device raspi5] [--trials 1000] [--db PATH]

Runs the real command twice in fresh processes on a fresh study storage: the first run fills the
score cache where the objective has one, the second shows the cached cost (target < 2 min).
Also times the objective on configs it has never seen, to state what an uncached run costs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time


from explorer.db import open_database
from explorer.search import ScoreObjective, load_latency_model
from search_spaces.lowformer.sampling import sample_configs


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="raspi5")
    parser.add_argument("--budget", default="40ms")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--objective", default="default")
    parser.add_argument("--fresh-configs", type=int, default=20, help="configs to time the uncached objective on")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    db_args = ["--db", args.db] if args.db else []
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for i in range(2):
            command = [sys.executable, "-c", "import sys; from explorer.cli import main; sys.exit(main())", "search", "--device", args.device, "--budget",
                       args.budget, "--trials", str(args.trials), "--objective", args.objective, "--storage",
                       f"sqlite:///{tmp}/run{i}.db", "--dashboard", f"{tmp}/run{i}.html", "--json", *db_args]
            runs.append(timed(command))
    print(f"`explorer search --device {args.device} --budget {args.budget} --trials {args.trials}` "
          f"(objective {args.objective}, dashboard included), fresh study each time:")
    print(f"  first run {runs[0]:.1f} s, second run (scores cached) {runs[1]:.1f} s; target < 120 s")
    db = open_database(args.db)
    objective = ScoreObjective(db, args.objective)
    latency = load_latency_model(db, args.device)
    configs = sample_configs(args.fresh_configs, seed=int(time.time()))
    start = time.perf_counter()
    latency.predict(configs)
    predict_s = (time.perf_counter() - start) / len(configs)
    start = time.perf_counter()
    objective.score(configs)
    score_s = (time.perf_counter() - start) / len(configs)
    print(f"  objective {objective.name} ({objective.label}) on {len(configs)} configs never seen: "
          f"{1e3 * score_s:.2f} ms per architecture; latency prediction {1e3 * predict_s:.2f} ms per architecture")
    print(f"  so an uncached {args.trials}-trial run adds about {args.trials * score_s:.0f} s of scoring "
          f"(estimate: trials x per-architecture cost; duplicates make it a little less)")


if __name__ == "__main__":
    main()
