"""Published figures of a named architecture: top-1, latencies, and parameters and MACs.

LowFormer's figures come from ``explorer/data/published_reference.csv``. The other families'
published parameters and MACs ("FLOPs" in the FMViT and MCGA papers are MACs) are listed here,
as the family specification quotes them, so that a reconstruction's README can set them beside
our counts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from explorer.architectures import name_of
from search_spaces.base import ArchConfig

PUBLISHED_CSV = Path(__file__).parents[1] / "data" / "published_reference.csv"
PROVENANCES = ("measured", "predicted", "published")


@dataclass(frozen=True)
class LatencyRecord:
    """One latency figure and where it comes from (``provenance``: measured, predicted, published)."""

    device: str
    latency_ms: float
    provenance: str
    detail: str
    low_ms: float | None = None
    high_ms: float | None = None

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCES:
            raise ValueError(f"invalid provenance {self.provenance!r}; allowed: {', '.join(PROVENANCES)}")


@dataclass(frozen=True)
class PublishedSize:
    """Parameters (millions) and MACs (millions) a paper or README gives for a model at a resolution."""

    model: str
    resolution: int
    params_m: float | None
    macs_m: float | None
    source: str


_RELEASED = "EfficientViT README (mit-han-lab/efficientvit)"
_SEED = "EfficientViT seed paper (arXiv v1)"
_FMVIT = "FMViT Table 2"
_MCGA = "MCGA paper"

#: published sizes of the other families' presets (docs: other families, sections 2.4, 3.4, 4.5, 5)
FAMILY_SIZES: tuple[PublishedSize, ...] = (
    PublishedSize("efficientvit-b1", 224, 9.1, 520, _RELEASED),
    PublishedSize("efficientvit-b1", 256, 9.1, 680, _RELEASED),
    PublishedSize("efficientvit-b1", 288, 9.1, 860, _RELEASED),
    PublishedSize("efficientvit-b2", 224, 24, 1600, _RELEASED),
    PublishedSize("efficientvit-b2", 256, 24, 2100, _RELEASED),
    PublishedSize("efficientvit-b2", 288, 24, 2600, _RELEASED),
    PublishedSize("efficientvit-b3", 224, 49, 4000, _RELEASED),
    PublishedSize("efficientvit-b3", 256, 49, 5200, _RELEASED),
    PublishedSize("efficientvit-b3", 288, 49, 6500, _RELEASED),
    PublishedSize("efficientvit-seed", 192, 7.9, 304, _SEED),
    PublishedSize("efficientvit-seed-w1.2", 224, 10.9, 584, _SEED),
    PublishedSize("fmvit-t", 224, 2.0, 300, _FMVIT),
    PublishedSize("fmvit-s", 224, 6.4, 800, _FMVIT),
    PublishedSize("fmvit-m", 224, 12.8, 2000, _FMVIT),
    PublishedSize("fmvit-b", 224, 24.3, 4200, _FMVIT),
    PublishedSize("fmvit-l", 224, 35.3, 7100, _FMVIT),
    PublishedSize("mcga-paper", 224, 10.3, 700, _MCGA),
    PublishedSize("mcga-budget", 224, 10.3, 700, _MCGA),
)


def _csv_rows(name: str) -> list[dict[str, str]]:
    with PUBLISHED_CSV.open(newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["model"] == name]


def _published(config: ArchConfig, metric: str) -> list[dict[str, str]]:
    name = name_of(config)
    if name is None:
        return []
    return [r for r in _csv_rows(name) if int(r["resolution"]) == config.resolution and r["metric"] == metric]


def published_top1(config: ArchConfig) -> tuple[tuple[str, float], ...]:
    """The papers' ImageNet top-1 of a named architecture at its resolution, as labelled scores."""
    return tuple((f"ImageNet top-1 % (published: {r['source']})", float(r["value"]))
                 for r in _published(config, "top1"))


def published_latencies(config: ArchConfig) -> tuple[LatencyRecord, ...]:
    """The papers' latencies of a named architecture at its resolution (``published_reference.csv``)."""
    rows = _published(config, "latency_ms")
    return tuple(
        LatencyRecord(r["device"], float(r["value"]), "published",
                      f"published: {r['source']}" + (f" ({r['note']})" if r["note"] else ""))
        for r in rows
    )


def published_sizes(name: str) -> tuple[PublishedSize, ...]:
    """Every published (params, MACs) of the named model, at every resolution it was published at."""
    pairs: dict[tuple[int, str], dict[str, float]] = {}
    for r in _csv_rows(name):
        if r["metric"] in ("params_m", "macs_m"):
            pairs.setdefault((int(r["resolution"]), r["source"]), {})[r["metric"]] = float(r["value"])
    from_csv = tuple(PublishedSize(name, resolution, v.get("params_m"), v.get("macs_m"), source)
                     for (resolution, source), v in sorted(pairs.items()))
    return from_csv + tuple(size for size in FAMILY_SIZES if size.model == name)
