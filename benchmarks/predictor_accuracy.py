"""Held-out accuracy of the latency predictors on every device of a database, beside the
MACs-only baseline and the device's own repeatability.

Devices with many measured architectures: XGBoost (the default), ridge and random forest,
``--folds``-fold cross-validation by architecture with at most ``--max-train`` training
architectures per fold, and a feature ablation of the default model. Devices with few points
(the published profiles): the few-shot cost-model calibration, leave-one-out, with the generic
prior and (if a measured device has enough points) the local device's cost model as prior.
``--synthetic N`` adds a device of N random architectures whose latencies come from a known cost
model with 3 % noise (a sanity check of the pipeline when no local measurements exist yet).

    python benchmarks/predictor_accuracy.py [--db measurements.db] [--synthetic 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import select  # noqa: E402

from explorer.db import Device, open_database  # noqa: E402
from predictors.features import FEATURE_NAMES, OpFeaturizer  # noqa: E402
from predictors.fewshot import CostModel  # noqa: E402
from predictors.store import (  # noqa: E402
    FEW_SHOT_LIMIT,
    Setup,
    TrainingDataError,
    TrainingSet,
    evaluate,
    load_training_set,
    local_prior,
)
from search_spaces.lowformer.sampling import sample_configs  # noqa: E402

console = Console(width=200)

#: feature groups removed in the ablation (column name prefixes)
ABLATIONS = {
    "without stage features": ("stage",),
    "without attention token counts": ("attention.",),
    "without bytes moved": tuple(n for n in FEATURE_NAMES if n.endswith(".bytes")),
    "without op counts": tuple(n for n in FEATURE_NAMES if n.endswith(".ops") or n.endswith(".convs")),
}
SYNTHETIC_COST = {"dense_macs": 4e-8, "depthwise_macs": 3e-7, "transposed_macs": 2e-7, "attention_macs": 1e-7,
                  "bytes": 5e-8, "compute_launches": 0.02, "elementwise_launches": 0.005}


def synthetic_set(n: int, seed: int = 0) -> TrainingSet:
    configs = tuple(sample_configs(n, seed=seed))
    X = OpFeaturizer().transform(configs)
    latency = CostModel(SYNTHETIC_COST).predict(X) * np.exp(np.random.default_rng(seed).normal(0, 0.03, n))
    return TrainingSet(Setup("synthetic", "cost-model", 1, None), configs, tuple(c.arch_id for c in configs),
                       latency, "synthetic", "absolute", None, None, (True,) * n)


def ablated(X: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    X = X.copy()
    X[:, [i for i, name in enumerate(FEATURE_NAMES) if name.startswith(prefixes)]] = 0.0
    return X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None)
    parser.add_argument("--synthetic", type=int, default=0, help="add a synthetic device of N architectures")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-train", type=int, default=500)
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--json", default=None, help="write all metrics here")
    args = parser.parse_args()

    db = open_database(args.db)
    sets: list[TrainingSet] = [synthetic_set(args.synthetic)] if args.synthetic else []
    with db.session() as session:
        for device in session.scalars(select(Device).order_by(Device.provenance, Device.name)):
            try:
                sets.append(load_training_set(session, device.name))
            except TrainingDataError:
                continue
        prior = local_prior(session)
    rows: list[dict] = []
    for data in sets:
        n = len(data.latency_ms)
        if n >= FEW_SHOT_LIMIT:
            X = OpFeaturizer().transform(data.configs)
            variants = [(kind, kind, X) for kind in ("xgboost", "ridge", "rf")]
            if not args.no_ablation:
                variants += [(f"xgboost {name}", "xgboost", ablated(X, p)) for name, p in ABLATIONS.items()]
            for label, kind, features in variants:
                console.print(f"{data.setup.device}: {label}")
                rows.append({"device": data.setup.device, "variant": label,
                             **evaluate(data, kind, args.folds, max_train=args.max_train, features=features)})
        else:
            for name, p in (("generic prior", None), ("local prior", prior)):
                if name == "local prior" and p is None:
                    continue
                rows.append({"device": data.setup.device, "variant": f"fewshot, {name}",
                             **evaluate(data, "fewshot", prior=p)})
    table = Table(title="held-out latency prediction (MACs-only baseline in brackets)")
    for column in ("device", "model", "n", "protocol", "MAPE %", "+-5 %", "+-10 %", "Spearman", "Kendall",
                   "coverage %", "repeatability"):
        table.add_column(column)
    for row in rows:
        m, b, rep = row["model"], row["macs_baseline"], row["repeatability"]
        table.add_row(row["device"], row["variant"], str(m["n"]),
                      "LOO" if row["protocol"] == "leave-one-out" else f"{args.folds}-fold", f"{m['mape']:.1f} ({b['mape']:.1f})", f"{m['within_5']:.0f} ({b['within_5']:.0f})",
                      f"{m['within_10']:.0f} ({b['within_10']:.0f})", f"{m['spearman']:.3f} ({b['spearman']:.3f})",
                      f"{m['kendall']:.3f} ({b['kendall']:.3f})", f"{m['coverage']:.0f}",
                      "-" if rep is None else f"{rep['median_deviation_pct']:.1f} % ({rep['architectures']} archs)")
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in row.items() if k != "points"} for row in rows], f, indent=1)


if __name__ == "__main__":
    main()
