"""Architectures measured per hour with the default protocol (ONNX Runtime CPU, batch 1).

Measures ``--n`` random LowFormer architectures into a throwaway database and prints the rate,
the time per architecture and the machine's load (the rate depends on both). With ``--db`` and
``--campaign`` it reports the same figures for a campaign already stored (e.g. the shipped one).

    python benchmarks/measure_throughput.py --n 20
    python benchmarks/measure_throughput.py --db measurements.db --campaign shipped-random-seed0
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from explorer.db import Database, Measurement, open_database
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign


def report(database: Database, campaign: str) -> None:
    with database.session() as session:
        rows = list(session.scalars(sa.select(Measurement).where(Measurement.campaign == campaign,
                                                                 Measurement.provenance == "measured")))
    if not rows:
        raise SystemExit(f"no measurements of campaign {campaign!r} in {database.url}")
    work = [r for r in rows if "drift-check" not in r.flags]
    ok = [r for r in work if r.status == "ok"]
    elapsed = (max(r.ended_at for r in rows) - min(r.started_at for r in rows)).total_seconds()
    per_arch = np.array([(r.ended_at - r.started_at).total_seconds() for r in ok])
    loads = [r.host["load_before"]["loadavg"][0] for r in ok if r.host.get("load_before", {}).get("loadavg")]
    print(f"campaign {campaign}: {len(ok)} ok, {len(work) - len(ok)} failed, {len(rows) - len(work)} drift checks, "
          f"{elapsed:.0f} s wall clock")
    print(f"architectures per hour: {3600 * len(work) / elapsed:.0f}")
    print(f"seconds per architecture (build+export+timing): median {np.median(per_arch):.2f}, "
          f"p95 {np.percentile(per_arch, 95):.2f}")
    precise = np.mean([(r.ci_high_ms - r.ci_low_ms) / 2 <= 0.02 * r.median_ms for r in ok])
    print(f"timed runs per architecture: median {np.median([r.n_samples for r in ok]):.0f}; "
          f"CI of the median within +-2 %: {precise:.0%}")
    if loads:
        print(f"load average (1 min) during the campaign: median {np.median(loads):.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=ProtocolSettings().time_limit_s)
    parser.add_argument("--db", help="analyse a stored campaign in this database instead of measuring")
    parser.add_argument("--campaign", help="label of the stored campaign (with --db)")
    args = parser.parse_args()
    if args.db:
        report(open_database(args.db), args.campaign)
        return
    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(Path(tmp) / "bench.db")
        run_campaign(database, CampaignSpec(device="local", n=args.n, seed=args.seed, threads=args.threads,
                                            name="throughput", protocol=ProtocolSettings(time_limit_s=args.time_limit)),
                     show_progress=True)
        report(database, "throughput")
        database.close()


if __name__ == "__main__":
    main()
