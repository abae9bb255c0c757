"""``explorer bundle``, ``explorer ingest`` and ``explorer study``.

``bundle`` takes the campaign options of ``explorer measure`` (``explorer.cli.measure``);
``study`` runs on a host reachable over SSH with the options of ``explorer.cli.common``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from explorer.cli.common import add_db, add_json, add_ssh_arguments, console, errors, fail, print_json, ssh_transport
from explorer.cli.measure import add_campaign_arguments, campaign_spec, strategy_samplers


def _int_list(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of integers") from None
    if any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError(f"{value!r}: every value must be a positive integer")
    return numbers


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("bundle", help="export models, a manifest and runner.py for a device without the tool",
                          declare=_declare_bundle)
    ingest = subparsers.add_parser(
        "ingest", help="store the results of a bundle's runner.py",
        description="Store the result lines of runner.py. Each valid line is stored in its own transaction; "
                    "lines already stored are counted and skipped (ingesting twice adds nothing); invalid, "
                    "truncated or foreign lines are reported with their line number and skipped. Exit status "
                    "1 when any line was rejected.")
    ingest.add_argument("results", type=Path, help="results.jsonl written by runner.py")
    ingest.add_argument("--bundle", type=Path,
                        help="the bundle directory: lines must then belong to it (recommended)")
    add_json(ingest)
    add_db(ingest)
    ingest.set_defaults(handler=_ingest)
    subparsers.add_parser("study", help="re-run one experiment of the hardware study on a device",
                          declare=_declare_study)


def _declare_bundle(bundle: argparse.ArgumentParser) -> None:
    from explorer.remote.bundle import BACKEND

    add_campaign_arguments(bundle)
    bundle.add_argument("-o", "--output", required=True, type=Path, help="bundle directory to write")
    bundle.set_defaults(handler=_bundle, backend=BACKEND)


def _declare_study(study: argparse.ArgumentParser) -> None:
    from explorer.study import STUDIES

    study.add_argument("kind", choices=tuple(STUDIES), help="which experiment")
    study.add_argument("--device", default="local", help="device name or alias (default local)")
    study.add_argument("--quick", action="store_true",
                       help="a smaller grid and shorter timing (minutes on 2 CPU cores)")
    study.add_argument("--resolutions", type=_int_list,
                       help="comma-separated resolutions (fused-mbconv grid rows, attention sides)")
    study.add_argument("--channels", type=_int_list,
                       help="comma-separated channel counts (fused-mbconv grid columns)")
    study.add_argument("--time-limit", type=float, default=None,
                       help="seconds of timing per model at most (default: 2, or 0.5 with --quick)")
    study.add_argument("--max-gmacs", type=float, default=None,
                       help="models above this many GMACs are listed but not measured (default 25, 5 with --quick)")
    study.add_argument("--threads", type=int, help="default: the device's")
    study.add_argument("--force", action="store_true", help="re-measure what is already stored")
    study.add_argument("-o", "--output", type=Path, help="fused-mbconv: write the two heatmaps to this HTML file")
    add_ssh_arguments(study)
    add_json(study)
    add_db(study)
    study.set_defaults(handler=_study)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), console=errors)


def _bundle(args: argparse.Namespace) -> int:
    from explorer.architectures import resolve
    from explorer.db import open_database
    from explorer.measure import plan_campaign
    from explorer.remote import write_bundle
    from explorer.remote.bundle import BACKEND, RESULTS_NAME, RUNNER_NAME

    if args.backend != BACKEND:
        return fail(f"bundles measure with onnxruntime (--backend {BACKEND}); got --backend {args.backend}")
    try:
        spec = campaign_spec(args)
        database = open_database(args.db)
        plan = plan_campaign(database, spec, strategy_samplers())
        if not plan.jobs:
            return fail(f"all {plan.skipped} architectures are already measured on {plan.device} with these "
                        "settings; use --force to bundle them anyway")
        with _progress() as progress:
            task = progress.add_task(f"exporting for {plan.device}", total=None)
            reference = resolve(*spec.reference) if spec.reference else None
            manifest = write_bundle(plan.jobs, args.output, device=plan.device, reference=reference,
                                    settings=spec.protocol,
                                    progress=lambda done, total: progress.update(task, completed=done, total=total))
    except (ValueError, FileNotFoundError) as err:  # bad settings or database path
        return fail(str(err))
    summary = {"bundle_id": manifest.bundle_id, "directory": str(args.output), "device": manifest.device,
               "models": len(manifest.models), "skipped_already_measured": plan.skipped,
               "run": f"python {args.output / RUNNER_NAME} {args.output} --output {RESULTS_NAME}",
               "ingest": f"explorer ingest {RESULTS_NAME} --bundle {args.output}"}
    if args.json:
        print_json(summary)
        return 0
    console.print(f"bundle [bold]{manifest.bundle_id}[/bold]: {len(manifest.models)} models for "
                  f"{manifest.device} in {args.output} ({plan.skipped} already measured, skipped)")
    console.print(f"on the device (Python 3.9+, numpy, onnxruntime): {summary['run']}")
    console.print(f"back here: {summary['ingest']}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from explorer.remote import ingest_results

    try:
        database = open_database(args.db)
        report = ingest_results(database, args.results, bundle_dir=args.bundle,
                                on_message=lambda text: errors.print(text, highlight=False, markup=False,
                                                                     soft_wrap=True))
    except FileNotFoundError as err:
        return fail(str(err))
    if args.json:
        print_json(report.to_dict())
    else:
        console.print(f"{report.path}: {report.added} stored, {report.duplicates} already stored, "
                      f"{len(report.rejected)} rejected")
    return 1 if report.rejected else 0


def _study(args: argparse.Namespace) -> int:
    if args.output is not None and args.kind != "fused-mbconv":
        return fail(f"-o writes the fused-mbconv heatmaps; study {args.kind!r} has none")
    from explorer.db import open_database
    from explorer.study import StudyOptions, render_heatmaps, run_study, study_tables

    try:
        options = StudyOptions.make(args.kind, quick=args.quick, resolutions=args.resolutions,
                                    channels=args.channels, time_limit_s=args.time_limit,
                                    threads=args.threads, force=args.force, max_gmacs=args.max_gmacs)
        database = open_database(args.db)
        result = run_study(args.kind, args.device, database, options, transport=ssh_transport(args),
                           show_progress=not args.json)
    except (ValueError, FileNotFoundError) as err:  # bad settings or database path
        return fail(str(err))
    if args.output is not None:
        render_heatmaps(result, args.output)
    if args.json:
        print_json(result.to_dict())
        return 0
    for table in study_tables(result):
        console.print(table)
    if args.output is not None:
        console.print(f"heatmaps written to {args.output}")
    return 0
