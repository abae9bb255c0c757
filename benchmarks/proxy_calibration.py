"""Calibration of the accuracy scores: published presets plus sampled architectures trained on
the generated micro-task.

    python benchmarks/proxy_calibration.py --db /tmp/proxy_calibration.db --n 32

Resumable: every micro-task and proxy value is cached in the database as soon as it is computed,
so an interrupted run continues where it stopped. Uses one CPU thread (the machine is shared).
Prints the calibration report (``explorer proxy report --db ...`` prints the same tables).
"""

from __future__ import annotations

import argparse
import json

import torch

from explorer import resolve
from explorer.cli import main as cli_main
from explorer.db import open_database
from predictors.calibration import calibration_report
from predictors.proxies import SCORES, ScoringOptions, score_values
from predictors.results import load_published_accuracies, published_accuracies
from search_spaces.lowformer.sampling import sample_configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database to fill (a scratch file is fine)")
    parser.add_argument("--n", type=int, default=32, help="sampled architectures trained on the micro-task")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed of those architectures")
    parser.add_argument("--no-presets", action="store_true", help="skip the micro-task on the published presets")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    db = open_database(args.db)
    load_published_accuracies(db)
    configs = sample_configs(args.n, args.seed)
    if not args.no_presets:
        configs += [resolve(name, resolution) for name, resolution, _, _ in published_accuracies()]
    options = ScoringOptions(compute_expensive=True)
    for name, spec in SCORES.items():
        if spec.cached:
            score_values(db, configs, name, options, progress=True)
    if args.json:
        print(json.dumps(calibration_report(db).to_dict(), indent=2, default=str))
    else:
        cli_main(["proxy", "report", "--db", args.db])


if __name__ == "__main__":
    main()
