"""Batched latency prediction speed, feature computation included, on one core.

Three workloads of ``--n`` configs each:
- cold: fresh random configs whose blocks were never seen (every op-table block is built);
- search: mutations of a population of 200 configs (what an evolutionary or TPE search asks);
- repeat: the same configs again (re-ranking a candidate pool).
The predictor computes features once per distinct config and runs the model once per distinct
config of a batch (a search's mutations repeat configs), as ``LatencyPredictor.predict`` does.
The model is the device's stored predictor (``--kind``: a stored kind other than the default),
the one a search uses: the size of its trees, and so its speed, depends on the data it was
trained on. A fresh ``LatencyPredictor`` of it serves each repetition, so its caches start
empty. Single prediction: one fresh mutated config per call, the median call. Rates are per
CPU-second of this process (``time.process_time``; on a shared machine the wall clock mostly
measures the neighbours) and per wall-clock second; medians of ``--repeats`` runs.

    python benchmarks/predictor_speed.py [--n 20000] [--repeats 3] [--device dev-epyc-2c-ort] [--kind xgboost]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from explorer.db import open_database  # noqa: E402
from predictors import load_predictor  # noqa: E402
from predictors.latency import LatencyPredictor, interval_groups  # noqa: E402
from search_spaces.lowformer.sampling import mutate, sample_configs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="dev-epyc-2c-ort")
    parser.add_argument("--kind", default=None, help="a stored predictor kind of the device (default: its default)")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()

    stored = load_predictor(open_database(args.db), args.device, args.kind)
    estimator = stored.estimator
    rng = np.random.default_rng(1)
    population = sample_configs(200, seed=2)
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "search": [], "repeat": [], "model only": []}
    single: list[float] = []
    for r in range(args.repeats):
        predictor = LatencyPredictor(estimator, stored.device, stored.backend, stored.batch, stored.threads,
                                     stored.kind)
        workloads = {
            "cold": sample_configs(args.n, seed=100 + r),
            "search": [mutate(population[i % len(population)], rng) for i in range(args.n)],
        }
        workloads["repeat"] = workloads["search"]
        for name, configs in workloads.items():
            results[name].append(_rates(lambda: predictor.predict(configs), len(configs)))
        features = predictor.features(workloads["repeat"])
        groups = interval_groups(workloads["repeat"])
        results["model only"].append(_rates(lambda: estimator.predict_interval(features, groups), len(features)))
        for config in (mutate(population[i], rng) for i in range(len(population))):
            start = time.perf_counter()
            predictor.predict([config])
            single.append(time.perf_counter() - start)
    print(f"{stored.name} predictor, batched prediction (median and interval), {args.n} configs, "
          f"median of {args.repeats} runs")
    print(f"  {'workload':11s} {'configs/CPU-s':>14s} {'configs/wall-s':>15s}")
    for name, rates in results.items():
        cpu, wall = np.median(rates, axis=0)
        print(f"  {name:11s} {cpu:14,.0f} {wall:15,.0f}")
    search = np.median(results["search"], axis=0)[0]
    print(f"target 100,000 configs/s: search workload at {search / 100_000:.2f}x the target")
    print(f"single prediction (fresh config, features included): median {1000 * np.median(single):.2f} ms, "
          f"p90 {1000 * np.quantile(single, 0.9):.2f} ms of {len(single)} calls; target <= 1 ms")


def _rates(run, n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


if __name__ == "__main__":
    main()
