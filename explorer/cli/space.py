"""``explorer space``: named architectures, one architecture's breakdown, sampling, ONNX export."""

from __future__ import annotations

import argparse
import sys

from rich.table import Table

from explorer.cli.common import add_db, add_json, console, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("space", help="the design space: presets, breakdowns, samples, ONNX", declare=_declare)


def _declare(parser: argparse.ArgumentParser) -> None:
    from explorer.architectures import FLAT_SPACES

    commands = parser.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    commands.required = True

    presets = commands.add_parser("presets", help="named architectures: presets, ablations, study toy models")
    presets.add_argument("--kind", choices=("preset", "ablation", "toy"), action="append",
                         help="only these kinds (repeatable)")
    presets.add_argument("--space", choices=("reference",),
                         help="reference: the published networks of timm set beside a search (never searched)")
    add_json(presets)
    presets.set_defaults(handler=_presets)

    show = commands.add_parser("show", help="stages, params, MACs and op classes of one architecture")
    show.add_argument("spec", metavar="NAME|CONFIG.json|ARCH_ID",
                      help="named architecture, config JSON file or arch id of the database (e.g. a suggestion's)")
    show.add_argument("--resolution", type=int, default=None, help="input side (feature-map side for toys)")
    add_db(show)
    add_json(show)
    show.set_defaults(handler=_show)

    sample = commands.add_parser("sample", help="random valid configs as JSON lines")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--resolution", type=int, default=224)
    sample.add_argument("--space", default="lowformer", help=f"one of {', '.join(FLAT_SPACES)}")
    sample.add_argument("--sampler", default="random", help="random or sobol (scrambled, better coverage)")
    sample.set_defaults(handler=_sample)

    build = commands.add_parser(
        "build-reference", help="export the reference networks to ONNX in the reference environment (resumable)")
    build.add_argument("--resolution", type=int, default=None, help="input side (default: each one's published)")
    build.add_argument("--force", action="store_true", help="export again what is already built")
    build.add_argument("--fvcore", action="store_true",
                       help="export all again and compare our counts of each file with fvcore's of the module")
    add_json(build)
    build.set_defaults(handler=_build_reference)

    onnx = commands.add_parser("export-onnx", help="ONNX file, checked against PyTorch")
    onnx.add_argument("spec", metavar="NAME|CONFIG.json")
    onnx.add_argument("-o", "--output", required=True)
    onnx.add_argument("--resolution", type=int, default=None)
    onnx.add_argument("--opset", type=int, default=17)
    onnx.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    add_json(onnx)
    onnx.set_defaults(handler=_export_onnx)


def _presets(args: argparse.Namespace) -> int:
    from explorer import space

    if args.space == "reference":
        return _reference_presets(args)
    summaries = space.list_named(tuple(args.kind) if args.kind else ("preset", "ablation", "toy"))
    if args.json:
        print_json([s.to_json() for s in summaries])
        return 0
    table = Table(title="Named architectures (params and MACs computed from the config; MACs: paper convention)")
    for column in ("name", "kind", "res", "params (M)", "MACs (M)", "arch id", "source"):
        table.add_column(column, justify="right" if column in ("res", "params (M)", "MACs (M)") else "left")
    for s in summaries:
        source = s.source if s.exact else f"{s.source} [reconstruction]"
        table.add_row(s.name, s.kind, str(s.resolution), f"{s.params / 1e6:.3f}", f"{s.macs / 1e6:.2f}",
                      s.arch_id, source)
    console.print(table)
    return 0


def _reference_presets(args: argparse.Namespace) -> int:
    from explorer import space

    rows = space.list_reference()
    if args.json:
        print_json(rows)
        return 0
    table = Table(title="Reference networks (timm, random weights; params and MACs counted from their ONNX files, "
                        "paper convention; top-1 published for the weights named; not searchable)")
    for column in ("name", "family", "res", "params (M)", "MACs (M)", "top-1", "weights", "arch id"):
        table.add_column(column, justify="right" if column in ("res", "params (M)", "MACs (M)", "top-1") else "left")
    for r in rows:
        top1 = "-" if r["top1"] is None else f"{r['top1']:.2f}" + (" (distilled)" if r["distilled"] else "")
        table.add_row(r["name"], r["family"], str(r["resolution"]),
                      "not built" if r["params"] is None else f"{r['params'] / 1e6:.3f}",
                      "not built" if r["macs"] is None else f"{r['macs'] / 1e6:.2f}", top1, r["weights"], r["arch_id"])
    console.print(table)
    missing = sum(not r["built"] for r in rows)
    if missing:
        console.print(f"{missing} of {len(rows)} have no ONNX file yet: `explorer space build-reference` exports them "
                      "(in the environment of `bash scripts/setup.sh --reference`)")
    return 0


def _build_reference(args: argparse.Namespace) -> int:
    from explorer.reference import build_reference, reference_configs

    def say(line: dict) -> None:
        if not args.json:
            outcome = f"[red]failed[/red]: {line['error']}" if "error" in line else f"{line['seconds']:.1f} s"
            console.print(f"{line['model']} at {line['resolution']} px: {outcome}", highlight=False)

    lines = build_reference(reference_configs(args.resolution), force=args.force, fvcore=args.fvcore, on_line=say)
    failed = [line for line in lines if "error" in line]
    compared = [line for line in lines if "fvcore_macs" in line]
    if args.json:
        print_json(lines)
        return 1 if failed else 0
    skipped = sum(bool(line.get("skipped")) for line in lines)
    console.print(f"{len(lines) - skipped - len(failed)} exported, {skipped} already built, {len(failed)} failed")
    if compared:
        worst = max(compared, key=lambda line: abs(line["params_difference"]))
        console.print(f"our count against fvcore's: MACs equal for {sum(c['macs_difference'] == 0 for c in compared)} "
                      f"of {len(compared)}, largest MAC difference "
                      f"{max(abs(c['macs_difference']) for c in compared):.3%}; params within "
                      f"{abs(worst['params_difference']):.2%} ({worst['model']}; the export folds BatchNorm)",
                      highlight=False)
    return 1 if failed else 0



def _show(args: argparse.Namespace) -> int:
    from explorer import space
    from explorer.db import open_database

    info = space.describe(args.spec, args.resolution, open_database(args.db))
    if args.json:
        print_json(info)
        return 0
    title = f"{info['name'] or 'config'} ({info['space']}, {info['resolution']} px)  arch id {info['arch_id']}"
    stages = Table(title=title)
    for column in ("stage", "in", "out", "params", "MACs (M)", "ops"):
        stages.add_column(column, justify="left" if column in ("stage", "in", "out") else "right")
    for s in info["stages"]:
        stages.add_row(s["stage"], "x".join(map(str, s["in_shape"])), "x".join(map(str, s["out_shape"])),
                       f"{s['params']:,}", f"{s['macs'] / 1e6:.3f}", str(s["ops"]))
    stages.add_row("total", "", "", f"{info['params']:,}", f"{info['macs'] / 1e6:.3f}", "", style="bold")
    console.print(stages)
    classes = Table(title="Op classes")
    for column in ("class", "ops", "MACs (M)", "MAC share", "params", "MB moved"):
        classes.add_column(column, justify="left" if column == "class" else "right")
    for name, agg in info["op_classes"].items():
        share = agg["macs"] / info["macs"] if info["macs"] else 0.0
        classes.add_row(name, str(agg["ops"]), f"{agg['macs'] / 1e6:.3f}", f"{share:.1%}", f"{agg['params']:,}",
                        f"{agg['bytes'] / 1e6:.1f}")
    console.print(classes)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from explorer import space

    for line in space.sample_lines(args.n, args.seed, args.resolution, args.space, args.sampler):
        sys.stdout.write(line + "\n")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from explorer import space

    result = space.export(args.spec, args.output, args.resolution, args.opset, check=not args.no_check)
    if args.json:
        print_json(result)
    else:
        check = f", max |ORT - PyTorch| = {result['max_abs_difference']:.2e}" if "max_abs_difference" in result else ""
        console.print(f"wrote {result['path']} (opset {result['opset']}, arch id {result['arch_id']}{check})")
    return 0
