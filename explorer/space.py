"""Summaries of architectures for people and scripts: the library behind ``explorer space``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.architectures import NAMED_ARCHITECTURES, flat_space, name_of, resolve
from explorer.db import Database, resolve_stored
from search_spaces.base import ArchConfig, KnobError, arch_id


@dataclass(frozen=True)
class ArchitectureSummary:
    """What ``space presets`` and ``space show`` print about one architecture."""

    arch_id: str
    name: str | None
    space: str
    resolution: int
    params: int
    macs: int
    source: str | None = None
    kind: str | None = None
    exact: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "arch_id": self.arch_id, "name": self.name, "space": self.space, "kind": self.kind,
            "resolution": self.resolution, "params": self.params, "macs": self.macs,
            "macs_m": round(self.macs / 1e6, 2), "params_m": round(self.params / 1e6, 3),
            "source": self.source, "exact": self.exact,
        }


def summarize(config: ArchConfig, name: str | None = None) -> ArchitectureSummary:
    table = config.op_table()
    entry = NAMED_ARCHITECTURES.get(name) if name else None
    return ArchitectureSummary(
        arch_id=arch_id(config), name=name, space=config.space, resolution=config.resolution,
        params=table.params, macs=table.macs,
        source=entry.source if entry else None, kind=entry.kind if entry else None,
        exact=entry.exact if entry else True,
    )


def list_named(kinds: tuple[str, ...] = ("preset", "ablation", "toy")) -> list[ArchitectureSummary]:
    """Every named architecture at its default resolution."""
    return [summarize(entry.make(None), entry.name) for entry in NAMED_ARCHITECTURES.values()
            if entry.kind in kinds]


def describe(spec: str | Path | ArchConfig, resolution: int | None = None,
             database: Database | None = None) -> dict[str, Any]:
    """Stage table, per-stage params/MACs and op-class breakdown of one architecture (``spec`` may
    be an arch id of ``database``)."""
    config = resolve(spec, resolution) if database is None else resolve_stored(database, spec, resolution)
    name = spec if isinstance(spec, str) and spec in NAMED_ARCHITECTURES else name_of(config)
    table = config.op_table()
    stages = []
    for stage, agg in table.by_stage().items():
        rows = [r for r in table.rows if r.stage == stage]
        stages.append({
            "stage": stage, "params": agg["params"], "macs": agg["macs"], "ops": agg["ops"],
            "in_shape": list(rows[0].in_shape), "out_shape": list(rows[-1].out_shape),
        })
    return {
        **summarize(config, name).to_json(),
        "config": config.to_dict(),
        "stages": stages,
        "op_classes": {k: v for k, v in table.by_class().items() if v["ops"]},
    }


def sample_lines(n: int, seed: int, resolution: int = 224, space: str = "lowformer",
                 sampler: str = "random") -> Iterator[str]:
    """JSON lines of valid configs of ``space`` (``random`` or ``sobol``), each with its id."""
    if sampler not in ("random", "sobol"):
        raise KnobError("sampler", sampler, "random or sobol")
    knob_table = flat_space(space)
    draw = knob_table.sample if sampler == "random" else knob_table.sobol
    for config in draw(n, seed, resolution):
        yield json.dumps({"arch_id": arch_id(config), "space": config.space, **config.to_dict()},
                         sort_keys=True)


def export(spec: str | Path | ArchConfig, path: str | Path, resolution: int | None = None,
           opset: int | None = None, check: bool = True) -> dict[str, Any]:
    """Export to ONNX (``opset`` default: ``explorer.onnx_export.DEFAULT_OPSET``) and check the file
    against PyTorch with ONNX Runtime. torch loads here, not with the module, which lists and
    samples architectures without it."""
    from explorer.onnx_export import DEFAULT_OPSET, export_onnx, max_abs_difference

    opset = DEFAULT_OPSET if opset is None else opset
    config = resolve(spec, resolution)
    model = config.build()
    out = export_onnx(config, path, opset=opset, model=model)
    result: dict[str, Any] = {"arch_id": arch_id(config), "path": str(out), "opset": opset}
    if check:
        result["max_abs_difference"] = max_abs_difference(config, out, model=model)
    return result


def list_reference() -> list[dict[str, Any]]:
    """The reference networks (``explorer.reference``) with the published top-1 of their weights
    (``predictors.reference``) and params and MACs counted from their ONNX files; ``params`` and
    ``macs`` are None (``built`` False) until ``explorer space build-reference`` has exported them."""
    from explorer.reference import reference_networks
    from predictors.reference import reference_results

    published = {(r.model, r.resolution): r for r in reference_results()}
    rows = []
    for network in reference_networks():
        config = network.config()
        result = published.get((network.weights, network.resolution))
        built = config.onnx_path().is_file()
        table = config.op_table() if built else None
        rows.append({
            "arch_id": arch_id(config), "name": network.timm_model, "space": config.space, "kind": "reference",
            "family": network.family, "weights": network.weights, "resolution": network.resolution,
            "params": table.params if table else None, "macs": table.macs if table else None,
            "macs_m": round(table.macs / 1e6, 2) if table else None,
            "params_m": round(table.params / 1e6, 3) if table else None,
            "top1": result.top1 if result else None, "distilled": result.distilled if result else None,
            "extra_data": result.extra_data if result else None,
            "source": result.source if result else None, "built": built, "onnx": str(config.onnx_path()),
        })
    return rows
