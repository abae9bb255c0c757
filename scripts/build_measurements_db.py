"""Regenerate the shipped ``measurements.db`` from scratch (or resume an interrupted build).

Steps, each idempotent, so re-running the same command continues where it stopped:
1. schema and built-in device profiles (``open_database``);
2. the published measurements and ImageNet accuracies, provenance ``published``;
3. every preset and ablation of every family measured on this host (``--device``, default
   ``local``: the profile of the host running the script, ONNX Runtime CPU, batch 1, the probed
   thread count: run ``explorer devices probe`` first);
4. ``--n`` random LowFormer architectures and ``--family-n`` of each other family (EfficientViT,
   FMViT, MCGA), seeded, in interleaved chunks of 30 so that a change of the machine's state does
   not line up with one family;
5. the four hardware studies (``explorer study ...``);
6. a repeat pass (``--remeasure``) of architectures of step 4, spread over the families, at a
   later time (the newest measurement is the one predictors train on; the older ones stay and
   show the device's repeatability).

Every measurement waits for a quiet machine (the protocol's guard); run nothing heavy beside it.
Campaign labels are the command line's defaults, so the same steps typed as ``explorer measure``
commands resume this script's work and vice versa.

    python scripts/build_measurements_db.py                 # measurements.db at the repo root
    python scripts/build_measurements_db.py --n 50 --family-n 10 --remeasure 20 --db /tmp/m.db
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from sqlalchemy import select

from explorer.db import Architecture, Measurement, open_database
from explorer.db.database import ENV_VAR, SHIPPED_DB_PATH
from explorer.devices import load_published
from explorer.measure import CampaignSpec, ProtocolSettings, run_campaign
from explorer.study import run_study
from predictors.results import load_published_accuracies

console = Console()


def _chunks(n: int, step: int) -> list[int]:
    """Growing prefixes of a seeded sample: 30, 60, ..., n (each resumes the previous)."""
    return [*range(step, n, step), n] if n > 0 else []


def _campaign_configs(database, campaigns: list[str], n: int) -> list[dict]:
    """The first ``n`` architectures measured by each of ``campaigns``, as configs."""
    configs = []
    for campaign in campaigns:
        with database.session() as session:
            rows = session.execute(select(Architecture.space, Architecture.config_json)
                                   .join(Measurement, Measurement.arch_id == Architecture.arch_id)
                                   .where(Measurement.campaign == campaign).order_by(Measurement.id)).all()
        unique = list({json.dumps(config, sort_keys=True): {"space": space, **config}
                       for space, config in rows}.values())
        configs += unique[:n]
    return configs


def _run(database, spec: CampaignSpec) -> None:
    report = run_campaign(database, spec, show_progress=True)
    console.print(f"{report.campaign}: {report.measured} measured, {report.failed} failed, "
                  f"{report.skipped} already stored")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get(ENV_VAR) or str(SHIPPED_DB_PATH),
                        help="URL or path (default: $EXPLORER_DB or the shipped measurements.db, which this "
                             "script builds)")
    parser.add_argument("--device", default="local", help="measured device of this host (default local)")
    parser.add_argument("--n", type=int, default=600, help="random LowFormer architectures (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family-n", type=int, default=150, help="random architectures per other family")
    parser.add_argument("--remeasure", type=int, default=250,
                        help="architectures measured again at the end, 40 %% LowFormer, 20 %% of each other family")
    parser.add_argument("--time-limit", type=float, default=ProtocolSettings().time_limit_s,
                        help="seconds of timing per architecture at most")
    parser.add_argument("--skip-local", action="store_true", help="only the schema, devices and published rows")
    parser.add_argument("--skip-studies", action="store_true", help="leave out the four hardware studies")
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
    device = args.device
    family_n = {"lowformer": args.n, **dict.fromkeys(("efficientvit", "fmvit", "mcga"), args.family_n)}
    labels = {family: f"{family}-random-n{n}-seed{args.seed}" for family, n in family_n.items()}
    specs = [CampaignSpec(device=device, n=None, sampler="presets", protocol=protocol)]
    for index in range(max(len(_chunks(n, 30)) for n in family_n.values())):
        for family, n in family_n.items():
            chunks = _chunks(n, 30)
            if index < len(chunks):
                specs.append(CampaignSpec(device=device, space=family, n=chunks[index], seed=args.seed,
                                          protocol=protocol, drift_check=(), name=labels[family]))
    for spec in specs:
        _run(database, spec)
    if not args.skip_studies:
        for kind in ("depthwise", "fused-mbconv", "resolution", "attention"):
            result = run_study(kind, device, database, show_progress=True)
            console.print(f"study {kind}: {len(result.rows)} rows")
    if args.remeasure:
        shares = {"lowformer": 0.4, "efficientvit": 0.2, "fmvit": 0.2, "mcga": 0.2}
        configs = [c for family, share in shares.items()
                   for c in _campaign_configs(database, [labels[family]], round(args.remeasure * share))]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "remeasure.json"
            path.write_text(json.dumps(configs))
            _run(database, CampaignSpec(device=device, n=None, sampler="file", file=str(path), force=True,
                                        name=f"repeat-n{args.remeasure}-seed{args.seed}", protocol=protocol))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; finished work is saved, re-run the command to resume")
        sys.exit(130)
