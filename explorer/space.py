"""Summaries of architectures for people and scripts: the library behind ``explorer space``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.architectures import NAMED_ARCHITECTURES, flat_space, name_of, resolve
from search_spaces.base import ArchConfig, KnobError, arch_id

if TYPE_CHECKING:  # listing and sampling the spaces opens no database: SQLAlchemy loads where one is used
    from explorer.db import Database


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
    if database is None:
        config = resolve(spec, resolution)
    else:
        from explorer.db import resolve_stored

        config = resolve_stored(database, spec, resolution)
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
    from explorer.onnx_export import DEFAULT_OPSET, export_onnx, max_abs_difference, pre_exported

    opset = DEFAULT_OPSET if opset is None else opset
    config = resolve(spec, resolution)
    if pre_exported(config) is not None:  # a reference network: its file, as timm's environment wrote it
        if opset != DEFAULT_OPSET:
            raise KnobError("opset", opset, f"{DEFAULT_OPSET}, at which the reference networks are exported")
        return {"arch_id": arch_id(config), "path": str(export_onnx(config, path)), "opset": DEFAULT_OPSET}
    model = config.build()
    out = export_onnx(config, path, opset=opset, model=model)
    result: dict[str, Any] = {"arch_id": arch_id(config), "path": str(out), "opset": opset}
    if check:
        result["max_abs_difference"] = max_abs_difference(config, out, model=model)
    return result



def _published(counted: bool) -> list[dict[str, Any]]:
    """The reference networks with the published top-1 of their weights; with ``counted``, params
    and MACs from their ONNX files (None until built)."""
    from explorer.reference import reference_networks
    from predictors.reference import reference_results

    published = {(r.model, r.resolution): r for r in reference_results()}
    rows = []
    for network in reference_networks():
        config = network.config()
        result = published.get((network.weights, network.resolution))
        row = {"arch_id": arch_id(config), "name": network.timm_model, "space": config.space, "kind": "reference",
               "family": network.family, "weights": network.weights, "resolution": network.resolution,
               "top1": result.top1 if result else None, "distilled": result.distilled if result else None,
               "extra_data": result.extra_data if result else None, "source": result.source if result else None}
        if counted:
            built = config.onnx_path().is_file()
            table = config.op_table() if built else None
            row.update(params=table.params if table else None, macs=table.macs if table else None,
                       macs_m=round(table.macs / 1e6, 2) if table else None,
                       params_m=round(table.params / 1e6, 3) if table else None,
                       built=built, onnx=str(config.onnx_path()))
        rows.append(row)
    return rows


def list_reference() -> list[dict[str, Any]]:
    """The reference networks (``explorer.reference``) with the published top-1 of their weights
    (``predictors.reference``) and params and MACs counted from their ONNX files; ``params`` and
    ``macs`` are None (``built`` False) until ``explorer space build-reference`` has exported them."""
    return _published(counted=True)


def reference_within_budget(database: Database, device: str, budget_ms: float) -> dict[str, Any]:
    """The reference networks measured on ``device`` (its default backend, batch and threads; rows
    of a busy machine left out) whose median latency is within ``budget_ms``, fastest first, each
    with the published top-1 of its weights and its stored params and MACs, and the most accurate
    of them (``best``). ``message`` says how many are measured there and how to measure the rest."""
    from sqlalchemy import select

    from explorer.db import Architecture, ok_measurements, resolve_device

    networks = {row["name"]: row for row in _published(counted=False)}
    with database.session() as session:
        profile = resolve_device(session, device)
        stored = {a.arch_id: a for a in session.scalars(select(Architecture).where(Architecture.space == "reference"))}
        rows = [m for m in ok_measurements(session, profile, profile.backend, profile.default_batch,
                                           profile.default_threads)
                if m.arch_id in stored and m.metric == "latency_ms" and m.median_ms is not None]
        found = {m.arch_id: _at_resolution(networks[stored[m.arch_id].config_json["model"]], stored[m.arch_id])
                 for m in rows}
    within = sorted(({**found[m.arch_id],
                      "latency_ms": round(m.median_ms, 3),
                      "latency_ci_ms": None if m.ci_low_ms is None else [round(m.ci_low_ms, 3), round(m.ci_high_ms, 3)],
                      "latency": f"measured on {profile.name} ({m.backend}, batch {m.batch}, "
                                 f"{m.threads or 'default'} threads)"}
                     for m in rows if m.median_ms <= budget_ms), key=lambda r: r["latency_ms"])
    ranked = [r for r in within if r["top1"] is not None]
    best = max(ranked, key=lambda r: r["top1"]) if ranked else None
    if not rows:
        message = (f"no reference network is measured on {profile.name}: `explorer measure --space reference "
                   f"--device {profile.name}` measures them (a board: explorer bundle or --ssh)")
    else:
        message = (f"{len(within)} of the {len(rows)} reference networks measured on {profile.name} fit "
                   f"{budget_ms:g} ms" + (f"; {len(networks) - len(rows)} are not measured there"
                                          if len(rows) < len(networks) else ""))
    return {"device": profile.name, "budget_ms": budget_ms, "measured": len(rows), "listed": len(networks),
            "within_budget": within, "best": best, "message": message}


def _at_resolution(published: dict[str, Any], stored: Any) -> dict[str, Any]:
    """A reference network as stored (arch id, resolution, params, MACs); its published top-1 holds
    only at the resolution it was published for."""
    same = stored.resolution == published["resolution"]
    return {**published, "arch_id": stored.arch_id, "resolution": stored.resolution, "params": stored.params,
            "macs": stored.macs, "top1": published["top1"] if same else None,
            "distilled": published["distilled"] if same else None}
