"""``explorer predictor train|report`` and ``explorer predict``: per-device latency predictors.

Errors (unknown device or architecture, no predictor, too few measurements) are ``UserError``s
that ``explorer.cli.main`` prints with what to do about them.
"""

from __future__ import annotations

import argparse

from explorer.cli.common import add_db, add_json, console, print_json


#: ``predictors.latency.KINDS``, spelled out so that building the parser imports no model code
PREDICTOR_KINDS = ("xgboost", "ridge", "rf", "xgboost-ridge", "fewshot", "transfer", "macs")


def register(subparsers: argparse._SubParsersAction) -> None:
    predictor = subparsers.add_parser("predictor", help="train and inspect per-device latency predictors")
    commands = predictor.add_subparsers(dest="predictor_command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser("train", help="fit a predictor on the device's measurements and store it")
    train.add_argument("--device", required=True, help="device profile name or alias")
    train.add_argument("--kind", choices=PREDICTOR_KINDS, default=None,
                       help="model (default: below 40 measured architectures transfer from richly measured devices, "
                            "which weighs the fewshot model in, or fewshot without a source; else xgboost-ridge; "
                            "whichever of these, fewshot and macs (a * MACs^b) scores the lowest held-out MAPE)")
    train.add_argument("--no-default", dest="make_default", action="store_false",
                       help="store the predictor beside the device's default instead of replacing it (another "
                            "kind for transfers to choose from, or a comparison)")
    train.add_argument("--backend", default=None, help="only measurements of this backend")
    train.add_argument("--batch", type=int, default=None, help="only measurements at this batch size")
    train.add_argument("--threads", type=int, default=None, help="only measurements with this thread count")
    train.add_argument("--prior", choices=("generic", "local"), default="generic",
                       help="prior cost model of fewshot: generic, or fitted on the most-measured local device")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    train.add_argument("--seed", type=int, default=0)
    add_db(train)
    add_json(train)
    train.set_defaults(handler=_train)

    report = commands.add_parser("report", help="held-out metrics vs the MACs baseline; predicted-vs-measured plot")
    report.add_argument("--device", required=True, help="device profile name or alias")
    report.add_argument("-o", "--output", default=None, help="write a self-contained HTML page here")
    add_db(report)
    add_json(report)
    report.set_defaults(handler=_report)

    predict = subparsers.add_parser("predict", help="predicted latency of an architecture (not a measurement)")
    predict.add_argument("spec", metavar="NAME|CONFIG.json|ARCH_ID",
                         help="preset, toy model, config JSON file or arch id of the database (e.g. a suggestion's)")
    predict.add_argument("--device", required=True, help="device profile name or alias")
    predict.add_argument("--resolution", type=int, default=None, help="input resolution")
    add_db(predict)
    add_json(predict)
    predict.set_defaults(handler=_predict)


def _train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from explorer.db import open_database
    from predictors.store import train_predictor

    with Progress(TextColumn("evaluating on held-out folds"), BarColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=args.json) as progress:
        task = progress.add_task("folds", total=None)
        predictor = train_predictor(
            open_database(args.db), args.device, args.kind, backend=args.backend, batch=args.batch,
            threads=args.threads, folds=args.folds, seed=args.seed, prior=args.prior, make_default=args.make_default,
            on_fold=lambda done, total: progress.update(task, completed=done, total=total))
    metrics = predictor.metrics
    if args.json:
        print_json({"predictor": predictor.name, "predictor_id": predictor.predictor_id, "device": predictor.device,
                    "kind": predictor.kind, "training_architectures": len(predictor.training_arch_ids),
                    **{key: metrics.get(key) for key in ("protocol", "target", "model", "macs_baseline", "by_family",
                                                          "repeatability", "alternatives", "transfer_source",
                                                          "exact_only", "down_weighted", "choice", "more_points")}})
        return 0
    _print_metrics(predictor.name, metrics)
    _print_choice(metrics)
    return 0


def _print_choice(metrics: dict) -> None:
    """Why this kind serves, and how many more points the device needs, if any."""
    choice, more = metrics.get("choice"), metrics.get("more_points")
    if choice and len(choice["mape"]) > 1:
        errors = ", ".join(f"{kind} {mape:.1f} %" for kind, mape in choice["mape"].items())
        worse = choice["worse_than"]
        console.print(f"held-out MAPE: {errors}; serving {choice['served']}"
                      + (f" as asked, [yellow]worse than {', '.join(worse)}[/yellow]" if worse else ""),
                      highlight=False)
    if more:
        console.print(f"[yellow]{more['measured']} points: measure {more['more']} more[/yellow] ({more['why']}): "
                      f"{more['command']}", highlight=False)


def _print_metrics(title: str, metrics: dict) -> None:
    from rich.table import Table

    from explorer.cli.tables import Column, add_row, compact_table
    from predictors.report import METRIC_LABELS, family_rows

    table = Table(title=f"{title}: {metrics['protocol']}")
    table.add_column("metric")
    table.add_column("predictor", justify="right")
    table.add_column("MACs-only", justify="right")
    for key, label in METRIC_LABELS.items():
        model, baseline = metrics["model"].get(key), metrics["macs_baseline"].get(key)
        table.add_row(label, "-" if model is None else f"{model:.3g}", "-" if baseline is None else f"{baseline:.3g}")
    console.print(table)
    if family_rows(metrics):
        families = compact_table(  # the columns of predictors.report.FAMILY_COLUMNS, short enough for 80 columns
            "per backbone family (held out)",
            ["family", Column("held out", wrap=True), Column("n", True), Column("MAPE %", True),
             Column("within\n+-10 %", True), Column("rho", True), Column("tau", True), Column("MACs\nMAPE %", True),
             Column("MACs\nrho", True)],
            "rho: Spearman; tau: Kendall; MACs: the MACs-only baseline on the same split")
        for row in family_rows(metrics):
            add_row(families, *row)
        console.print(families)
    source = metrics.get("transfer_source")
    if source:
        weights = source.get("weights", {})
        blend = (", weights " + ", ".join(f"{key} {weight:.0%}" for key, weight in weights.items())
                 if len(weights) > 1 else "")
        strength = "" if source.get("ridge_alpha") is None else f", ridge strength {source['ridge_alpha']:g}"
        factors = source.get("family_factors", {})
        offsets = ("; per family x " + ", ".join(f"{family} {factor:.2f}" for family, factor in factors.items())
                   if factors else "")
        console.print(f"transfer from {source['device']} ({source.get('kind', 'default')} predictor "
                      f"#{source['predictor_id']}{strength}{blend}{offsets})", highlight=False)
    down, exact = metrics.get("down_weighted"), metrics.get("exact_only")
    if down:
        console.print(f"{down['rows']} rows trained at weight {down['weight']:g}: {down['reason']}"
                      + (f"; scored without them: MAPE {exact['model']['mape']:.1f} %" if exact else ""),
                      highlight=False)
    for kind, other in (metrics.get("alternatives") or {}).items():
        console.print(f"also evaluated: {kind}, {other['protocol']}: MAPE {other['model']['mape']:.1f} %, "
                      f"Spearman {other['model']['spearman']:.2f}", highlight=False)
    repeat = metrics.get("repeatability")
    console.print("device repeatability: " + (
        "no repeated measurements" if not repeat else
        f"{repeat.get('pairs_within_10', float('nan')):.3g} % of {repeat.get('pairs', 0)} repeat pairs within +-10 % of "
        f"each other (median pair deviation {repeat.get('median_pair_deviation_pct', float('nan')):.2g} %); "
        f"{repeat['median_deviation_pct']:.2g} % median deviation from each architecture's median"))


def _report(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from predictors.report import predictor_report, write_report

    report = predictor_report(open_database(args.db), args.device)
    if args.output:
        write_report(report, args.output)
    if args.json:
        metrics = {k: v for k, v in report["metrics"].items() if k != "points"}
        print_json({**report, "metrics": metrics, "html": args.output})
        return 0
    _print_metrics(f"{report['device']} ({report['kind']}#{report['predictor_id']})", report["metrics"])
    if args.output:
        console.print(f"wrote {args.output}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from explorer.architectures import name_of
    from explorer.db import open_database, resolve_stored
    from predictors.latency import USEFUL_INTERVAL_RATIO, interval_too_wide
    from predictors.store import load_predictor
    from search_spaces.base import arch_id

    db = open_database(args.db)
    config = resolve_stored(db, args.spec, args.resolution)
    predictor = load_predictor(db, args.device)
    median, low, high = (float(v[0]) for v in predictor.predict([config]))
    too_wide = interval_too_wide(low, high)
    result = {"arch_id": arch_id(config), "name": name_of(config), "resolution": config.resolution,
              "device": predictor.device, "batch": predictor.batch, "latency_ms": median, "low_ms": low,
              "high_ms": high, "predictor": predictor.name, "kind": "prediction",
              "note": "predicted by a model, not measured; ms per image; low/high bound a ~90 % interval",
              "interval_ratio": high / low, "interval_too_wide": too_wide}
    if predictor.batch > 1:
        result["throughput_img_s"] = 1000.0 / median
    if args.json:
        print_json(result)
        return 0
    label = result["name"] or result["arch_id"]
    console.print(f"{label} @ {config.resolution}px on {predictor.device}: predicted {median:.3g} ms "
                  f"(interval {low:.3g} - {high:.3g} ms; a prediction by {predictor.name}, not a measurement)")
    if too_wide:
        console.print(f"[yellow]the interval spans {high / low:.3g}x (more than {USEFUL_INTERVAL_RATIO:g}x): too wide to "
                      f"decide a latency budget on; measure more architectures on {predictor.device} and retrain "
                      "(explorer predictor train)[/yellow]", highlight=False)
    return 0
