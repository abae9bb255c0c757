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
5. ``explorer measure --device NAME --strategy file`` of those architectures (``--repeat``: twice,
   the second campaign compared with the first), then MAPE,
   Spearman's rho and the coverage of the ~90 % intervals against the measured medians under
   each latency target: as measured, and over the reference model timed beside each (on a
   machine whose speed drifts, what a predictor can reach; :func:`predictors.store.target_latencies`).

Timing rules apply: run it alone on the machine.

    python benchmarks/new_host.py [--k 10] [--per-family 3] [--seed 90210] [--repeat] [--json]
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
from predictors.store import TARGETS, load_training_set, repeatability, setup_rows, target_latencies  # noqa: E402
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


def measured(db_path: Path, device: str, campaign: str) -> tuple[dict[str, dict[str, float]], dict[str, dict | None]]:
    """Per architecture, its newest good (not busy) measurement of ``campaign`` under each latency
    target of :func:`predictors.store.target_latencies`: ``absolute`` as measured; ``relative``
    and ``drift-corrected`` over the reference model timed beside it (in its own run, or the
    running median of its campaign's), in the reference scale of the calibration campaign. On a
    machine whose speed drifts, the last two are what a predictor can reach. Beside, how the
    device's repeated measurements agree under each target (:func:`predictors.store.repeatability`)."""
    db = open_database(db_path)
    with db.session() as session:
        history = setup_rows(session, load_training_set(session, device).setup)
    calibration = [m for m in history if m.campaign.startswith("calibrate")]
    found: dict[str, dict[str, float]] = defaultdict(dict)
    agreement = {}
    for target in TARGETS:
        latency, scale = target_latencies(history, target)
        factor = 1.0 if scale is None else target_latencies(calibration, target)[1] / scale
        for m, value in zip(history, latency):
            if m.campaign == campaign:
                found[m.arch_id][target] = float(value * factor)
        agreement[target] = repeatability([m.arch_id for m in history], latency)
    return found, agreement


def repeat_agreement(first: dict, second: dict, predicted: dict[str, float], target: str) -> dict[str, float]:
    """The fresh architectures measured twice: how far the two measurements lie apart (MAPE of
    the second against the first), and the predictor from each and from their mean, under ``target``."""
    ids = [i for i in predicted if i in first and i in second]
    a, b = (np.array([m[i][target] for i in ids]) for m in (first, second))
    p = np.array([predicted[i] for i in ids])
    mape = lambda truth, guess: float(100 * np.mean(np.abs(guess - truth) / truth))  # noqa: E731
    return {"n": len(ids), "second_vs_first_pct": mape(a, b), "spearman_first_second": float(stats.spearmanr(a, b).statistic),
            "predictor_vs_first_pct": mape(a, p), "predictor_vs_second_pct": mape(b, p),
            "predictor_vs_mean_pct": mape((a + b) / 2, p)}


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
    campaigns = [f"fresh-seed{args.seed}"] + ([f"fresh-seed{args.seed}-repeat"] if args.repeat else [])
    for campaign in campaigns:
        # the repeat measures again what the first campaign stored (a finished repeat is not redone)
        again = campaign != campaigns[0] and not set(ids) <= set(measured(args.db, args.name, campaign)[0])
        explorer("measure", "--device", args.name, "--strategy", "file", "--file", str(listed),
                 *(["--force"] if again else []), "--campaign", campaign, db=args.db)
    found, agreement = measured(args.db, args.name, campaigns[0])
    keep = [i for i, identity in enumerate(ids) if identity in found]
    predicted = state["predictions"]["predictor"]["median"]
    result = {"device": args.name, "k": args.k, "fresh": len(keep), "families": [configs[i].space for i in keep],
              "fitted_target": load_predictor(open_database(args.db), args.name).metrics["target"],
              "repeat_pairs": agreement,
              "architectures": [{"space": configs[i].space, "arch_id": ids[i], "predicted_ms": predicted[i],
                                 "measured_ms": found[ids[i]],
                                 "error_pct": {t: 100 * (predicted[i] / v - 1) for t, v in found[ids[i]].items()}}
                                for i in keep]}
    for target in TARGETS:
        truth = np.array([found[ids[i]][target] for i in keep])
        result[target] = {name: score({key: ([value[i] for i in keep] if isinstance(value, list) else value)
                                       for key, value in method.items()}, truth)
                          for name, method in state["predictions"].items()}
    if args.repeat:
        result["repeat"] = repeat_agreement(found, measured(args.db, args.name, campaigns[1])[0],
                                            dict(zip(ids, predicted)), result["fitted_target"])
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
    parser.add_argument("--repeat", action="store_true",
                        help="measure the fresh architectures a second time and say how far the two lie apart")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{args.name}: {result['fresh']} fresh architectures, predictor from {args.k} calibration points")
    print(" repeated measurements of the device, median pair deviation: " + ", ".join(
        f"{target} {rep['median_pair_deviation_pct']:.1f} % ({rep['pairs']} pairs)"
        for target, rep in result["repeat_pairs"].items() if rep))
    if "repeat" in result:
        r = result["repeat"]
        print(f" measured twice ({result['fitted_target']}): {r['second_vs_first_pct']:.1f} % apart (Spearman "
              f"{r['spearman_first_second']:.3f}); the predictor {r['predictor_vs_first_pct']:.1f} % from the first, "
              f"{r['predictor_vs_second_pct']:.1f} % from the second, {r['predictor_vs_mean_pct']:.1f} % from their mean")
    errors: dict[str, list[float]] = defaultdict(list)
    for row in result["architectures"]:
        errors[row["space"]].append(row["error_pct"][result["fitted_target"]])
    print(f" predictor's error by family ({result['fitted_target']}): " + ", ".join(
        f"{space} {min(values):+.0f} to {max(values):+.0f} %" for space, values in errors.items()))
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
