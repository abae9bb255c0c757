"""Repeatability of the protocol: two campaigns over the same architectures.

Measures ``--n`` random LowFormer architectures twice (ONNX Runtime CPU, batch 1) and prints
the median and 95th percentile of the relative difference between the two medians of each
architecture, absolute and normalised by the interleaved reference model. A latency predictor
cannot be more accurate than these figures.

    python benchmarks/measure_repeatability.py --n 50
    python benchmarks/measure_repeatability.py --n 10 --resolution 128 --time-limit 1   # quick
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from explorer.db import Measurement, open_database
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign


def medians(database, campaign: str) -> dict[str, tuple[float, float]]:
    with database.session() as session:
        rows = session.scalars(sa.select(Measurement).where(Measurement.campaign == campaign,
                                                            Measurement.status == "ok"))
        return {r.arch_id: (r.median_ms, r.relative_to_reference) for r in rows}


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| relative to their mean."""
    return np.abs(a - b) / ((a + b) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=ProtocolSettings().time_limit_s)
    args = parser.parse_args()
    protocol = ProtocolSettings(time_limit_s=args.time_limit)
    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(Path(tmp) / "bench.db")
        load = os.getloadavg()[0]
        for name in ("first", "second"):
            run_campaign(database, CampaignSpec(device="local", n=args.n, seed=args.seed, resolution=args.resolution,
                                                threads=args.threads, force=True, name=name, drift_check=(),
                                                protocol=protocol), show_progress=True)
        first, second = medians(database, "first"), medians(database, "second")
        database.close()
    common = sorted(set(first) & set(second))
    a = np.array([first[k] for k in common], dtype=float)
    b = np.array([second[k] for k in common], dtype=float)
    print(f"architectures measured twice: {len(common)} (load average {load:.1f} -> {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    for label, column in (("absolute median", 0), ("reference-normalised", 1)):
        diff = relative_difference(a[:, column], b[:, column])
        print(f"{label:>22}: relative difference median {np.median(diff):.1%}, "
              f"p95 {np.percentile(diff, 95):.1%}")


if __name__ == "__main__":
    main()
