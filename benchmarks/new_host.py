"""This host as a new device, the way a user brings one: a handful of measured calibration points,
a trained predictor, then fresh architectures it never saw, measured and compared.

The steps are the user's commands, run on a copy of the shipped database (``--db``, resumable:
a finished step is not repeated, and ``explorer measure`` skips what is stored):

1. ``explorer devices add --name NAME --this-host`` (a profile bound to this host),
2. ``explorer measure --device NAME --strategy calibrate --n K``,
3. ``explorer predictor train --device NAME``,
4. ``--per-family`` random architectures of each of the four families (``--seed``) predicted by
   the stored predictor and, beside, by the shipped development profile used as is
   (``--shipped``, another host's CPU) and by MACs alone fitted on the K points; the predictions
   are written to ``--state`` before anything is measured,
5. ``explorer measure --device NAME --strategy file`` of those architectures, then MAPE,
   Spearman's rho and the coverage of the ~90 % intervals against the measured medians under
   each latency target: as measured, and over the reference model timed beside each (on a
   machine whose speed drifts, what a predictor can reach; :func:`predictors.store.target_latencies`).

Timing rules apply: run it alone on the machine.

    python benchmarks/new_host.py [--k 10] [--per-family 3] [--seed 90210] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from explorer.architectures import FAMILIES, config_from_dict, flat_space  # noqa: E402
from explorer.db import open_database  # noqa: E402
from predictors import load_predictor  # noqa: E402
from predictors.features import OpFeaturizer  # noqa: E402
from predictors.metrics import MacsBaseline  # noqa: E402
from predictors.store import TARGETS, load_training_set, setup_rows, target_latencies  # noqa: E402
from search_spaces.base import arch_id  # noqa: E402

SHIPPED_PROFILE = "dev-epyc-2c-ort"
_SCRIPT = "import sys; from explorer.cli import main; sys.exit(main())"  # what the explorer script runs


def explorer(*args: str, db: Path) -> str:
    """Run one ``explorer`` command on ``db`` as a user would; its standard output."""
    done = subprocess.run([sys.executable, "-c", _SCRIPT, *args, "--db", str(db)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout


def fresh_configs(per_family: int, seed: int, resolution: int = 224) -> list:
    """``per_family`` random architectures of every family, drawn with ``seed``."""
    return [config for family in FAMILIES for config in flat_space(family).sample(per_family, seed, resolution)]


def predictions(db_path: Path, device: str, configs: list, shipped: str) -> dict:
    """Each method's (median, low, high) milliseconds for ``configs``, JSON-ready."""
    db = open_database(db_path)
    out = {}
    for name, profile in (("predictor", device), ("shipped profile as is", shipped)):
        predictor = load_predictor(db, profile)
        median, low, high = predictor.predict(configs)
        out[name] = {"by": predictor.name, "median": median.tolist(), "low": low.tolist(), "high": high.tolist()}
    with db.session() as session:
        data = load_training_set(session, device)
    featurizer = OpFeaturizer()
    macs = MacsBaseline().fit(featurizer.transform(data.configs), data.latency_ms, data.weights)
    out["MACs only"] = {"by": f"latency = a * MACs^b on the {len(data.configs)} calibration points",
                        "median": macs.predict(featurizer.transform(configs)).tolist()}
    return out


def measured(db_path: Path, device: str, fresh_campaign: str) -> dict[str, dict[str, float]]:
    """Per architecture, its newest good (not busy) measurement on ``device`` under each latency
    target of :func:`predictors.store.target_latencies`: ``absolute`` as measured; ``relative``
    and ``drift-corrected`` over the reference model timed beside it (in its own run, or the
    running median of its campaign's), in the reference scale of the calibration points. On a
    machine whose speed drifts, the last two are what a predictor can reach."""
    db = open_database(db_path)
    with db.session() as session:
        history = setup_rows(session, load_training_set(session, device).setup)
    calibration = [m for m in history if m.campaign != fresh_campaign]
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for target in TARGETS:
        latency, scale = target_latencies(history, target)
        factor = 1.0 if scale is None else target_latencies(calibration, target)[1] / scale
        for m, value in zip(history, latency):
            found[m.arch_id][target] = float(value * factor)
    return found


def score(method: dict, truth: np.ndarray) -> dict:
    median = np.asarray(method["median"])
    ape = 100 * np.abs(median - truth) / truth
    out = {"by": method["by"], "mape_pct": float(ape.mean()), "max_ape_pct": float(ape.max()),
           "spearman": float(stats.spearmanr(median, truth).statistic)}
    if "low" in method:
        out["coverage_pct"] = float(100 * np.mean((np.asarray(method["low"]) <= truth) & (truth <= np.asarray(method["high"]))))
    return out


def run(args: argparse.Namespace) -> dict:
    if not args.db.exists():
        args.db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "measurements.db", args.db)
    devices = json.loads(explorer("devices", "--json", db=args.db))
    if args.name not in {device["name"] for device in devices}:
        explorer("devices", "add", "--name", args.name, "--backend", "ort", "--threads", "1", "--this-host",
                 "--description", "this host as a new device (benchmarks/new_host.py)", db=args.db)
    state = json.loads(args.state.read_text()) if args.state.exists() else {}
    if "predictions" not in state:
        explorer("measure", "--device", args.name, "--strategy", "calibrate", "--n", str(args.k), db=args.db)
        state["trained"] = json.loads(explorer("predictor", "train", "--device", args.name, "--json", db=args.db))
        configs = fresh_configs(args.per_family, args.seed)
        state |= {"configs": [config.to_dict() | {"space": config.space} for config in configs],
                  "predictions": predictions(args.db, args.name, configs, args.shipped)}
        args.state.write_text(json.dumps(state, indent=1))
    configs = [config_from_dict(knobs) for knobs in state["configs"]]
    ids = [arch_id(config) for config in configs]
    listed = args.state.with_suffix(".configs.json")
    listed.write_text(json.dumps(state["configs"]))
    explorer("measure", "--device", args.name, "--strategy", "file", "--file", str(listed),
             "--campaign", f"fresh-seed{args.seed}", db=args.db)  # the campaign label measured() sets apart
    campaign = f"fresh-seed{args.seed}"
    found = measured(args.db, args.name, campaign)
    keep = [i for i, identity in enumerate(ids) if identity in found]
    result = {"device": args.name, "k": args.k, "fresh": len(keep), "families": [configs[i].space for i in keep],
              "fitted_target": load_predictor(open_database(args.db), args.name).metrics["target"]}
    for target in TARGETS:
        truth = np.array([found[ids[i]][target] for i in keep])
        result[target] = {name: score({key: ([value[i] for i in keep] if isinstance(value, list) else value)
                                       for key, value in method.items()}, truth)
                          for name, method in state["predictions"].items()}
    state["result"] = result
    args.state.write_text(json.dumps(state, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=ROOT / "out" / "new_host" / "measurements.db",
                        help="working database, a copy of the shipped one made on the first run")
    parser.add_argument("--state", type=Path, default=ROOT / "out" / "new_host" / "state.json",
                        help="the predictions made before measuring, and the result")
    parser.add_argument("--name", default="new-host-ort", help="the new profile's name")
    parser.add_argument("--k", type=int, default=10, help="calibration points (default 10)")
    parser.add_argument("--per-family", type=int, default=3, help="fresh architectures per family (default 3)")
    parser.add_argument("--seed", type=int, default=90210)
    parser.add_argument("--shipped", default=SHIPPED_PROFILE, help="the shipped profile set beside, used as is")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{args.name}: {result['fresh']} fresh architectures, predictor from {args.k} calibration points")
    for target in TARGETS:
        fitted = " (the predictor's target)" if target == result["fitted_target"] else ""
        print(f" against the fresh medians, {target}{fitted}")
        for name, figures in result[target].items():
            coverage = f", ~90 % intervals cover {figures['coverage_pct']:.0f} %" if "coverage_pct" in figures else ""
            print(f"  {name:24s} MAPE {figures['mape_pct']:5.1f} % (max {figures['max_ape_pct']:.1f} %), "
                  f"Spearman {figures['spearman']:.3f}{coverage}  [{figures['by']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
