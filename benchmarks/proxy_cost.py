"""Cost per architecture of every accuracy score on this machine (one torch thread).

    python benchmarks/proxy_cost.py --n 5 --microtask-n 1

Times fresh computations (no cache) on ``--n`` sampled LowFormer configs at 224 px (zero-cost
proxies at their default 64 px) and the micro-task on the first ``--microtask-n`` of them.
Prints the median seconds per architecture and the machine's load average, because on a shared
machine the absolute numbers move with the load; ratios within one run are the stable figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from explorer.db import open_database
from predictors.proxies import SCORES, ScoringOptions, score_values
from predictors.results import load_published_accuracies
from search_spaces.lowformer.sampling import sample_configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="architectures per score")
    parser.add_argument("--microtask-n", type=int, default=1, help="architectures trained on the micro-task")
    parser.add_argument("--seed", type=int, default=7, help="sampler seed")
    args = parser.parse_args()
    configs = sample_configs(args.n, args.seed)
    for config in configs:
        config.op_table()  # shared by every size score: warm it so that none pays for the others
    options = ScoringOptions(compute_expensive=True)
    with tempfile.TemporaryDirectory() as scratch:
        db = open_database(os.path.join(scratch, "cost.db"))  # empty cache: every value is computed
        load_published_accuracies(db)
        rows = []
        for name, spec in SCORES.items():
            subset = configs[:args.microtask_n] if spec.expensive else configs
            if not subset:
                continue
            started = time.perf_counter()
            values = score_values(db, subset, name, options)
            wall = (time.perf_counter() - started) / len(subset)
            rows.append((name, spec.label, len(subset), statistics.median(v.seconds for v in values), wall))
    macs_cost = max(rows[1][3], 1e-9)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch threads 1")
    print(f"{'score':<10} {'n':>3} {'median s/arch':>14} {'wall s/arch':>12} {'x macs':>12}  what it is")
    for name, label, n, median, wall in rows:
        print(f"{name:<10} {n:>3} {median:>14.4g} {wall:>12.4g} {median / macs_cost:>12.3g}  {label}")


if __name__ == "__main__":
    main()
