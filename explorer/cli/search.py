"""``explorer search``, ``dashboard``, ``verify`` and ``export``: from a latency budget to a
shortlist, its dashboard, its real measurements and packages for a training repository."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from explorer.cli.common import add_db, add_json, console, errors, fail, print_json
from explorer.cli.tables import WIDE, Column, add_row, compact_table, interval

DASHBOARD_DIR = "out/dashboards"


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("search", help="budgeted multi-objective architecture search", declare=_declare_search)
    subparsers.add_parser(
        "dashboard", help="HTML dashboard of a search (or of the hardware study), or optuna-dashboard on the studies",
        declare=_declare_dashboard)
    subparsers.add_parser("verify", help="measure a search's shortlist and compare with predictions",
                          declare=_declare_verify)
    subparsers.add_parser("export", help="self-contained packages for a training repository", declare=_declare_export)
    subparsers.add_parser(
        "suggest", help="architectures whose training would most improve the accuracy reachable within a budget",
        declare=_declare_suggest)


def _declare_search(search: argparse.ArgumentParser) -> None:
    from explorer.search import DEFAULT_SPACE, DEFAULT_TOP, SAMPLERS, space_names
    from explorer.search.space import DEFAULT_RESOLUTIONS

    search.add_argument("--device", required=True, help="device name or alias (see `explorer devices`)")
    search.add_argument("--budget", required=True, help="latency budget per image, e.g. 40ms, 0.04s, 40000us")
    search.add_argument("--objective", default="default",
                        help="accuracy score to maximise (default: the score with the best evidence, the "
                             "surrogate's pessimistic bound when it wins; see `explorer proxy report`)")
    search.add_argument("--explore", action="store_true",
                        help="maximise the surrogate's optimistic bound (95 %% quantile) instead: favours shapes "
                             "nobody has trained, to find what is worth training next")
    search.add_argument("--space", default=DEFAULT_SPACE, metavar="NAME",
                        help=f"design space to search: {', '.join(space_names())} (all: every family; "
                             f"default: {DEFAULT_SPACE})")
    search.add_argument("--trials", type=int, default=1000, help="total trials of the study (a re-run resumes)")
    search.add_argument("--sampler", choices=SAMPLERS, default="nsga2")
    search.add_argument("--study", default=None,
                        help="study name (default: DEVICE-BUDGET-OBJECTIVE, plus -SPACE for other spaces than "
                             "lowformer)")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--resolutions", default=",".join(map(str, DEFAULT_RESOLUTIONS)), metavar="R,R,...",
                        help="input resolutions searched as a knob (default "
                             f"{','.join(map(str, DEFAULT_RESOLUTIONS))}; presets start at their published one)")
    search.add_argument("--resolution", type=int, default=None,
                        help="one fixed input resolution instead of searching it (e.g. 224)")
    search.add_argument("--workers", type=int, default=1, help="processes sharing the study storage")
    _add_storage(search)
    search.add_argument("--top", type=int, default=DEFAULT_TOP, help="size of the shortlist")
    search.add_argument("--dashboard", default=None, metavar="FILE.html",
                        help=f"dashboard path (default: {DASHBOARD_DIR}/STUDY.html)")
    search.add_argument("--no-dashboard", action="store_true", help="do not write the dashboard")
    add_db(search)
    add_json(search)
    search.set_defaults(handler=_search)


def _declare_dashboard(dashboard: argparse.ArgumentParser) -> None:
    from explorer.search import DEFAULT_TOP

    what = dashboard.add_mutually_exclusive_group(required=True)
    what.add_argument("--study", help="search study name")
    what.add_argument("--study-heatmaps", action="store_true",
                      help="fused-vs-unfused heatmaps of the hardware study on --device")
    what.add_argument("--serve", action="store_true",
                      help="start optuna-dashboard on the study storage (every study, live) and block")
    dashboard.add_argument("--device", help="device of the heatmaps")
    dashboard.add_argument("-o", "--output", metavar="FILE.html", help="HTML file (with --study / --study-heatmaps)")
    dashboard.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on (default 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8080, help="with --serve: port (default 8080)")
    dashboard.add_argument("--top", type=int, default=DEFAULT_TOP)
    _add_storage(dashboard)
    add_db(dashboard)
    dashboard.set_defaults(handler=_dashboard)


def _declare_verify(verify: argparse.ArgumentParser) -> None:
    from explorer.cli.measure import add_guard_arguments
    from explorer.search import DEFAULT_TOP

    verify.add_argument("--study", required=True)
    verify.add_argument("--top", type=int, default=DEFAULT_TOP)
    verify.add_argument("--device", required=True, help="device to measure on (this host unless --ssh)")
    verify.add_argument("--ssh", default=None, metavar="USER@HOST", help="measure on a host over SSH")
    verify.add_argument("--ssh-port", type=int, default=22)
    verify.add_argument("--bundle", default=None, metavar="DIR",
                        help="for a device without the tool: write what is still to measure as a bundle here; "
                             "run its runner.py there, `explorer ingest` the results, then verify again")
    add_guard_arguments(verify)
    _add_storage(verify)
    add_db(verify)
    add_json(verify)
    verify.set_defaults(handler=_verify)


def _declare_export(export: argparse.ArgumentParser) -> None:
    from explorer.search import DEFAULT_TOP

    export.add_argument("names", nargs="*", metavar="PRESET", help="named architectures to export")
    export.add_argument("--study", default=None)
    export.add_argument("--trial", type=int, action="append", default=[], help="trial number (repeatable)")
    export.add_argument("--shortlist", action="store_true", help="the study's whole shortlist")
    export.add_argument("--top", type=int, default=DEFAULT_TOP)
    export.add_argument("--arch", action="append", default=[], metavar="ID", help="architecture id (repeatable)")
    export.add_argument("--device", action="append", default=[],
                        help="also state the predicted latency on this device (repeatable)")
    export.add_argument("--form", default=None, metavar="FORM",
                        help="FMViT only: 'train' (with reparameterisation branches, fuse() after training) or "
                             "'inference' (fused); default: each architecture's own form, inference for presets "
                             "and trials")
    export.add_argument("--to", required=True, metavar="DIR")
    _add_storage(export)
    add_db(export)
    add_json(export)
    export.set_defaults(handler=_export)


def _declare_suggest(suggest: argparse.ArgumentParser) -> None:
    from explorer.search import DEFAULT_SPACE, space_names

    suggest.add_argument("--device", required=True, help="device name or alias")
    suggest.add_argument("--budget", required=True, help="latency budget per image, e.g. 40ms")
    suggest.add_argument("--n", type=int, default=4, help="how many to suggest (default 4)")
    suggest.add_argument("--space", default=DEFAULT_SPACE, metavar="NAME",
                         help=f"design space: {', '.join(space_names())} (default {DEFAULT_SPACE})")
    suggest.add_argument("--pool", type=int, default=2000, help="random candidates scored (default 2000)")
    suggest.add_argument("--seed", type=int, default=0)
    suggest.add_argument("--resolution", type=int, default=224)
    suggest.add_argument("--to", default=None, metavar="DIR", help="export the suggestions ready to train")
    add_json(suggest)
    add_db(suggest)
    suggest.set_defaults(handler=_suggest)


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="SQLAlchemy URL or SQLite path of the study storage (default: studies.db beside "
                             "the measurement database; postgresql://... for workers on several machines)")


def _storage(args: argparse.Namespace) -> str:
    from explorer.db import database_url
    from explorer.search import default_storage_url

    return args.storage or default_storage_url(database_url(args.db))


def _progress() -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=errors)


# -- search ---------------------------------------------------------------------------------------

def _search(args: argparse.Namespace) -> int:
    import optuna

    from explorer.db import database_url, open_database, resolve_device
    from explorer.search import (
        Evaluator,
        ModelSource,
        ScoreObjective,
        SearchSettings,
        check_space,
        completed,
        load_latency_model,
        parse_budget,
        run_search,
        Rescore,
        search_report,
        start_study,
    )
    from explorer.search.shortlist import dominating_reference
    from explorer.search.study import EVIDENCE_ATTR
    from explorer.space import reference_within_budget

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = parse_budget(args.budget)
    check_space(args.space)
    db = open_database(args.db)
    with db.session() as session:
        device = resolve_device(session, args.device).name
    if args.explore and args.objective != "default":
        return fail(f"--explore searches the surrogate's optimistic bound; it cannot be combined with "
                    f"--objective {args.objective}")
    objective = "surrogate-optimistic" if args.explore else args.objective
    evaluator = Evaluator(load_latency_model(db, device), ScoreObjective(db, objective))
    resolution, resolutions = _resolutions(args)
    settings = SearchSettings(device, budget, evaluator.objective.name, args.trials, args.sampler, args.seed,
                              resolution, args.study, space=args.space, resolutions=resolutions)
    storage = _storage(args)
    rescored: list[Rescore] = []
    done = completed(start_study(storage, settings, evaluator, on_rescore=rescored.append))
    for rescore in rescored if args.json else ():  # the printed report says it at its end
        errors.print(rescore.describe(), highlight=False, markup=False, soft_wrap=True)
    with _progress() as progress:
        task = progress.add_task(f"searching {settings.name}", total=max(settings.trials, done), completed=done)
        study = run_search(settings, storage, ModelSource(database_url(args.db), device, settings.objective),
                           workers=args.workers, evaluator=evaluator,
                           on_batch=lambda n: progress.advance(task, n))
    report = {"storage": storage, **search_report(study, evaluator, args.top), "dashboard": None,
              "score_evidence": study.user_attrs.get(EVIDENCE_ATTR),
              "study_rescored": {"trials": rescored[0].trials, "changed": rescored[0].changed,
                                 "message": rescored[0].describe()} if rescored else None,
              "reference_networks": reference_within_budget(db, device, budget)}
    for entry in report["shortlist"]:
        entry["dominated_by"] = dominating_reference(entry, report["reference_networks"]["within_budget"])
    if not args.no_dashboard:
        from explorer.dashboard import search_dashboard, study_dashboard, write_html  # Plotly: only to draw

        path = args.dashboard or str(Path(DASHBOARD_DIR) / f"{study.study_name}.html")
        report["dashboard"] = str(write_html(search_dashboard(study_dashboard(db, study, evaluator, top=args.top)),
                                             path))
    if args.json:
        print_json(report)
        return 0
    _print_report(report)
    _print_reference_networks(report["reference_networks"])
    for entry in report["shortlist"]:
        other = entry["dominated_by"]
        if other:
            console.print(f"Trial {entry['trial']} is dominated by {other['name']}: measured {other['latency_ms']:.2f} "
                          f"ms (trial: {other['entry_latency_ms']:.2f} ms predicted), published top-1 "
                          f"{other['top1']:.2f} % above the trial's pessimistic "
                          f"{other['entry_pessimistic_top1']:.2f} %.",
                          highlight=False)
    return 0


def _print_reference_networks(found: dict) -> None:
    """What a user would pick instead: the published networks measured within the budget."""
    if not found["within_budget"]:
        console.print(f"Reference networks: {found['message']}.", highlight=False)
        return
    console.print(_reference_networks_table(found, console.width))
    best = found["best"]
    if best is not None:
        console.print(f"Best of them: [bold]{best['name']}[/bold], published top-1 {best['top1']:.2f}"
                      + (" (distilled)" if best["distilled"] else "") + f" at {best['latency_ms']:.2f} ms measured; "
                      f"{found['message']}.", highlight=False)


def _reference_networks_table(found: dict, width: int) -> Table:
    """The measured reference networks within budget; below 120 columns without the weights' tag."""
    narrow = width < 120
    table = compact_table(
        f"Reference networks within {found['budget_ms']:g} ms on {found['device']}",
        ["name", Column("family", wrap=True), Column("px", True), Column("MACs", True), Column("ms", True),
         Column("top-1 %", True), *([] if narrow else ["weights"])],
        "ms: measured latency (median); top-1 %: published for timm's weights at that resolution (dist.: "
        "distilled); MACs: millions" + ("; weights: --json or a wider terminal" if narrow else ""))
    for r in found["within_budget"]:
        top1 = "-" if r["top1"] is None else f"{r['top1']:.2f}" + (" dist." if r["distilled"] else "")
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.0f}"
        add_row(table, r["name"], r["family"], str(r["resolution"]), macs, f"{r['latency_ms']:.2f}", top1,
                *([] if narrow else [r["weights"]]))
    return table


def _resolutions(args: argparse.Namespace) -> tuple[int, tuple[int, ...]]:
    """(fixed resolution, searched resolutions) from ``--resolution`` / ``--resolutions``."""
    from explorer.errors import UserError

    if args.resolution is not None:
        return args.resolution, ()
    try:
        values = tuple(int(v) for v in args.resolutions.split(",") if v.strip())
    except ValueError:
        raise UserError(f"invalid --resolutions {args.resolutions!r}; allowed: integers 32-1024 separated by commas, "
                        "e.g. 160,192,224") from None
    if not values:
        raise UserError("--resolutions is empty; give e.g. 160,192,224 or a fixed --resolution 224")
    return (224 if 224 in values else values[0]), values


def _fmt_knobs(knobs: dict) -> str:
    if "widths" not in knobs:  # another family: its flat knobs
        return " ".join(f"{k}={v}" for k, v in knobs.items())
    attention = "/".join(a + ("" if m else " (no MLP)") for a, m in zip(knobs["attention"], knobs["mlp"]))
    return (f"widths {'-'.join(map(str, knobs['widths']))}, depths {'-'.join(map(str, knobs['depths']))}, "
            f"attention s3/s4 {attention}")


def _candidate_table(title: str, rows: list[dict], label_column: str, objective: str, width: int) -> Table:
    """Shortlist or published models, fitted to ``width`` columns: from 160 every column; from 120
    without knobs and nearest known results; below, latency as median [upper bound] and a published
    model without its arch id (its name is one). Arch ids are never shortened: they are what
    ``explorer export --arch`` and ``results import`` take."""
    wide, narrow, named = width >= WIDE, width < 120, label_column == "model"
    several = len({row["family"] for row in rows}) > 1
    family_below_id = narrow and several and not named
    columns: list[tuple[Column, Callable[[dict], str]]] = [(Column(label_column), _candidate_label)]
    if wide or (several and not named and not narrow):
        columns.append((Column("family"), lambda row: row["family"]))
    if wide or not (named and narrow):
        columns.append((Column("arch id, family" if family_below_id else "arch id"),
                        lambda row: row["arch_id"] + (f"\n{row['family']}" if family_below_id else "")))
    if wide:
        columns.append((Column("knobs", wrap=True), lambda row: _fmt_knobs(row["knobs"])))
    columns += [(Column("px", True), lambda row: str(row["resolution"])),
                (Column("MACs", True), lambda row: f"{row['macs'] / 1e6:.0f}")]
    if not narrow:
        columns.append((Column("params", True), lambda row: f"{row['params'] / 1e6:.2f}"))
    columns += [
        (Column("ms [high]", True), lambda row: f"{row['latency_ms']:.1f} [{row['high_ms']:.1f}]") if narrow else
        (Column("ms [~90 %]", True), lambda row: interval(row["latency_ms"], row["low_ms"], row["high_ms"])),
        (Column("score", True), lambda row: f"{row['score']:.4g}"),
        (Column("top-1 % [~90 %]", True), lambda row: _top1_cell(row.get("accuracy"), narrow)),
        (Column("vs pub.", True), _frontier_cell)]
    if wide:
        columns.append((Column("nearest known result", wrap=True), _nearest_cell))
    caption = ("MACs, params: millions; ms: predicted latency, "
               + ("median [upper bound]" if narrow else "median [~90 % interval]")
               + f"; score: {objective}; top-1 %: the surrogate's predicted mean [~90 %], ! extrapolated; vs pub.: "
               "that mean minus the best published ImageNet-1k top-1 (no extra data, no distillation) at <= its MACs"
               + ("; * over the budget" if named else "")
               + ("" if wide else "; knobs, nearest known result and every value: --json or a wider terminal"))
    table = compact_table(title, [column for column, _ in columns], caption)
    for row in rows:
        add_row(table, *(cell(row) for _, cell in columns))
    return table


def _candidate_label(row: dict) -> str:
    if row["trial"] is not None:
        return str(row["trial"])
    return row["name"] + ("" if row["meets_budget"] else "*")


def _top1_cell(accuracy: dict | None, two_lines: bool) -> str:
    if not accuracy:
        return "-"
    low, high = accuracy["interval_90"]
    flag = "!" if accuracy["extrapolation"] else ""
    return f"{accuracy['mean']:.1f}{flag}{chr(10) if two_lines else ' '}[{low:.1f}, {high:.1f}]"


def _frontier_cell(row: dict) -> str:
    distance = (row.get("published_frontier") or {}).get("distance")
    return "-" if distance is None else f"{distance:+.1f}"


def _nearest_cell(row: dict) -> str:
    nearest = (row.get("accuracy") or {}).get("nearest_result")
    return f"{nearest['name']} ({nearest['top1']:.1f} %)" if nearest else "-"


def _print_report(report: dict) -> None:
    console.print(f"Study [bold]{report['study']}[/bold] ({report['storage']}), space {report['space']}: "
                  f"{report['trials']} trials, "
                  f"{report['unique_architectures']} architectures, {report['feasible_trials']} within "
                  f"{report['budget_ms']:g} ms (predicted upper bound), Pareto front of {report['pareto_size']}.",
                  highlight=False)
    console.print(f"Latency: predicted by {report['predictor']}. Score: {report['objective_label']}. "
                  + (f"Input resolutions searched: {', '.join(map(str, report['resolutions']))}."
                     if report["resolutions"] else f"Input resolution: {report['resolution']}."),
                  highlight=False)
    score = f"{report['objective']} ({report['objective_label']})"
    console.print(_candidate_table(f"Shortlist to train on {report['device']} (budget {report['budget_ms']:g} ms)",
                                   report["shortlist"], "trial", score, console.width))
    console.print(_candidate_table("Published models of the searched families, predicted the same way",
                                   report["references"], "model", score, console.width))
    if not report["shortlist"]:
        console.print("No architecture meets the budget: raise --budget or --trials.")
    if report["study_rescored"]:
        console.print(f"Re-scored: {report['study_rescored']['message']}.", highlight=False, markup=False)
    if report["dashboard"]:
        console.print(f"Dashboard: {report['dashboard']}", highlight=False)


# -- dashboard ------------------------------------------------------------------------------------

def _dashboard(args: argparse.Namespace) -> int:
    import optuna

    from explorer.dashboard import search_dashboard, study_dashboard, write_html
    from explorer.db import open_database
    from explorer.errors import UserError
    from explorer.search import load_study, study_evaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.serve:
        return _serve(args)
    if not args.output:
        raise UserError("give -o FILE.html for the dashboard (or --serve to start optuna-dashboard)")
    db = open_database(args.db)
    if args.study_heatmaps:
        from explorer.study import render_heatmaps, summarize_study

        if not args.device:
            raise UserError("--study-heatmaps needs --device NAME (the device the hardware study ran on)")
        path = render_heatmaps(summarize_study("fused-mbconv", args.device, db), args.output)
    else:
        study = load_study(_storage(args), args.study)
        _warn_if_stale(db, study)
        evaluator = study_evaluator(db, study)
        path = write_html(search_dashboard(study_dashboard(db, study, evaluator, top=args.top)), args.output)
    console.print(f"Dashboard: {Path(path).resolve()}", highlight=False)
    return 0


def _warn_if_stale(db, study) -> str | None:
    """Say on stderr that a stored study's scores are stale (a search re-scores it); the message."""
    from explorer.search import stale_study_message

    message = stale_study_message(db, study)
    if message is not None:
        errors.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)
    return message


# -- verify ---------------------------------------------------------------------------------------

def _verify(args: argparse.Namespace) -> int:
    from explorer.cli.measure import guard_settings
    from explorer.db import open_database
    from explorer.measure import ProtocolSettings
    from explorer.search import load_study
    from explorer.verify import verify_shortlist

    db = open_database(args.db)
    study = load_study(_storage(args), args.study)
    stale = _warn_if_stale(db, study)
    transport = None
    if args.ssh:
        from explorer.remote import SSHTarget, SSHTransport

        transport = SSHTransport(SSHTarget.parse(args.ssh, port=args.ssh_port), args.device)
    report = verify_shortlist(db, study, args.device, top=args.top, transport=transport, bundle_dir=args.bundle,
                              protocol=ProtocolSettings(**guard_settings(args)), show_progress=not args.json)
    data = report.to_dict() | {"study_stale": stale}
    if args.json:
        print_json(data)
        return 0
    console.print(_verify_table(report))
    mape = "n/a" if data["mape_percent"] is None else f"{data['mape_percent']:.1f} %"
    console.print(f"{data['meeting_budget']}/{data['measured']} measured architectures meet the budget; "
                  f"{data['within_interval']}/{data['measured']} inside the predicted interval; MAPE {mape} "
                  f"(predictor {report.predictor}). Stored in {db.url}.", highlight=False)
    if args.bundle and len(report.measured) < len(report.rows):
        console.print(f"Bundle of the architectures still to measure: {Path(args.bundle).resolve()} (copy it to "
                      "the device, run `python3 runner.py` there, then `explorer ingest` its results file and "
                      "re-run this command)", highlight=False)
    return 0


def _verify_table(report) -> Table:
    table = compact_table(f"Verification of {report.study} on {report.device} (budget {report.budget_ms:g} ms)",
                          ["trial", "arch id", Column("predicted ms [~90 %]", True), Column("measured\nms", True),
                           "meets\nbudget", "in\ninterval"])
    for r in report.rows:
        add_row(table, str(r.trial), r.arch_id, interval(r.predicted_ms, r.low_ms, r.high_ms, 2),
                "-" if r.measured_ms is None else f"{r.measured_ms:.2f}", _yes(r.meets_budget),
                _yes(r.within_interval))
    return table


def _serve(args: argparse.Namespace) -> int:
    """optuna-dashboard over the project's study storage: Optuna's journal in a table of any
    SQLAlchemy database, which no Optuna tool opens from a URL by itself."""
    from optuna_dashboard import run_server

    from explorer.search import open_storage

    storage_url = _storage(args)
    if not (1 <= args.port <= 65535):
        return fail(f"--port {args.port}: a port number from 1 to 65535")
    console.print(f"optuna-dashboard on http://{args.host}:{args.port}/ for the studies in {storage_url} "
                  "(Ctrl+C stops it)", highlight=False)
    try:
        run_server(open_storage(storage_url), host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    except OSError as err:
        return fail(f"cannot serve on {args.host}:{args.port}: {err.strerror or err}")
    return 0


def _suggest(args: argparse.Namespace) -> int:
    from explorer.db import open_database, resolve_device
    from explorer.export import ExportItem, export_many
    from explorer.search import check_space, load_latency_model, parse_budget
    from explorer.search.suggest import candidate_pool, keep_suggestions, suggest_batch
    from predictors.results import load_surrogate, mean_by_architecture, surrogate_training_results

    budget = parse_budget(args.budget)
    check_space(args.space)
    if args.n < 1 or args.pool < 1:
        return fail(f"--n {args.n} / --pool {args.pool}: both must be positive integers")
    db = open_database(args.db)
    with db.session() as session:
        device = resolve_device(session, args.device).name
    latency = load_latency_model(db, device)
    surrogate = load_surrogate(db)
    known, top1, _ = mean_by_architecture(surrogate_training_results(db))
    pool = candidate_pool(args.space, known, args.pool, args.seed, args.resolution)
    picks = suggest_batch(pool, surrogate, latency, budget, args.n, known, top1)
    keep_suggestions(db, picks)
    rows = [p.to_dict() for p in picks]
    exported = []
    if args.to and picks:
        items = [ExportItem(f"suggestion-{i + 1}-{row['arch_id']}", p.config, "explorer suggest",
                            scores=(("surrogate top-1 (predicted mean), ImageNet %", p.mean),))
                 for i, (p, row) in enumerate(zip(picks, rows))]
        exported = [str(r.directory) for r in export_many(items, args.to) if r.ok]
    if args.json:
        print_json({"device": device, "budget_ms": budget, "space": args.space, "pool": len(pool),
                    "surrogate_variant": surrogate.variant, "suggestions": rows, "exported": exported})
        return 0
    console.print(_suggest_table(rows, device, budget, console.width))
    if not rows:
        console.print("No candidate meets the budget: raise --budget or --pool.")
    for path in exported:
        console.print(f"exported {path}", highlight=False)
    if rows:
        console.print("Train them, then `explorer results import RESULTS.csv` (rows arch_id,dataset,top1 with the ids "
                      "above; docs/results.md) updates the surrogate and the front.", highlight=False)
    return 0


def _suggest_table(rows: list[dict], device: str, budget: float, width: int) -> Table:
    """Suggestions, fitted to ``width`` columns (below 120 without the nearest known result)."""
    narrow = width < 120
    table = compact_table(
        f"Train next for {device} within {budget:g} ms", [
            "#", "arch id", "family", Column("px", True), Column("EI", True), Column("top-1 % [~90 %]", True),
            Column("ms [high]", True), *([] if narrow else [Column("nearest known result", wrap=True)])],
        "EI: expected improvement of the best top-1 reachable in budget (points); top-1 %: the surrogate's "
        "predicted mean [~90 % interval]; ms: predicted latency, median [upper bound]; predictions, not results"
        + ("; nearest known result: --json or a wider terminal" if narrow else ""))
    for i, row in enumerate(rows, 1):
        low, high = row["top1_interval_90"]
        add_row(table, str(i), row["arch_id"], row["family"], str(row["resolution"]),
                f"{row['expected_improvement']:.2f}", interval(row["top1_mean"], low, high),
                f"{row['latency_ms']:.1f} [{row['latency_high_ms']:.1f}]",
                *([] if narrow else [row["nearest_result"]]))
    return table


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


# -- export ---------------------------------------------------------------------------------------

def _export(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from explorer.export import export_many
    from explorer.export.sources import export_items

    db = open_database(args.db)
    study = None
    if args.study:
        from explorer.search import load_study

        study = load_study(_storage(args), args.study)
        _warn_if_stale(db, study)
    items = export_items(db, _storage(args) if args.study or args.arch else None, study=study,
                         trials=args.trial, shortlist_top=args.top if args.shortlist else None,
                         arch_ids=args.arch, names=args.names, devices=args.device, form=args.form)
    results = export_many(items, args.to)
    if args.json:
        print_json([{**dataclasses.asdict(r), "directory": str(r.directory)} for r in results])
    else:
        for r in results:
            if r.ok:
                console.print(f"[green]exported[/green] {r.label} ({r.arch_id}) -> {r.directory}", highlight=False)
            else:
                errors.print(f"[red]failed[/red] {r.label} ({r.arch_id}): {r.error}", highlight=False)
    return 0 if all(r.ok for r in results) else 1
