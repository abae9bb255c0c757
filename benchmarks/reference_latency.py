"""How far a device's latency predictor, trained on our four spaces, carries to the published
reference networks (MobileNets, EfficientNets, FastViT, ... built by timm): each network measured
on the device (``explorer measure --space reference --device D``) against the device predictor's
prediction of it, with MAPE, Spearman's rho and the coverage of the predicted intervals.

    python benchmarks/reference_latency.py --device dev-xeon-2c-ort [--db measurements.db] [--json out.json]

The reference networks are out of the spaces the predictor was fitted on; a prediction of one is
shown (`explorer search`) only beside this figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from scipy import stats  # noqa: E402

from explorer.architectures import config_from_dict  # noqa: E402
from explorer.db import Architecture, open_database  # noqa: E402
from explorer.space import reference_within_budget  # noqa: E402
from predictors import load_predictor  # noqa: E402


def evaluate(db, device: str) -> dict:
    """Measured against predicted latency of every reference network measured on ``device``."""
    measured = reference_within_budget(db, device, float("inf"))["within_budget"]
    with db.session() as session:
        configs = [config_from_dict(session.get(Architecture, row["arch_id"]).config_json) for row in measured]
    predictor = load_predictor(db, device)
    median, low, high = predictor.predict(configs)
    truth = np.array([row["latency_ms"] for row in measured])
    rows = [{"name": row["name"], "measured_ms": float(t), "predicted_ms": float(m), "interval_ms": [float(a), float(b)],
             "error_pct": float(100 * (m - t) / t), "covered": bool(a <= t <= b)}
            for row, t, m, a, b in zip(measured, truth, median, low, high)]
    summary = {"device": device, "predictor": predictor.name, "n": len(rows)}
    if rows:
        summary |= {"mape_pct": float(np.mean([abs(r["error_pct"]) for r in rows])),
                    "median_ape_pct": float(np.median([abs(r["error_pct"]) for r in rows])),
                    "spearman": float(stats.spearmanr(median, truth).statistic) if len(rows) > 2 else None,
                    "interval_coverage": float(np.mean([r["covered"] for r in rows]))}
    return summary | {"networks": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--db", default=None, help="database (default: your own)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = evaluate(open_database(args.db), args.device)
    console = Console()
    table = Table(title=f"reference networks on {args.device}: measured vs predicted by {result['predictor']}")
    for column in ("network", "measured ms", "predicted ms", "~90 % interval", "error %", "covered"):
        table.add_column(column)
    for row in result["networks"]:
        table.add_row(row["name"], f"{row['measured_ms']:.2f}", f"{row['predicted_ms']:.2f}",
                      f"{row['interval_ms'][0]:.2f}-{row['interval_ms'][1]:.2f}", f"{row['error_pct']:+.1f}",
                      "yes" if row["covered"] else "no")
    console.print(table)
    if result["n"]:
        console.print(f"n={result['n']}: MAPE {result['mape_pct']:.1f} % (median {result['median_ape_pct']:.1f} %), "
                      f"Spearman {result['spearman']:.3f}, intervals cover {result['interval_coverage']:.0%}")
    else:
        console.print(f"no reference network is measured on {args.device}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
