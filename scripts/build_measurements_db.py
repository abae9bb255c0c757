"""Regenerate the shipped ``measurements.db`` from scratch (or resume an interrupted build).

Steps, each idempotent, so re-running the same command continues where it stopped:
1. schema and built-in device profiles (``open_database``);
2. the published measurements and ImageNet accuracies of the LowFormer papers, provenance
   ``published``;
3. every LowFormer preset and ablation measured on this host (``local``: ONNX Runtime CPU,
   batch 1, 2 threads);
4. ``--n`` random architectures of the LowFormer space (seeded), same settings.

The study toy models are measured by ``explorer study``; run the four studies after this.

    python scripts/build_measurements_db.py                 # measurements.db at the repo root
    python scripts/build_measurements_db.py --n 50 --db /tmp/m.db --time-limit 1
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from explorer.db import open_database
from explorer.devices import load_published
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from predictors.results import load_published_accuracies

console = Console()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="URL or path (default: $EXPLORER_DB or measurements.db)")
    parser.add_argument("--n", type=int, default=600, help="random architectures to measure (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=ProtocolSettings().time_limit_s,
                        help="seconds of timing per architecture at most")
    parser.add_argument("--skip-local", action="store_true", help="only the schema, devices and published rows")
    args = parser.parse_args(argv)

    database = open_database(args.db)
    console.print(f"database: {database.url}")
    with database.session() as session:
        published = load_published(session)
    console.print(f"published measurements: {published.loaded} loaded, {published.existing} already stored")
    for message in published.skipped:
        console.print(f"[yellow]skipped[/yellow] {message}")
    console.print(f"published accuracies: {load_published_accuracies(database)} new")
    if args.skip_local:
        return 0
    protocol = ProtocolSettings(time_limit_s=args.time_limit)
    for spec in (CampaignSpec(device="local", n=None, sampler="presets", name="shipped-presets", protocol=protocol),
                 CampaignSpec(device="local", n=args.n, sampler="random", seed=args.seed,
                              name=f"shipped-random-seed{args.seed}", protocol=protocol)):
        report = run_campaign(database, spec, show_progress=True)
        console.print(f"{report.campaign}: {report.measured} measured, {report.failed} failed, "
                      f"{report.skipped} already stored")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; finished work is saved, re-run the command to resume")
        sys.exit(130)
