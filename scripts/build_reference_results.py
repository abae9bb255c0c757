"""Build ``explorer/data/reference_results.csv``: published ImageNet-1k top-1 of efficient vision
networks, the reference evidence of the accuracy axis.

Source: the results tables of pytorch-image-models (timm), which evaluates every released
checkpoint on the ImageNet-1k validation set (``results/results-imagenet.csv``: model with its
weight tag, evaluation resolution, top-1, #params) and counts MACs per architecture and resolution
in its inference benchmark tables (``results/benchmark-infer-*.csv``, GMACs to two decimals).
Every row names the tables it comes from; re-running the script refreshes the file::

    python scripts/build_reference_results.py                      # from the public repository
    python scripts/build_reference_results.py --timm PATH/TO/pytorch-image-models --commit SHA

What is known of the training comes from the weight tag (timm's naming convention): ``dist``
(and ``usi``, a distilling recipe) marks knowledge distillation (so do the architectures of
``DISTILLED_ARCHITECTURES``, whose recipe distils whatever the tag), ``in12k`` / ``in21k`` / ``in22k`` / ``ig`` / ``jft`` / ``laion`` /
... extra pre-training data (self-supervised pre-training on ImageNet-1k itself, ``fcmae`` or
``mae``, is not extra data), ``e600`` or ``450e`` the epochs; timm's ``model_metadata-in1k.csv``
adds its pre-training label where it has one. MACs at a resolution the benchmark tables lack are
scaled quadratically from the nearest benchmarked resolution (``macs_basis`` says so).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "explorer" / "data" / "reference_results.csv"
DEFAULT_BASE = "https://raw.githubusercontent.com/huggingface/pytorch-image-models/main/results"
RESULTS = "results-imagenet.csv"
METADATA = "model_metadata-in1k.csv"
#: newest first: MACs are read from the first table that has the architecture at the resolution
BENCHMARKS = (
    "benchmark-infer-amp-nchw-pt291-cu130-pro6000maxq.csv",
    "benchmark-infer-amp-nchw-pt291-cu128-4090.csv",
    "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv",
    "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
    "benchmark-infer-amp-nchw-pt210-cu121-rtx3090.csv",
)
MAX_MACS_M = 10_000.0  # efficient networks and the sizes of the in-space evidence
EXTRA_DATA = re.compile(
    r"(in12k|in21k|in22k|ig1b|ig3b|_ig|^ig|jft|laion|openai|m38m|yfcc|swsl|ssl|wsl|ns_|_ns|semisl|cc12m|"
    r"dfn|metaclip|datacomp|merged|clip|lvd)")
DISTILLED = re.compile(r"(^|[_.])(dist|distilled)([_.]|$)|distill|(^|_)usi(_|$)")
#: recipes that distil although their weight tag does not say so, and why we know
DISTILLED_ARCHITECTURES = {"ghostnetv3": "GhostNetV3's training recipe distils from a larger teacher (its paper)"}
EPOCHS = re.compile(r"(?:^|_)(?:e(\d{2,4})|(\d{2,4})e)(?:_|$)")
#: timm's name of an architecture that is a preset of our spaces -> our preset name
IN_SPACE = {"efficientvit_b0": "efficientvit-b0", "efficientvit_b1": "efficientvit-b1",
            "efficientvit_b2": "efficientvit-b2", "efficientvit_b3": "efficientvit-b3"}
COLUMNS = ("model", "architecture", "tag", "resolution", "params_m", "macs_m", "macs_basis", "top1", "epochs",
           "distilled", "extra_data", "pretrain", "in_space", "source")


def _read(base: str, name: str) -> list[dict[str, str]]:
    if base.startswith(("http://", "https://")):
        with urllib.request.urlopen(f"{base}/{name}", timeout=60) as response:  # noqa: S310 (fixed https base)
            text = response.read().decode()
    else:
        text = (Path(base) / name).read_text()
    return list(csv.DictReader(io.StringIO(text)))


def _macs_tables(base: str) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """architecture -> {resolution: MACs (M)} and architecture -> the table that gave them."""
    macs: dict[str, dict[int, float]] = {}
    origin: dict[str, str] = {}
    for table in BENCHMARKS:
        try:
            rows = _read(base, table)
        except (OSError, FileNotFoundError):
            continue
        for row in rows:
            arch, res = row["model"], int(row["infer_img_size"])
            if arch in origin and origin[arch] != table:
                continue  # a newer table already gave this architecture
            macs.setdefault(arch, {})[res] = float(row["infer_gmacs"]) * 1000.0
            origin[arch] = table
    return macs, origin


def _macs_at(by_res: dict[int, float], resolution: int) -> tuple[float, str]:
    if resolution in by_res:
        return by_res[resolution], "benchmark table"
    nearest = min(by_res, key=lambda r: (abs(r - resolution), r))
    return by_res[nearest] * (resolution / nearest) ** 2, f"scaled quadratically from {nearest} px"


def _epochs(tag: str) -> str:
    match = EPOCHS.search(tag)
    return (match.group(1) or match.group(2)) if match else ""


def build_rows(base: str, commit: str = "") -> list[dict[str, object]]:
    macs, origin = _macs_tables(base)
    pretrain = {row["model"]: row["pretrain"] for row in _read(base, METADATA)}
    where = f" @ {commit[:12]}" if commit else ""
    rows = []
    for row in _read(base, RESULTS):
        arch, _, tag = row["model"].partition(".")
        if arch not in macs or arch.startswith("test_"):
            continue  # timm's test_* networks are unit-test fixtures, not published designs
        resolution = int(row["img_size"])
        value, basis = _macs_at(macs[arch], resolution)
        if value > MAX_MACS_M or value <= 0:
            continue
        label = pretrain.get(row["model"], pretrain.get(arch, ""))
        extra = EXTRA_DATA.search(tag)
        rows.append({
            "model": row["model"], "architecture": arch, "tag": tag, "resolution": resolution,
            "params_m": float(row["param_count"]), "macs_m": round(value, 1), "macs_basis": basis,
            "top1": float(row["top1"]), "epochs": _epochs(tag),
            "distilled": int(bool(DISTILLED.search(tag) or DISTILLED.search(arch) or label.endswith("-dist")
                                  or any(arch.startswith(a) for a in DISTILLED_ARCHITECTURES))),
            "extra_data": extra.group(1).strip("_") if extra else ("" if label in ("", "in1k", "in1k-dist") else label),
            "pretrain": label, "in_space": IN_SPACE.get(arch, ""),
            "source": f"pytorch-image-models{where}: results/{RESULTS} (top-1), results/{origin[arch]} (MACs)",
        })
    rows.sort(key=lambda r: (r["macs_m"], r["model"], r["resolution"]))
    return rows


def write(rows: Iterable[dict[str, object]], path: Path) -> int:
    rows = list(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timm", help="a local checkout of pytorch-image-models (default: read the public tables)")
    parser.add_argument("--commit", default="", help="the commit the tables come from, recorded in every row")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    base = str(Path(args.timm) / "results") if args.timm else DEFAULT_BASE
    rows = build_rows(base, args.commit)
    if not rows:
        print(f"no rows read from {base}", file=sys.stderr)
        return 1
    clean = sum(1 for r in rows if not r["distilled"] and not r["extra_data"])
    print(f"{write(rows, args.output)} rows ({clean} ImageNet-1k only, no distillation) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
