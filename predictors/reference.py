"""The published state of the art the accuracy axis is anchored in.

``explorer/data/reference_results.csv`` (built by ``scripts/build_reference_results.py`` from the
results tables of pytorch-image-models, every row naming its tables) holds the ImageNet-1k top-1,
#params and MACs of hundreds of published networks with what is known of their training. From
it this module answers two questions the surrogate and the search ask:

- **how far can a network of this size go?** :func:`best_published`: the best top-1 published at
  no more MACs (and, if given, no more #params), with the network that holds it;
- **how far past that does a new design go?** :func:`frontier_margin`: where the published
  networks end against the best of all *other* architectures at no more MACs (most end below
  it; 19 in 20 end at most this margin above it, which is floored at zero): the data's
  justification for how far a predicted mean may exceed the published frontier.

``one_knob_effects`` lists published changes of one knob of a published model (ablation tables
and resolution variants of the families' papers), whose spread is how uncertain a one-knob change
of a trained network is.

"Clean" results are ImageNet-1k training only: no distillation, no extra data.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

REFERENCE_FILE = "reference_results.csv"
ONE_KNOB_FILE = "one_knob_effects.csv"
REFERENCE_PROVENANCE = "reference"
#: the quantile of the frontier excesses that :func:`frontier_margin` returns (floored at 0)
MARGIN_QUANTILE = 0.95


@dataclass(frozen=True)
class ReferenceResult:
    """One published ImageNet-1k result of a network outside (or, ``in_space``, inside) our spaces."""

    model: str  # timm name with weight tag, e.g. ``mobilenetv3_large_100.ra_in1k``
    architecture: str
    resolution: int
    params_m: float
    macs_m: float
    top1: float
    epochs: int | None
    distilled: bool
    extra_data: str  # "" for ImageNet-1k only
    in_space: str  # the preset of our spaces this network is, or ""
    source: str

    @property
    def clean(self) -> bool:
        """ImageNet-1k training only, no distillation: comparable with what a user would train."""
        return not self.distilled and not self.extra_data

    @property
    def label(self) -> str:
        return f"{self.model} @ {self.resolution}"


@dataclass(frozen=True)
class OneKnobEffect:
    family: str
    change: str
    delta: float  # top-1 after minus before, points
    source: str


@lru_cache(maxsize=1)
def reference_results() -> tuple[ReferenceResult, ...]:
    """Every row of the shipped reference file, smallest MACs first."""
    text = (resources.files("explorer") / "data" / REFERENCE_FILE).read_text()
    return tuple(ReferenceResult(
        model=row["model"], architecture=row["architecture"], resolution=int(row["resolution"]),
        params_m=float(row["params_m"]), macs_m=float(row["macs_m"]), top1=float(row["top1"]),
        epochs=int(row["epochs"]) if row["epochs"] else None, distilled=row["distilled"] == "1",
        extra_data=row["extra_data"], in_space=row["in_space"], source=row["source"])
        for row in csv.DictReader(text.splitlines()))


def clean_reference(exclude_in_space: bool = True) -> tuple[ReferenceResult, ...]:
    """ImageNet-1k-only, undistilled results; without the networks that are presets of our spaces
    (they enter the surrogate as in-space evidence, with their own published figures)."""
    return tuple(r for r in reference_results() if r.clean and not (exclude_in_space and r.in_space))


@lru_cache(maxsize=1)
def reference_digest() -> str:
    """SHA-256 of the shipped reference files: what a fit anchored in them depends on."""
    data = resources.files("explorer") / "data"
    return hashlib.sha256(b"".join((data / name).read_bytes() for name in (REFERENCE_FILE, ONE_KNOB_FILE))).hexdigest()


@lru_cache(maxsize=1)
def one_knob_effects() -> tuple[OneKnobEffect, ...]:
    text = (resources.files("explorer") / "data" / ONE_KNOB_FILE).read_text()
    return tuple(OneKnobEffect(row["family"], row["change"], float(row["top1_after"]) - float(row["top1_before"]),
                               row["source"]) for row in csv.DictReader(text.splitlines()))


def one_knob_spread() -> float:
    """Root mean square of the published one-knob effects (top-1 points): the standard deviation
    of what changing one knob of a trained network does, before anyone has trained the change."""
    deltas = np.array([e.delta for e in one_knob_effects()])
    return float(np.sqrt(np.mean(deltas ** 2)))


def best_published(macs_m: Sequence[float] | np.ndarray, params_m: Sequence[float] | np.ndarray | None = None,
                   results: Sequence[ReferenceResult] | None = None) -> tuple[np.ndarray, list[str]]:
    """Per query: the best top-1 among ``results`` (default: the clean reference set, in-space
    networks included) with MACs <= the query's (and #params <= it, when given), and its label;
    NaN and "" where no published network is that small."""
    pool = clean_reference(exclude_in_space=False) if results is None else tuple(results)
    macs = np.atleast_1d(np.asarray(macs_m, dtype=np.float64))
    params = None if params_m is None else np.atleast_1d(np.asarray(params_m, dtype=np.float64))
    ref_macs = np.array([r.macs_m for r in pool])
    ref_params = np.array([r.params_m for r in pool])
    ref_top1 = np.array([r.top1 for r in pool])
    allowed = ref_macs[None, :] <= macs[:, None] * (1 + 1e-9)
    if params is not None:
        allowed &= ref_params[None, :] <= params[:, None] * (1 + 1e-9)
    masked = np.where(allowed, ref_top1[None, :], -np.inf)
    best = masked.argmax(axis=1) if len(pool) else np.zeros(len(macs), dtype=int)
    found = np.isfinite(masked.max(axis=1)) if len(pool) else np.zeros(len(macs), dtype=bool)
    values = np.where(found, ref_top1[best] if len(pool) else np.nan, np.nan)
    return values, [pool[i].label if ok else "" for i, ok in zip(best, found)]


def frontier_excesses(results: Sequence[ReferenceResult] | None = None) -> np.ndarray:
    """For every network with another architecture at no more MACs: its top-1 minus
    the best of those (points; negative where it ends below them). Resolution variants and other
    weights of the same architecture are not "other": a design is measured against the designs it
    could have been compared with."""
    pool = clean_reference() if results is None else tuple(results)
    out = []
    for r in pool:
        others = [o.top1 for o in pool if o.architecture != r.architecture and o.macs_m <= r.macs_m]
        if others:
            out.append(r.top1 - max(others))
    return np.array(out)


@lru_cache(maxsize=1)
def frontier_margin() -> float:
    """How far a predicted mean may exceed the best published result at no more MACs: the
    ``MARGIN_QUANTILE`` (19 in 20) quantile of :func:`frontier_excesses`, never below zero (a
    mean may reach the published frontier)."""
    excess = frontier_excesses()
    return max(float(np.quantile(excess, MARGIN_QUANTILE)), 0.0) if len(excess) else 0.0


def pareto_frontier(results: Sequence[ReferenceResult] | None = None) -> tuple[ReferenceResult, ...]:
    """The published networks that no other beats at no more MACs (top-1 against MACs), for plots."""
    pool = sorted(clean_reference(exclude_in_space=False) if results is None else results,
                  key=lambda r: (r.macs_m, -r.top1))
    front, best = [], -np.inf
    for r in pool:
        if r.top1 > best:
            front.append(r)
            best = r.top1
    return tuple(front)
