"""``explorer proxy score|report`` and ``explorer results import|list|remove``: the accuracy axis."""

from __future__ import annotations

import argparse

from rich.table import Table

from explorer.cli.common import add_db, add_json, console, errors, print_json
from explorer.cli.tables import Column, add_row, compact_table
from explorer.cli.search import _add_storage, _storage


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

    results = subparsers.add_parser("results", help="accuracy results from training runs: import, list, remove")
    results_commands = results.add_subparsers(dest="results_command", metavar="COMMAND")
    results_commands.required = True
    results_commands.add_parser(
        "import", help="import trained accuracies (CSV or JSON lines: arch_id|config|name, dataset, top1, epochs, source)",
        formatter_class=argparse.RawDescriptionHelpFormatter, declare=_declare_import)

    listing = results_commands.add_parser("list", help="stored results with their ids, provenance and source")
    listing.add_argument("arch", nargs="?", metavar="ARCH_ID|NAME", help="only the results of this architecture")
    listing.add_argument("--provenance", choices=("published", "imported", "micro-task"), default=None)
    listing.add_argument("--dataset", default=None, help="only this dataset (e.g. imagenet)")
    listing.add_argument("--source", default=None, help="only results of this source (an import's file name, ...)")
    add_db(listing)
    add_json(listing)
    listing.set_defaults(handler=_list)

    remove = results_commands.add_parser("remove", help="delete results by id (see `results list`) or by source")
    remove.add_argument("ids", nargs="*", type=int, metavar="ID", help="result ids")
    remove.add_argument("--source", default=None, help="every result of this source instead")
    remove.add_argument("--force", action="store_true", help="also remove published results (the release's evidence)")
    add_db(remove)
    add_json(remove)
    remove.set_defaults(handler=_remove)


IMPORT_FORMAT = """\
file format (CSV with a header row, or JSON lines with the same keys; docs/results.md):
  the architecture, exactly one of
    arch_id   an id the tool printed (the database, `explorer suggest`, a search trial)
    config    inline JSON knobs, the path of an exported config.json (relative to FILE's
              folder), or a name
    name      a named architecture, with an optional resolution column
  dataset     e.g. imagenet
  top1        top-1 accuracy in percent: above 1 (0.781 is refused as a fraction), at most 100
  epochs      optional, a positive integer
  source      optional, default import:FILE (`results remove --source` removes a whole import)

example (empty cells are left out):
  arch_id,config,name,resolution,dataset,top1,epochs,source
  8e0c8cd3a7be2f5d,,,,imagenet,77.9,300,my-repo run 12
  ,to-train/suggestion-2-1b7f0c44d2a9e360/config.json,,,imagenet,78.2,300,my-repo run 13
  ,,lowformer-b1,240,imagenet,79.6,300,my-repo run 14
  (ids and paths: those `explorer suggest --to to-train` printed)

a result more than {tolerance:g} point from the published top-1 of its architecture and
dataset, or outside the surrogate's ~90 % interval widened by {margin:g} std (ImageNet results of
architectures it has no result of), is refused unless --force, which stores it with a warning
per row (`warnings` in --json)."""
def _declare_import(imports: argparse.ArgumentParser) -> None:
    from predictors.results import PUBLISHED_TOLERANCE, SURROGATE_MARGIN_STD

    imports.epilog = IMPORT_FORMAT.format(tolerance=PUBLISHED_TOLERANCE, margin=SURROGATE_MARGIN_STD)
    imports.add_argument("file", metavar="FILE.csv|FILE.jsonl")
    imports.add_argument("--force", action="store_true",
                         help="store results that contradict the published one of their architecture or lie far "
                              "outside the surrogate's interval (each is named in a warning)")
    _add_storage(imports)
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
    table = compact_table(f"{result['name'] or args.spec} ({result['arch_id']}, {config.resolution} px)",
                          ["score", Column("value", True), Column("what it is", wrap=True), Column("s/arch", True),
                           Column("note", wrap=True)])
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
        add_row(table, objective, _format(result[objective]), entry["label"],
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
        console.print(_evidence_table(f"{result_set}: {n} architectures (ranked against their top-1)",
                                      [e for e in report.evidence if e.result_set == result_set], console.width))
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
        table = Table(title="surrogate, leave-the-smallest-k-out (fitted without the k results of fewest MACs)")
        for column in ("k", "left out (top-1 -> held-out mean)", "MAE", "bias", "~90 % coverage"):
            table.add_column(column)
        for k, row in report.surrogate["leave_smallest_out"].items():
            names = ", ".join(f"{r['name']} {r['top1']:.1f} -> {r['mean']:.1f}" for r in row["results"])
            table.add_row(k, names, f"{row['mae']:.2f}", f"{row['bias']:+.2f}", f"{row['interval_covers']:.0%}")
        console.print(table)
    for finding in report.findings:
        console.print(f"- {finding}", highlight=False)
    console.print(f"default accuracy objective: [bold]{report.default}[/bold] ({report.default_reason})", highlight=False)
    return 0


def _evidence_table(title: str, evidence, width: int) -> Table:
    """How each score ranks a result set; below 120 columns without the scores' descriptions and
    their cost."""
    narrow = width < 120
    table = compact_table(title, [
        "score", *([] if narrow else [Column("what it is", wrap=True)]), Column("n", True), Column("tau", True),
        Column("p", True), Column("rho", True), Column("partial\ntau", True), Column("partial\nrho", True),
        Column("pairs", True), *([] if narrow else [Column("s/arch", True)])],
        "tau: Kendall tau against top-1 (p: its p-value); rho: Spearman; partial: given #params; pairs: "
        "within-size pairs ordered correctly"
        + ("; s/arch: seconds per architecture" if not narrow else "; what each score is and its cost: --json"))
    for e in evidence:
        add_row(table, e.score, *([] if narrow else [e.label]), str(e.n), _signed(e.kendall_tau),
                "-" if e.kendall_p is None else f"{e.kendall_p:.2g}",
                *(_signed(v) for v in (e.spearman, e.partial_tau_params, e.partial_spearman_params)),
                "-" if e.within_size_ordered is None else f"{e.within_size_ordered:.0%} of {e.within_size_pairs}",
                *([] if narrow else ["-" if e.seconds_per_arch is None else f"{e.seconds_per_arch:.3g}"]))
    return table


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _import(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from explorer.db import open_database
    from explorer.search.lookup import trial_lookup
    from predictors.results import import_results

    summary = import_results(open_database(args.db), args.file, force=args.force, lookup=trial_lookup(_storage(args)))
    for warning in summary.warnings:
        errors.print(f"[red]WARNING[/red] {args.file}, line {warning.line}, field '{warning.field}': {warning.message}; "
                     "stored because of --force", highlight=False, soft_wrap=True)
    if args.json:
        print_json(asdict(summary))
        return 0
    console.print(f"{summary.rows} rows: {summary.inserted} new, {summary.updated} updated, {summary.unchanged} unchanged"
                  + (f", {len(summary.warnings)} contradicting the evidence (forced)" if summary.warnings else ""))
    if summary.surrogate_loo:
        loo = summary.surrogate_loo
        console.print(f"surrogate top-1 (predicted) refitted on {loo['n']} ImageNet results: "
                      f"leave-one-out MAE {loo['mae']:.2f} points, Kendall tau {loo['kendall_tau']:.2f}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from predictors.results import known_results

    dataset = args.dataset.lower() if args.dataset else None
    results = known_results(open_database(args.db), args.provenance, dataset, args.source, args.arch)
    if args.json:
        print_json([r.to_dict() for r in results])
        return 0
    console.print(_results_table(f"{len(results)} results", results))
    return 0


def _results_table(title: str, results, width: int | None = None) -> Table:
    """Stored results; below 120 columns without dataset and epochs (in ``--json``)."""
    narrow = (console.width if width is None else width) < 120
    table = compact_table(title, [Column("id", True), "architecture", Column("px", True),
                                  *([] if narrow else ["dataset"]), Column("top-1 %", True),
                                  *([] if narrow else [Column("epochs", True)]), "provenance",
                                  Column("source", wrap=True)],
                          "dataset and epochs: --json or a wider terminal" if narrow else None)
    for r in results:
        add_row(table, str(r.result_id), r.name or r.arch_id, str(r.config.resolution),
                *([] if narrow else [r.dataset]), f"{r.top1:.2f}",
                *([] if narrow else ["-" if r.epochs is None else str(r.epochs)]), r.provenance, r.source)
    return table


def _remove(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from predictors.results import remove_results

    removed = remove_results(open_database(args.db), args.ids, args.source, args.force)
    if args.json:
        print_json({"removed": [r.to_dict() for r in removed]})
        return 0
    console.print(_results_table(f"removed {len(removed)} results", removed))
    return 0
