"""Op tables per second on one core, for random LowFormer configs.

"cold" starts with empty block caches (the first configs a process sees); "steady" is a fresh
batch of random configs after the caches have seen 20,000 others, which is what a search or a
predictor sees. Each figure is the median over --repeats batches.

    python benchmarks/optable_speed.py [--n 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from search_spaces.lowformer import optable
from search_spaces.lowformer.sampling import sample_configs


def _rate(configs) -> float:
    start = time.perf_counter()
    for config in configs:
        config.op_table().class_matrix()
    return len(configs) / (time.perf_counter() - start)


def _clear_caches() -> None:
    for fn in (optable.conv_block, optable.attention_block, optable.mlp_block, optable.head, optable.stem):
        fn.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cold, steady = [], []
    for repeat in range(args.repeats):
        _clear_caches()
        cold.append(_rate(sample_configs(args.n, seed=1000 + repeat)))
        steady.append(_rate(sample_configs(args.n, seed=2000 + repeat)))
    print(f"op tables per second on one core, {args.n} random configs per batch, median of {args.repeats}:")
    print(f"  cold caches:   {statistics.median(cold):,.0f}  (min {min(cold):,.0f}, max {max(cold):,.0f})")
    print(f"  steady state:  {statistics.median(steady):,.0f}  (min {min(steady):,.0f}, max {max(steady):,.0f})")


if __name__ == "__main__":
    main()
