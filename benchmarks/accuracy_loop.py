"""The train-import loop of ``explorer suggest`` against a **synthetic** accuracy oracle.

The oracle is made up (nobody can train ImageNet networks here): a plausible depth-width-
resolution scaling law of the ImageNet error rate plus shape preferences and training noise,
hidden from the tool, which sees only the "training results" it is given. The loop starts from
the published architectures (their top-1 replaced by the oracle's), then each round suggests
``--k`` architectures within the latency budget, "trains" them (oracle value plus noise) and
imports the results. Reported: how many training runs each strategy needs until the best trained
architecture within the budget is within ``--tolerance`` points of the oracle's best one (over a
large candidate pool), for the tool's expected-improvement suggestions, random feasible picks,
and the largest #params within budget.

    python benchmarks/accuracy_loop.py                      # defaults: raspi5, 40 ms, 3 seeds
    python benchmarks/accuracy_loop.py --rounds 3 --seeds 1 --pool 300   # smoke size
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.architectures import resolve  # noqa: E402
from explorer.db import open_database  # noqa: E402
from explorer.search import load_latency_model  # noqa: E402
from explorer.search.suggest import candidate_pool, suggest_batch  # noqa: E402
from predictors.results import published_accuracies  # noqa: E402
from predictors.surrogate import fit_surrogate  # noqa: E402
from search_spaces.base import ArchConfig, arch_id  # noqa: E402

STRATEGIES = ("suggest", "random", "params")


ATTENTION_BONUS = {"lowtention": 0.6, "mhsa": 0.5, "relu-linear-ms": 0.45, "rlmhsa": 0.4, "relu-linear": 0.3,
                   "group-attention": 0.3, "none": 0.0}


def oracle(config: ArchConfig) -> float:
    """Synthetic ImageNet top-1 (%), from the knobs themselves (not the surrogate's features): the
    error rate falls as a power law of the number of blocks, #params and resolution; global
    attention in the deep stages and MLPs help a little, the unfused ablation hurts a little."""
    blocks = max(sum(getattr(config, "depths", (12,))), 1)
    params = config.op_table().params / 1e6
    error = 21.0 * (blocks / 12) ** -0.22 * (params / 10) ** -0.10 * (config.resolution / 224) ** -0.35
    bonus = 0.0
    for index in (3, 4):
        stage = getattr(config, f"stage{index}", None)
        if stage is not None and config.depths[index]:
            bonus += ATTENTION_BONUS.get(stage.attention, 0.0) + (0.2 if stage.mlp else 0.0)
    if getattr(config, "unfused", False):
        bonus -= 0.3
    return float(np.clip(100 - error + bonus, 0, 100))


def run(strategy: str, seed: int, args, latency, pool: list[ArchConfig], best_value: float) -> int | None:
    """Training runs until the best trained architecture in budget is within tolerance; None if
    the rounds run out."""
    rng = np.random.default_rng(seed)
    known = [resolve(name, res) for name, res, _, _ in published_accuracies()]
    known = list({arch_id(c): c for c in known}.values())
    top1 = [oracle(c) + rng.normal(0, args.noise) for c in known]
    feasible = [c for c, h in zip(pool, latency.predict(pool)[2]) if h <= args.budget]
    trained = 0
    for round_ in range(args.rounds):
        if strategy == "suggest":
            surrogate = fit_surrogate(known, top1, args.variant)
            candidates = candidate_pool(args.space, known, args.pool, seed * 1000 + round_, 224)
            picks = [s.config for s in suggest_batch(candidates, surrogate, latency, args.budget, args.k, known, top1)]
        elif strategy == "random":
            order = rng.permutation(len(feasible))
            seen = {arch_id(c) for c in known}
            picks = [feasible[i] for i in order if arch_id(feasible[i]) not in seen][: args.k]
        else:
            seen = {arch_id(c) for c in known}
            ranked = sorted((c for c in feasible if arch_id(c) not in seen),
                            key=lambda c: -c.op_table().params)
            picks = ranked[: args.k]
        if not picks:
            return None
        for config in picks:
            known.append(config)
            top1.append(oracle(config) + rng.normal(0, args.noise))
            trained += 1
        high = latency.predict(known)[2]
        best_trained = max((oracle(c) for c, h in zip(known, high) if h <= args.budget), default=-math.inf)
        if best_trained >= best_value - args.tolerance:
            return trained
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="database with the device's predictor (default: shipped)")
    parser.add_argument("--device", default="raspi5")
    parser.add_argument("--budget", type=float, default=40.0, help="ms")
    parser.add_argument("--space", default="lowformer")
    parser.add_argument("--k", type=int, default=2, help="architectures trained per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=1000, help="random candidates per suggestion round")
    parser.add_argument("--oracle-pool", type=int, default=4000, help="candidates over which the oracle's best is taken")
    parser.add_argument("--noise", type=float, default=0.15, help="training noise of the oracle (points)")
    parser.add_argument("--tolerance", type=float, default=0.3)
    parser.add_argument("--variant", default="gp-shape")
    args = parser.parse_args(argv)

    latency = load_latency_model(open_database(args.db), args.device)
    print("synthetic oracle (a made-up scaling law, not ImageNet results); "
          f"device {args.device}, budget {args.budget:g} ms, {args.k} trained per round")
    results = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        pool = candidate_pool(args.space, [], args.oracle_pool, 10_000 + seed, 224)
        feasible = [c for c, h in zip(pool, latency.predict(pool)[2]) if h <= args.budget]
        best_value = max(oracle(c) for c in feasible)
        for strategy in STRATEGIES:
            runs = run(strategy, seed, args, latency, pool, best_value)
            results[strategy].append(runs)
            print(f"seed {seed}: {strategy:8s} -> {runs if runs is not None else f'> {args.rounds * args.k}'} "
                  f"training runs (oracle best in budget {best_value:.2f} %)", flush=True)
    print("\nstrategy  median training runs to within "
          f"{args.tolerance} points (cap {args.rounds * args.k}; 'not reached' counted at the cap + 1)")
    for strategy, values in results.items():
        counted = [v if v is not None else args.rounds * args.k + 1 for v in values]
        reached = sum(v is not None for v in values)
        print(f"{strategy:8s}  {statistics.median(counted):g}  (reached in {reached}/{len(values)} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
