"""Regenerate the shipped ``measurements.db`` from scratch (or resume an interrupted build).

Steps, each idempotent, so re-running the same command continues where it stopped:
1. schema and built-in device profiles (``open_database``);
2. the published measurements and ImageNet accuracies of the LowFormer papers, provenance
   ``published``;
3. every preset and ablation of every family measured on this host (``local``: ONNX Runtime CPU,
   batch 1, 2 threads);
4. ``--n`` random architectures of the LowFormer space (seeded), same settings;
5. ``--family-n`` random architectures of each other family (EfficientViT, FMViT, MCGA) and
   ``--mixers-n`` more LowFormer ones (seed ``--seed + 1``, which reach the attention types
   taken from those families), in interleaved chunks so that a change of the machine's state
   does not line up with one family;
6. ``--remeasure`` of step 4's architectures measured again (the newest measurement is the one
   predictors train on; the older ones stay and show the device's repeatability).

The study toy models are measured by ``explorer study``; run the four studies after this.
Campaign labels are the command line's defaults (``random-n600-seed0``, ...), so the same steps
typed as ``explorer measure`` commands resume this script's work and vice versa.

    python scripts/build_measurements_db.py                 # measurements.db at the repo root
    python scripts/build_measurements_db.py --n 50 --db /tmp/m.db --time-limit 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from sqlalchemy import select

from explorer.db import Architecture, Measurement, open_database
from explorer.devices import load_published
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from predictors.results import load_published_accuracies

console = Console()


def _chunks(n: int, step: int) -> list[int]:
    """Growing prefixes of a seeded sample: 30, 60, ..., n (each resumes the previous)."""
    return [*range(step, n, step), n] if n > 0 else []


def _campaign_configs(database, campaign: str, n: int) -> list[dict]:
    """The first ``n`` architectures a campaign measured, as configs."""
    with database.session() as session:
        rows = session.execute(select(Architecture.config_json).join(Measurement, Measurement.arch_id == Architecture.arch_id)
                               .where(Measurement.campaign == campaign).order_by(Measurement.id)).scalars().all()
    unique = list({json.dumps(r, sort_keys=True): r for r in rows}.values())
    return [{"space": "lowformer", **config} for config in unique[:n]]


def _run(database, spec: CampaignSpec) -> None:
    report = run_campaign(database, spec, show_progress=True)
    console.print(f"{report.campaign}: {report.measured} measured, {report.failed} failed, "
                  f"{report.skipped} already stored")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="URL or path (default: $EXPLORER_DB or measurements.db)")
    parser.add_argument("--n", type=int, default=600, help="random architectures to measure (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family-n", type=int, default=150, help="random architectures per other family")
    parser.add_argument("--mixers-n", type=int, default=120, help="more random LowFormer architectures")
    parser.add_argument("--remeasure", type=int, default=500, help="architectures of step 4 measured again")
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
    random_spec = CampaignSpec(device="local", n=args.n, sampler="random", seed=args.seed, protocol=protocol)
    specs = [CampaignSpec(device="local", n=None, sampler="presets", protocol=protocol), random_spec]
    specs += [spec for chunk in _chunks(args.family_n, 30) for spec in (
        CampaignSpec(device="local", space=family, n=chunk, seed=args.seed, protocol=protocol, drift_check=(),
                     name=f"{family}-random-n{args.family_n}-seed{args.seed}")
        for family in ("efficientvit", "fmvit", "mcga"))]
    specs += [CampaignSpec(device="local", n=chunk, seed=args.seed + 1, protocol=protocol, drift_check=(),
                           name=f"lowformer-mixers-random-n{args.mixers_n}-seed{args.seed + 1}")
              for chunk in _chunks(args.mixers_n, 40)]
    for spec in specs:
        _run(database, spec)
    if args.remeasure:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "remeasure.json"
            path.write_text(json.dumps(_campaign_configs(database, random_spec.label(), args.remeasure)))
            _run(database, CampaignSpec(device="local", n=None, sampler="file", file=str(path), force=True,
                                        name=f"random-n{args.remeasure}-seed{args.seed}-remeasure", protocol=protocol))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; finished work is saved, re-run the command to resume")
        sys.exit(130)
