"""Hypervolume of NSGA-II and TPE against random search at equal trial counts (median over seeds).

    python benchmarks/search_hypervolume.py [--device raspi5] [--budget 40ms] [--trials 500] [--seeds 5]
        [--space lowformer|efficientvit|fmvit|mcga|all]

Every run starts a fresh study (the published models are enqueued in all of them alike). The
hypervolume is that of the feasible trials, with one reference point for all runs: the lowest
score seen in any run and the budget.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from explorer.db import database_url, open_database, resolve_device
from explorer.search import Evaluator, ModelSource, SearchSettings, parse_budget, run_search
from explorer.search.hypervolume import hypervolume
from explorer.search.study import evaluations, feasible


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="raspi5")
    parser.add_argument("--budget", default="40ms")
    parser.add_argument("--objective", default="default")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="random,nsga2,tpe")
    parser.add_argument("--space", default="lowformer")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    budget = parse_budget(args.budget)
    db = open_database(args.db)
    with db.session() as session:
        device = resolve_device(session, args.device).name
    source = ModelSource(database_url(args.db), device, args.objective)
    evaluator = Evaluator(*source())  # shared: evaluations are deterministic, the cache only saves time
    points: dict[str, list[list[tuple[float, float]]]] = {}
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in args.samplers.split(","):
            for seed in range(args.seeds):
                settings = SearchSettings(device, budget, evaluator.objective.name, args.trials, sampler, seed,
                                          study_name=f"{sampler}-{seed}", space=args.space)
                start = time.perf_counter()
                study = run_search(settings, f"sqlite:///{tmp}/{sampler}-{seed}.db", source, evaluator=evaluator)
                seconds.setdefault(sampler, []).append(time.perf_counter() - start)
                points.setdefault(sampler, []).append(
                    [(e.score, e.latency_ms) for t, e in evaluations(study) if feasible(t)])
    ref_score = min(s for runs in points.values() for run in runs for s, _ in run)
    print(f"space {args.space}, device {device}, budget {budget:g} ms, objective {evaluator.objective.name} "
          f"({evaluator.objective.label}), {args.trials} trials, {args.seeds} seeds; "
          f"reference point (score {ref_score:.4g}, {budget:g} ms)")
    medians = {}
    for sampler, runs in points.items():
        volumes = [hypervolume([s for s, _ in run], [lat for _, lat in run], ref_score, budget) for run in runs]
        medians[sampler] = statistics.median(volumes)
        print(f"{sampler:>7}: median hypervolume {medians[sampler]:.5g} (runs: "
              f"{', '.join(f'{v:.4g}' for v in volumes)}); median wall time {statistics.median(seconds[sampler]):.1f} s")
    if "random" in medians and medians["random"] > 0:
        for sampler, value in medians.items():
            print(f"{sampler:>7} / random: {value / medians['random']:.3f}")


if __name__ == "__main__":
    main()
