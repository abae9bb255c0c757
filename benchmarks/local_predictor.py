"""The local device's latency predictor against held-out architectures of every family.

Trained on at most ``--max-train`` random architectures of the device's campaigns (drawn in
proportion to each family's share), scored on every other measured architecture of the device:
the rest of the random ones and the presets and ablations of every family (the hardware study's
toy models are neither trained on nor scored). Measurements taken
on a busy machine are left out, as in training. Printed beside: the MACs-only power law fitted on
the same training set, and the device's own repeatability (repeat pairs within +-10 %), which
bounds what any predictor can reach.

    python benchmarks/local_predictor.py                     # the shipped database, device local
    python benchmarks/local_predictor.py --device dev-epyc-2c-ort --max-train 500 --seeds 3
    python benchmarks/local_predictor.py --device dev-epyc-2c-ort --kinds xgboost,ridge,xgboost-ridge
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sqlalchemy import select  # noqa: E402

from explorer.architectures import FAMILIES  # noqa: E402
from explorer.db import Measurement, open_database  # noqa: E402
from predictors.features import OpFeaturizer  # noqa: E402
from predictors.latency import DEFAULT_KIND, interval_groups, make_estimator  # noqa: E402
from predictors.metrics import MacsBaseline, regression_metrics  # noqa: E402
from predictors.store import TARGETS as LATENCY_TARGETS  # noqa: E402
from predictors.store import load_training_set, repeatability, setup_rows, target_latencies  # noqa: E402

TARGETS = {"within_10": (">=", 95.0), "mape": ("<=", 4.0), "spearman": (">=", 0.98), "kendall": (">=", 0.90),
           "coverage": ("in", (88.0, 92.0))}


def random_ids(session, device: str) -> set[str]:
    """Architectures the device's random campaigns measured."""
    rows = session.execute(select(Measurement.arch_id, Measurement.campaign).where(
        Measurement.device == device, Measurement.status == "ok", Measurement.provenance == "measured")).all()
    return {key for key, campaign in rows if campaign and "random" in campaign}


def split(arch_ids, families, random: set[str], max_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pool = np.array([i for i, key in enumerate(arch_ids) if key in random])
    share = max_train / max(len(pool), 1)
    train = []
    for family in sorted(set(families[pool])):
        members = pool[families[pool] == family]
        train += list(rng.choice(members, size=min(len(members), int(round(share * len(members)))), replace=False))
    train = np.array(sorted(train[:max_train]))
    backbones = np.flatnonzero(np.isin(families, FAMILIES))  # the study's toy models are not held out
    test = np.setdiff1d(backbones, train)
    return train, test


def run(args) -> int:
    db = open_database(args.db)
    with db.session() as session:
        data = load_training_set(session, args.device)
        random = random_ids(session, data.setup.device)
    families = interval_groups(data.configs)  # the groups training calibrates intervals on
    X = OpFeaturizer().transform(data.configs)
    y = data.latency_ms
    print(f"device {data.setup.device} ({data.setup.backend}, batch {data.setup.batch}, {data.setup.threads} thread(s)); "
          f"target {data.target}; {len(y)} architectures, {len(random & set(data.arch_ids))} from random campaigns")
    with db.session() as session:
        history = setup_rows(session, data.setup)
    for target in LATENCY_TARGETS:
        if target != "absolute" and not all(m.relative_to_reference for m in history):
            continue
        rep = repeatability([m.arch_id for m in history], target_latencies(history, target)[0])
        if rep:
            print(f"device repeatability, {target}{' (training target)' if target == data.target else ''}: "
                  f"{rep['pairs_within_10']:.1f} % of {rep['pairs']} repeat pairs within +-10 % of each other, "
                  f"{rep['pairs_within_5']:.1f} % within +-5 %, median pair deviation {rep['median_pair_deviation_pct']:.2f} %")
    for kind in args.kinds.split(","):
        _score_kind(kind, args, data, X, y, families, random)
    return 0


def _score_kind(kind: str, args, data, X: np.ndarray, y: np.ndarray, families: np.ndarray, random: set[str]) -> None:
    runs = []
    pooled: dict[str, list[np.ndarray]] = {}
    for seed in range(args.seeds):
        train, test = split(data.arch_ids, families, random, args.max_train, seed)
        model = make_estimator(kind, random_state=seed).fit(X[train], y[train], sample_weight=data.weights[train],
                                                            groups=families[train])
        predicted, low, high = model.predict_interval(X[test], families[test])
        macs = MacsBaseline().fit(X[train], y[train]).predict(X[test])
        result = {"all": (regression_metrics(y[test], predicted, low, high), regression_metrics(y[test], macs))}
        for family in sorted(set(families[test])):
            held = families[test] == family
            if held.sum() >= 3:
                result[family] = (regression_metrics(y[test][held], predicted[held], low[held], high[held]),
                                  regression_metrics(y[test][held], macs[held]))
        for family in sorted(set(families[test])):
            held = families[test] == family
            pooled.setdefault(family, []).append(np.column_stack([y[test][held], predicted[held], low[held], high[held]]))
        runs.append((len(train), result))
    print(f"\n{kind}: trained on {runs[0][0]} random architectures, scored on {runs[0][1]['all'][0]['n']} held-out "
          f"architectures of the four families; median of {args.seeds} splits")
    header = f"{'held out':14s} {'n':>5s} {'within10%':>9s} {'MAPE%':>7s} {'Spearman':>9s} {'Kendall':>8s} {'cover%':>7s}   MACs-only: {'MAPE%':>6s} {'Spearman':>8s}"
    print(header)
    for key in runs[0][1]:
        rows = [r[key] for _, r in runs if key in r]
        med = {m: statistics.median(row[0][m] for row in rows) for m in ("n", "within_10", "mape", "spearman", "kendall", "coverage")}
        base = {m: statistics.median(row[1][m] for row in rows) for m in ("mape", "spearman")}
        print(f"{key:14s} {med['n']:5.0f} {med['within_10']:9.1f} {med['mape']:7.2f} {med['spearman']:9.3f} "
              f"{med['kendall']:8.3f} {med['coverage']:7.1f}   {'':10s} {base['mape']:6.2f} {base['spearman']:8.3f}")
        if key == "all":
            verdicts = [f"{metric} {med[metric]:.3g} ({'meets' if _meets(med[metric], op, target) else 'misses'} "
                        f"{op} {target})" for metric, (op, target) in TARGETS.items()]
            overall = "; ".join(verdicts)
    print(f"targets (all held-out): {overall}")
    print(f"per family, pooled over the {args.seeds} splits (an architecture counts once per split that holds it "
          "out); +- one binomial standard error of the coverage, an understatement since an architecture recurs "
          "across splits (a band of +-2 points needs about 900 independent points to resolve):")
    for family, parts in pooled.items():
        measured, predicted, low, high = np.concatenate(parts).T
        m = regression_metrics(measured, predicted, low, high)
        se = 100 * np.sqrt(0.9 * 0.1 / m["n"])
        verdict = "; ".join(f"{metric} {m[metric]:.3g} ({'meets' if _meets(m[metric], op, target) else 'misses'})"
                            for metric, (op, target) in TARGETS.items())
        print(f"  {family:14s} n {m['n']:4d}: {verdict}; coverage +- {se:.1f}")


def _meets(value: float, op: str, target) -> bool:
    return value >= target if op == ">=" else value <= target if op == "<=" else target[0] <= value <= target[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--device", default="local")
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--kinds", default=DEFAULT_KIND,
                        help=f"comma-separated predictor kinds to score (default {DEFAULT_KIND}, what training uses)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
