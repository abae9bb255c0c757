"""``explorer devices``, ``explorer measure`` and ``explorer measurements list``.

Other command modules extend ``measure`` without copying it: :func:`add_campaign_arguments`
declares the campaign options, :func:`campaign_spec` turns parsed options into a
:class:`CampaignSpec`, and :func:`measure_with` runs it through any transport and sampler table.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.table import Table

from explorer.cli.common import add_db, add_json, add_ssh_arguments, console, fail, print_json, ssh_transport

if TYPE_CHECKING:
    from explorer.measure import CampaignSpec, Transport
    from explorer.measure.campaign import Sampler


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list device profiles, or add one")
    add_json(devices)
    add_db(devices)
    devices.set_defaults(handler=_devices)
    device_commands = devices.add_subparsers(dest="devices_command", metavar="{add,probe}")
    device_commands.add_parser("add", help="store a user-defined device profile", declare=_declare_devices_add)
    device_commands.add_parser(
        "probe", help="find the most repeatable intra-op thread count of this host and store it with the device",
        declare=_declare_devices_probe)
    subparsers.add_parser("measure", help="measure architectures on a device (resumable campaign)",
                          declare=_declare_measure)

    measurements = subparsers.add_parser("measurements", help="stored measurements")
    listing = measurements.add_subparsers(dest="measurements_command", metavar="{list}", required=True)
    lister = listing.add_parser("list", help="list stored measurements")
    lister.add_argument("--device", help="device name or alias")
    lister.add_argument("--provenance", choices=("measured", "published"))
    lister.add_argument("--status", choices=("ok", "failed"))
    add_json(lister)
    add_db(lister)
    lister.set_defaults(handler=_measurements_list)


def _declare_devices_add(add: argparse.ArgumentParser) -> None:
    from explorer.measure.backends import BACKENDS

    add.add_argument("--file", help="JSON file with the profile's fields")
    add.add_argument("--name", help="device name (without --file)")
    add.add_argument("--description", default="")
    add.add_argument("--hardware", default="")
    add.add_argument("--runtime", default="")
    add.add_argument("--backend", default="ort", choices=sorted(BACKENDS))
    add.add_argument("--threads", type=int, default=None, help="default threads")
    add.add_argument("--batch", type=int, default=1, help="default batch")
    add.add_argument("--alias", action="append", default=[], help="another name (repeatable)")
    add.add_argument("--this-host", action="store_true",
                     help="bind the profile to the host running this command (then --device local names it here)")
    add_json(add)
    add_db(add)
    add.set_defaults(handler=_devices_add)


def _declare_devices_probe(probe: argparse.ArgumentParser) -> None:
    from explorer.architectures import FLAT_SPACES

    probe.add_argument("--device", default="local", help="a measured device of this host (default local)")
    probe.add_argument("--threads", default="1,2", help="thread counts to compare, comma-separated (default 1,2)")
    probe.add_argument("--n", type=int, default=6, help="random architectures (default 6)")
    probe.add_argument("--passes", type=int, default=3, help="passes per thread count (default 3)")
    probe.add_argument("--seed", type=int, default=7)
    probe.add_argument("--space", default="lowformer", choices=sorted(FLAT_SPACES))
    probe.add_argument("--dry-run", action="store_true", help="report only; store nothing")
    add_json(probe)
    add_db(probe)
    probe.set_defaults(handler=_devices_probe)


def _declare_measure(measure: argparse.ArgumentParser) -> None:
    add_campaign_arguments(measure)
    add_ssh_arguments(measure)
    measure.set_defaults(handler=_measure)


def add_campaign_arguments(parser: argparse.ArgumentParser) -> None:
    from explorer.architectures import FLAT_SPACES
    from explorer.measure import SAMPLERS, ProtocolSettings
    from explorer.measure.backends import BACKENDS

    defaults = ProtocolSettings()
    parser.add_argument("--device", required=True, help="device name or alias (see: explorer devices)")
    parser.add_argument("--n", type=int, default=None, help="number of architectures (all for presets/file)")
    parser.add_argument("--sampler", "--strategy", dest="sampler", default=None,
                        help=f"one of {', '.join(SAMPLERS)}, uncertainty, calibrate (architectures that represent "
                             "the space, or without --space every family in equal shares, for a transfer from the "
                             "richly measured devices; default random, presets for --space reference)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", help="design space sampled by random/sobol (default lowformer), by calibrate "
                                        "(default: all four families) or whose "
                                        f"presets --sampler presets measures (default all): {', '.join(FLAT_SPACES)}; "
                                        "reference: the published networks of timm (explorer space presets --space "
                                        "reference)")
    parser.add_argument("--file", help="configs, names or arch ids of the database for --sampler file (JSON list or "
                                       "one per line)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), help="default: the device's")
    parser.add_argument("--threads", type=int, help="default: the device's")
    parser.add_argument("--batch", type=int, help="default: the device's (1: latency, more: throughput)")
    parser.add_argument("--resolution", type=int, help="input resolution (default: each config's)")
    parser.add_argument("--force", action="store_true", help="re-measure what is already stored")
    parser.add_argument("--retry-failed", action="store_true",
                        help="measure again the architectures whose stored measurement failed (kept as history)")
    parser.add_argument("--campaign", help="campaign label stored with each row (default: from the options)")
    parser.add_argument("--time-limit", type=float, default=defaults.time_limit_s,
                        help=f"seconds of timing per architecture at most (default {defaults.time_limit_s})")
    parser.add_argument("--target-ci", type=float, default=defaults.target_rel_ci,
                        help=f"stop when the 95%% CI of the median is within +-this (default {defaults.target_rel_ci})")
    parser.add_argument("--no-drift-check", action="store_true",
                        help="skip re-measuring a few presets at the start and end of the campaign")
    parser.add_argument("--min-samples", type=int, default=defaults.min_samples)
    parser.add_argument("--max-samples", type=int, default=defaults.max_samples)
    add_guard_arguments(parser)
    add_json(parser)
    add_db(parser)


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number >= 0")
    return number


def add_guard_arguments(parser: argparse.ArgumentParser) -> None:
    """The quiet-machine guard's options, the same wherever this host measures (``measure``,
    ``bundle``, ``verify``; a bundle's ``runner.py`` takes them too)."""
    from explorer.measure import ProtocolSettings

    defaults = ProtocolSettings()
    parser.add_argument("--quiet-wait", type=_non_negative, default=defaults.quiet_wait_s, metavar="SECONDS",
                        help="seconds to wait for a quiet machine before measuring anyway, flagged busy "
                             f"(default {defaults.quiet_wait_s:.0f})")
    parser.add_argument("--busy-cores", type=_non_negative, default=defaults.busy_cores, metavar="CORES",
                        help="other processes using more cores than this make the machine busy "
                             f"(default {defaults.busy_cores})")
    parser.add_argument("--allow-busy", action="store_true",
                        help="measure without waiting for a quiet machine; busy results keep the busy flag "
                             "and stay out of predictor training")


def guard_settings(args: argparse.Namespace) -> dict[str, float | bool]:
    """:class:`ProtocolSettings` fields of the guard options (:func:`add_guard_arguments`)."""
    return {"quiet_wait_s": args.quiet_wait, "busy_cores": args.busy_cores, "allow_busy": args.allow_busy}


def campaign_spec(args: argparse.Namespace) -> CampaignSpec:
    from explorer.measure import CampaignSpec, ProtocolSettings

    protocol = ProtocolSettings(time_limit_s=args.time_limit, target_rel_ci=args.target_ci,
                                min_samples=args.min_samples, max_samples=args.max_samples,
                                **guard_settings(args))
    sampler = args.sampler or ("presets" if args.space == "reference" else "random")
    return CampaignSpec(device=args.device, n=args.n, sampler=sampler, seed=args.seed, space=args.space, file=args.file,
                        backend=args.backend, threads=args.threads, batch=args.batch, resolution=args.resolution,
                        force=args.force, retry_failed=args.retry_failed, name=args.campaign, protocol=protocol,
                        **({"drift_check": ()} if args.no_drift_check else {}))


def measure_with(args: argparse.Namespace, *, transport: Transport | None = None,
                 samplers: Mapping[str, Sampler] | None = None) -> int:
    """Run the campaign described by ``args`` (``samplers`` default: ``explorer.measure.SAMPLERS``)
    and print its report."""
    from explorer.db import open_database
    from explorer.measure import SAMPLERS, run_campaign

    database = open_database(args.db)
    report = run_campaign(database, campaign_spec(args), transport=transport,
                          samplers=SAMPLERS if samplers is None else samplers,
                          show_progress=not args.json)
    if args.json:
        print_json(report.to_dict())
        return 0
    console.print(f"campaign [bold]{report.campaign}[/bold] on {report.device}: {report.measured} measured, "
                  f"{report.failed} failed, {report.skipped} already stored (skipped)")
    for check in report.drift:
        if check.change is not None:
            console.print(f"  drift check {check.name}: {check.start_ms:.2f} -> {check.end_ms:.2f} ms "
                          f"({check.change:+.1%}; relative to the reference {check.relative_change:+.1%})")
    if report.drift_detected:
        console.print("[yellow]the machine's speed drifted during the campaign; reference-normalised "
                      "figures (relative_to_reference) are the comparable ones[/yellow]")
    return 0


def strategy_samplers() -> dict[str, Sampler]:
    """The campaign samplers and the strategies that consult predictors, which live downstream
    (predictors): only the CLI wires them in."""
    from explorer.measure import SAMPLERS
    from predictors.active import uncertainty_sampler
    from predictors.calibration_points import calibration_sampler

    return {**SAMPLERS, "uncertainty": uncertainty_sampler, "calibrate": calibration_sampler}


def _measure(args: argparse.Namespace) -> int:
    if args.space == "reference":
        _build_missing_reference(args)
    return measure_with(args, transport=ssh_transport(args), samplers=strategy_samplers())


def _build_missing_reference(args: argparse.Namespace) -> None:
    """One command measures the reference networks: those without an ONNX file are exported
    first, where the reference environment exists (without it, the campaign names the command)."""
    from explorer.errors import UserError
    from explorer.reference import ReferenceNotBuilt, build_reference, reference_configs, reference_python

    configs = reference_configs(args.resolution)[: args.n] if args.n else reference_configs(args.resolution)
    missing = [c for c in configs if not c.onnx_path().is_file()]
    if not missing:
        return
    try:
        reference_python()
    except UserError:
        return
    if not args.json:
        console.print(f"exporting {len(missing)} reference network(s) to ONNX first", highlight=False)
    failed = [line for line in build_reference(missing) if "error" in line]
    if failed:
        raise ReferenceNotBuilt(f"{len(failed)} reference network(s) did not export (the first: {failed[0]['model']}: "
                                f"{failed[0]['error']})")


def _devices(args: argparse.Namespace) -> int:
    from explorer.db import open_database
    from explorer.devices import list_devices

    with open_database(args.db).session() as session:
        rows = list_devices(session)
    if args.json:
        print_json(rows)
        return 0
    table = Table("name", "aliases", "provenance", "backend", "threads", "batch", "measurements", "hardware")
    for row in rows:
        table.add_row(row["name"], ", ".join(row["aliases"]), row["provenance"], row["backend"],
                      str(row["default_threads"] or "-"), str(row["default_batch"]), str(row["measurements"]),
                      row["hardware"])
    console.print(table)
    return 0


def _devices_probe(args: argparse.Namespace) -> int:
    try:
        threads = tuple(int(t) for t in args.threads.split(","))
    except ValueError:
        return fail(f"--threads {args.threads!r}: give positive integers separated by commas, e.g. 1,2")
    from explorer.db import open_database
    from explorer.measure.probe import probe_threads

    database = open_database(args.db)
    report = probe_threads(database, args.device, threads=threads, n=args.n, passes=args.passes,
                           space=args.space, seed=args.seed, store=not args.dry_run,
                           on_step=None if args.json else lambda step: console.print(f"probe: {step}"))
    if args.json:
        print_json(report.to_dict())
        return 0
    table = Table("threads", "repeat pairs", "within +-10 %", "within +-5 %", "median deviation", "p90 deviation",
                  "busy")
    for r in report.results:
        table.add_row(str(r.threads), str(r.pairs), f"{r.within_10pct:.0%}", f"{r.within_5pct:.0%}",
                      f"{r.median_pair_deviation:.1%}", f"{r.p90_pair_deviation:.1%}", str(r.busy))
    console.print(table)
    stored = "" if args.dry_run else f", stored as the default of {report.device}"
    console.print(f"most repeatable: [bold]{report.best_threads}[/bold] thread(s){stored}")
    return 0


def _devices_add(args: argparse.Namespace) -> int:
    if bool(args.file) == bool(args.name):
        return fail("give either --file PROFILE.json or --name NAME (with --description etc.)")
    from explorer.db import bind_host, open_database
    from explorer.devices import DeviceProfile, add_device, profile_from_file
    from explorer.measure.protocol import host_fingerprint

    profile = profile_from_file(args.file) if args.file else DeviceProfile(
        name=args.name, description=args.description, hardware=args.hardware, runtime=args.runtime,
        backend=args.backend, default_threads=args.threads, default_batch=args.batch, aliases=tuple(args.alias))
    with open_database(args.db).session() as session:
        device = add_device(session, profile)
        if args.this_host:
            bind_host(device, host_fingerprint())
    if args.json:
        print_json(profile.to_dict())
    else:
        console.print(f"added device [bold]{profile.name}[/bold]")
    return 0


def _measurements_list(args: argparse.Namespace) -> int:
    from explorer.db import list_measurements, open_database

    with open_database(args.db).session() as session:
        rows = list_measurements(session, args.device, args.provenance, args.status)
    if args.json:
        print_json(rows)
        return 0
    table = Table("arch_id", "name", "device", "backend", "batch", "threads", "res", "median ms", "n", "cv",
                  "provenance", "status")
    for r in rows:
        table.add_row(r["arch_id"], r["name"] or "", r["device"], r["backend"], str(r["batch"]),
                      str(r["threads"] or "-"), str(r["resolution"]),
                      f"{r['median_ms']:.3f}" if r["median_ms"] is not None else "-", str(r["n_samples"]),
                      f"{r['cv']:.3f}" if r["cv"] is not None else "-", r["provenance"], r["status"])
    console.print(table)
    return 0
