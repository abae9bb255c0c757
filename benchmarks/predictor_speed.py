"""Batched latency prediction speed, feature computation included, on one core.

Three workloads of ``--n`` configs each:
- cold: fresh random configs whose blocks were never seen (every op-table block is built);
- search: mutations of a population of 200 configs (what an evolutionary or TPE search asks);
- repeat: the same configs again (re-ranking a candidate pool).
The predictor computes features once per distinct config and runs the model once per distinct
config of a batch (a search's mutations repeat configs), as ``LatencyPredictor.predict`` does.
A fresh ``LatencyPredictor`` (the default kind for a measured device, trained on 500 configs with
latencies from a known cost model; the speed does not depend on the data) serves each repetition,
so its caches start empty. Single prediction: one fresh mutated config per call, the median call. Rates are per
CPU-second of this process (``time.process_time``; on a shared machine the wall clock mostly
measures the neighbours) and per wall-clock second; medians of ``--repeats`` runs.

    python benchmarks/predictor_speed.py [--n 20000] [--repeats 3] [--kind xgboost-ridge]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from predictors.features import OpFeaturizer  # noqa: E402
from predictors.fewshot import GENERIC_COEFFICIENTS, CostModel  # noqa: E402
from predictors.latency import DEFAULT_KIND, KINDS, LatencyPredictor, LatencyRegressor  # noqa: E402
from search_spaces.lowformer.sampling import mutate, sample_configs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kind", default=DEFAULT_KIND, choices=[k for k in KINDS if k not in ("fewshot", "transfer")])
    args = parser.parse_args()

    train = sample_configs(500, seed=0)
    X = OpFeaturizer().transform(train)
    estimator = LatencyRegressor(kind=args.kind).fit(X, CostModel(GENERIC_COEFFICIENTS).predict(X))
    rng = np.random.default_rng(1)
    population = sample_configs(200, seed=2)
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "search": [], "repeat": [], "model only": []}
    single: list[float] = []
    for r in range(args.repeats):
        predictor = LatencyPredictor(estimator, "synthetic", "ort", 1, 1, args.kind)
        workloads = {
            "cold": sample_configs(args.n, seed=100 + r),
            "search": [mutate(population[i % len(population)], rng) for i in range(args.n)],
        }
        workloads["repeat"] = workloads["search"]
        for name, configs in workloads.items():
            results[name].append(_rates(lambda: predictor.predict(configs), len(configs)))
        features = predictor.features(workloads["repeat"])
        results["model only"].append(_rates(lambda: estimator.predict_interval(features), len(features)))
        for config in (mutate(population[i], rng) for i in range(len(population))):
            start = time.perf_counter()
            predictor.predict([config])
            single.append(time.perf_counter() - start)
    print(f"{args.kind} predictor, batched prediction (median and interval), {args.n} configs, median of {args.repeats} runs")
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
