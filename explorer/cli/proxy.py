"""``explorer proxy score|report`` and ``explorer results import``: the accuracy axis."""

from __future__ import annotations

import argparse

from rich.table import Table

from explorer.cli.common import add_db, add_json, console, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    proxy = subparsers.add_parser("proxy", help="accuracy scores: size baselines, zero-cost proxies, micro-task, surrogate")
    commands = proxy.add_subparsers(dest="proxy_command", metavar="COMMAND")
    commands.required = True

    score = commands.add_parser("score", help="every accuracy score of one architecture (proxies are not accuracies)")
    score.add_argument("spec", metavar="NAME|CONFIG", help="named architecture or config JSON file")
    score.add_argument("--objective", default=None,
                       help="only this score (and the default objective); 'microtask' trains it if not cached")
    score.add_argument("--resolution", type=int, default=None, help="input resolution of the architecture")
    score.add_argument("--score-resolution", type=int, default=None,
                       help="resolution of the zero-cost proxies (default: the architecture's, scaled by 64/224)")
    score.add_argument("--microtask", action="store_true", help="train the micro-task if it is not cached (tens of seconds)")
    score.add_argument("--data", default=None, metavar="DIR",
                       help="ImageFolder directory (root/<class>/<image>) for the micro-task instead of the generated task")
    score.add_argument("--steps", type=int, default=None, help="micro-task training steps (default 150)")
    score.add_argument("--seed", type=int, default=0, help="seed of initialisation, synthetic inputs and task")
    add_db(score)
    add_json(score)
    score.set_defaults(handler=_score)

    report = commands.add_parser("report", help="calibration of every score against the known results")
    report.add_argument("--no-compute", action="store_true", help="use cached zero-cost proxies only")
    add_db(report)
    add_json(report)
    report.set_defaults(handler=_report)

    results = subparsers.add_parser("results", help="accuracy results from training runs")
    results_commands = results.add_subparsers(dest="results_command", metavar="COMMAND")
    results_commands.required = True
    imports = results_commands.add_parser(
        "import", help="import trained accuracies (CSV or JSON lines: arch_id|config|name, dataset, top1, epochs, source)")
    imports.add_argument("file", metavar="FILE.csv|FILE.jsonl")
    add_db(imports)
    add_json(imports)
    imports.set_defaults(handler=_import)


def _options(args: argparse.Namespace):
    import dataclasses

    from predictors.proxies import GeneratedTask, ImageFolderTask, MicroTaskSettings, ScoringOptions

    settings = MicroTaskSettings(seed=args.seed)
    if args.steps is not None:
        settings = dataclasses.replace(settings, steps=args.steps)
    task = ImageFolderTask(args.data, seed=args.seed) if args.data else GeneratedTask(seed=args.seed)
    return ScoringOptions(resolution=args.score_resolution, seed=args.seed, task=task, microtask=settings,
                          compute_expensive=args.microtask or args.objective == "microtask")


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.4g}"


def _score(args: argparse.Namespace) -> int:
    from explorer.architectures import name_of, resolve
    from explorer.db import open_database
    from predictors.calibration import score_architecture

    config = resolve(args.spec, args.resolution)
    objectives = [args.objective] if args.objective else None
    result = score_architecture(open_database(args.db), config, objectives, _options(args), name_of(config))
    if args.json:
        print_json(result)
        return 0
    table = Table(title=f"{result['name'] or args.spec} ({result['arch_id']}, {config.resolution} px)")
    for column in ("score", "value", "what it is", "s/arch", "note"):
        table.add_column(column)
    for objective, entry in result["details"].items():
        note = entry.get("unavailable", "")
        if "std" in entry:
            low, high = entry["interval_90"]
            nearest = entry["nearest_result"]
            note = (f"~90 % interval {low:.1f}-{high:.1f}; nearest result {nearest['name']} ({nearest['top1']:.1f} %)"
                    + (f"; EXTRAPOLATION: {'; '.join(entry['reasons'])}" if entry["extrapolation"] else ""))
        elif entry.get("cached"):
            note = "cached"
        seconds = entry.get("seconds")
        table.add_row(objective, _format(result[objective]), entry["label"],
                      "-" if seconds is None else f"{seconds:.3g}", note)
    console.print(table)
    default = result["default"]
    console.print(f"default objective: {default['name']} = {_format(default['value'])} ({default['label']})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from predictors.calibration import calibration_report

    report = calibration_report(open_database(args.db), compute=not args.no_compute, progress=not args.json)
    if args.json:
        print_json(report.to_dict())
        return 0
    for result_set, n in report.result_sets.items():
        table = Table(title=f"{result_set}: {n} architectures (ranked against their top-1)")
        for column in ("score", "what it is", "n", "Kendall tau", "p", "Spearman", "partial tau | #params",
                       "partial rho | #params", "s/arch"):
            table.add_column(column)
        for e in report.evidence:
            if e.result_set == result_set:
                table.add_row(e.score, e.label, str(e.n), _signed(e.kendall_tau),
                              "-" if e.kendall_p is None else f"{e.kendall_p:.2g}",
                              *(_signed(v) for v in (e.spearman, e.partial_tau_params, e.partial_spearman_params)),
                    "-" if e.seconds_per_arch is None else f"{e.seconds_per_arch:.3g}")
        console.print(table)
    if report.surrogate:
        loo = report.surrogate["loo"]
        console.print(f"surrogate top-1 (predicted, variant {report.surrogate['variant']}), leave-one-out on {loo['n']} "
                      f"ImageNet results: MAE {loo['mae']:.2f}, RMSE {loo['rmse']:.2f}, max {loo['max_abs_error']:.2f} "
                      f"points, Kendall tau {loo['kendall_tau']:.2f}, ~90 % intervals cover {loo['coverage_90']:.0%}")
        table = Table(title="surrogate variants, leave-one-out (the smallest MAE serves)")
        for column in ("variant", "MAE", "Kendall tau", "~90 % coverage"):
            table.add_column(column)
        for name, row in report.surrogate["variants_loo"].items():
            table.add_row(name, f"{row['mae']:.2f}", f"{row['kendall_tau']:.2f}", f"{row['coverage_90']:.0%}")
        console.print(table)
        table = Table(title="surrogate, leave-one-family-out (fitted without the family)")
        for column in ("family", "n", "MAE", "bias", "Kendall tau", "~90 % coverage"):
            table.add_column(column)
        for family, row in report.surrogate["leave_one_family_out"].items():
            table.add_row(family, str(row["n"]), f"{row['mae']:.2f}", f"{row['bias']:+.2f}",
                          _signed(row["kendall_tau"] if row["n"] > 2 else None), f"{row['interval_covers']:.0%}")
        console.print(table)
    for finding in report.findings:
        console.print(f"- {finding}", highlight=False)
    console.print(f"default accuracy objective: [bold]{report.default}[/bold] ({report.default_reason})", highlight=False)
    return 0


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _import(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from explorer.db import open_database
    from predictors.results import import_results

    summary = import_results(open_database(args.db), args.file)
    if args.json:
        print_json(asdict(summary))
        return 0
    console.print(f"{summary.rows} rows: {summary.inserted} new, {summary.updated} updated, {summary.unchanged} unchanged")
    if summary.surrogate_loo:
        loo = summary.surrogate_loo
        console.print(f"surrogate top-1 (predicted) refitted on {loo['n']} ImageNet results: "
                      f"leave-one-out MAE {loo['mae']:.2f} points, Kendall tau {loo['kendall_tau']:.2f}")
    return 0
