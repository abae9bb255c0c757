"""The hardware study of the LowFormer papers, re-run on any device (docs: hardware study).

Four experiments, each a set of toy models measured by an ordinary campaign (locally, or on a
remote device through a transport) and stored like any other measurement, then summarised:

- ``depthwise``: toy-conv-1..6, MACs, latency and ms per GMAC (standard versus depthwise convs);
- ``fused-mbconv``: time(fused) / time(unfused) and MACs(fused) / MACs(unfused) over a grid of
  channels x resolutions, also as two side-by-side heatmaps (:func:`render_heatmaps`);
- ``resolution``: seven pairs of 20-conv stacks of about equal MACs, high resolution versus many
  channels, relative latency and throughput;
- ``attention``: four attention variants at several feature-map sides.

Published values from ``explorer/data/published_reference.csv`` stand beside the measured ones,
labelled as such. The full grids hold very large models (a fused MBConv stack of 512 channels at
224 px is over 1 TMAC), so every model is timed for at most ``time_limit_s`` after its warm-up
and models above ``max_gmacs`` are listed but not measured; ``quick`` picks smaller grids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from explorer.db import Database, ok_measurements
from explorer.devices import published_rows
from explorer.measure.campaign import DRIFT_CHECK, CampaignSpec, Transport, plan_campaign, run_campaign
from explorer.measure.protocol import ProtocolSettings
from search_spaces.base import ArchConfig, KnobError, arch_id
from search_spaces.toys import (
    ATTENTION_RESOLUTIONS,
    ATTENTION_VARIANTS,
    MBCONV_GRID_CHANNELS,
    MBCONV_GRID_RESOLUTIONS,
    RESOLUTION_SCENARIOS,
    TOY_CONV_MODELS,
    TOY_CONV_PAIRS,
    AttentionStackConfig,
    ConvStackConfig,
    MBConvStackConfig,
)

#: published latency profiles shown beside the measured figures -> short column labels
PUBLISHED_DEVICES = {"raspi5-ort": "raspi5", "jetson-tx2-trt": "jetson-tx2", "iphone13-coreml": "iphone13",
                     "titanrtx-torchscript-b1": "titanrtx"}
STUDY_SAMPLER = "study"
GIGA = 1e9


@dataclass(frozen=True)
class StudyOptions:
    """Grid and timing of a study run. ``None`` grids mean the published ones."""

    resolutions: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None
    expansion: int = 4
    layers: int = 20
    max_gmacs: float = 25.0
    threads: int | None = None
    force: bool = False
    drift_check: tuple[str, ...] = DRIFT_CHECK
    protocol: ProtocolSettings = ProtocolSettings(block_size=5, reference_block_size=3, min_samples=10,
                                                  max_samples=100, time_limit_s=2.0)

    @classmethod
    def make(cls, kind: str, *, quick: bool = False, resolutions: Sequence[int] | None = None,
             channels: Sequence[int] | None = None, time_limit_s: float | None = None,
             threads: int | None = None, force: bool = False, max_gmacs: float | None = None) -> StudyOptions:
        """The defaults for ``kind``; ``quick`` is a few minutes on 2 CPU cores: smaller grids,
        2 instead of 20 convs per resolution stack (the MAC ratios of a pair do not change),
        shorter timing and no drift-check presets."""
        _check_kind(kind)
        base = cls()
        if quick:
            base = cls(resolutions=QUICK_RESOLUTIONS.get(kind), channels=QUICK_CHANNELS.get(kind), layers=2,
                       max_gmacs=5.0, drift_check=(),
                       protocol=ProtocolSettings(warmup=2, block_size=3, reference_block_size=2, min_samples=6,
                                                 max_samples=30, time_limit_s=0.5))
        protocol = base.protocol if time_limit_s is None else dataclasses.replace(base.protocol,
                                                                                 time_limit_s=time_limit_s)
        return dataclasses.replace(
            base, resolutions=tuple(resolutions) if resolutions else base.resolutions,
            channels=tuple(channels) if channels else base.channels, threads=threads, force=force,
            protocol=protocol, max_gmacs=base.max_gmacs if max_gmacs is None else max_gmacs)


QUICK_RESOLUTIONS = {"fused-mbconv": (7, 28, 112), "attention": (8, 16, 32)}
QUICK_CHANNELS = {"fused-mbconv": (16, 64, 256)}


@dataclass(frozen=True)
class StudyModel:
    """A model of a study and its place in the tables (``role``: plain JSON values)."""

    config: ArchConfig
    role: dict[str, Any]

    @property
    def gmacs(self) -> float:
        return self.config.op_table().macs / GIGA


@dataclass(frozen=True)
class StudyResult:
    """One study run: a row per table line (plain JSON values; ``None`` where a model was not
    measured) and notes on what was chosen or left out."""

    kind: str
    device: str
    backend: str
    batch: int
    threads: int | None
    rows: tuple[dict[str, Any], ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_kind(kind: str) -> None:
    if kind not in STUDIES:
        raise KnobError("study", kind, "one of " + ", ".join(STUDIES))


def _depthwise_models(options: StudyOptions) -> list[StudyModel]:
    return [StudyModel(config, {"name": name}) for name, config in TOY_CONV_MODELS.items()]


def _fused_models(options: StudyOptions) -> list[StudyModel]:
    return [StudyModel(MBConvStackConfig(channels=c, fused=fused, expansion=options.expansion, resolution=r),
                       {"channels": c, "resolution": r, "fused": fused})
            for r in options.resolutions or MBCONV_GRID_RESOLUTIONS
            for c in options.channels or MBCONV_GRID_CHANNELS
            for fused in (True, False)]


def _resolution_models(options: StudyOptions) -> list[StudyModel]:
    return [StudyModel(ConvStackConfig(channels=c, layers=options.layers, resolution=r),
                       {"scenario": i, "side": side, "resolution": r, "channels": c})
            for i, pair in enumerate(RESOLUTION_SCENARIOS, 1) for side, (r, c) in zip("ab", pair)]


def _attention_models(options: StudyOptions) -> list[StudyModel]:
    return [StudyModel(AttentionStackConfig(resolution=r, **knobs), {"variant": variant, "resolution": r})
            for variant, knobs in ATTENTION_VARIANTS.items()
            for r in options.resolutions or ATTENTION_RESOLUTIONS]


def study_models(kind: str, options: StudyOptions) -> list[StudyModel]:
    """The toy models of study ``kind`` under ``options``."""
    _check_kind(kind)
    return STUDIES[kind][0](options)


def _published(model: str, resolution: int) -> dict[str, float]:
    """Published latency (ms) per device of a named toy model, and its published MACs."""
    out = {}
    for row in published_rows():
        if row.model == model and row.resolution == resolution:
            if row.metric == "latency_ms" and row.device in PUBLISHED_DEVICES:
                out[row.device] = row.value
            elif row.metric == "macs_m":
                out["macs_m"] = row.value
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


#: the stored median latency (ms) of a model, None if not measured
LatencyOf = Callable[[StudyModel], float | None]


def _depthwise_rows(models: list[StudyModel], latency_of: LatencyOf) -> list[dict]:
    partner = {a: b for pair in TOY_CONV_PAIRS for a, b in (pair, pair[::-1])}
    by_name = {m.role["name"]: m for m in models}
    rows = []
    for model in models:
        name, config = model.role["name"], model.config
        other = by_name[partner[name]]
        latency = latency_of(model)
        per_gmac = _ratio(latency, model.gmacs)
        published = _published(name, config.resolution)
        rows.append({"name": name, "depthwise": config.depthwise, "channels": list(config.channels),
                     "layers": list(config.layers), "macs_m": model.gmacs * 1e3, "latency_ms": latency,
                     "ms_per_gmac": per_gmac,
                     "ms_per_gmac_vs_partner": _ratio(per_gmac, _ratio(latency_of(other), other.gmacs)),
                     "published_macs_m": published.pop("macs_m", None), "published_latency_ms": published})
    return rows


def _fused_rows(models: list[StudyModel], latency_of: LatencyOf) -> list[dict]:
    cells: dict[tuple[int, int], dict[bool, StudyModel]] = {}
    for model in models:
        cells.setdefault((model.role["resolution"], model.role["channels"]), {})[model.role["fused"]] = model
    rows = []
    for (resolution, channels), pair in cells.items():
        fused, unfused = pair[True], pair[False]
        rows.append({"resolution": resolution, "channels": channels, "fused_ms": latency_of(fused),
                     "unfused_ms": latency_of(unfused), "fused_gmacs": fused.gmacs, "unfused_gmacs": unfused.gmacs,
                     "time_ratio": _ratio(latency_of(fused), latency_of(unfused)),
                     "macs_ratio": _ratio(fused.gmacs, unfused.gmacs)})
    return rows


def _resolution_rows(models: list[StudyModel], latency_of: LatencyOf) -> list[dict]:
    rows = []
    for a, b in zip(models[::2], models[1::2]):
        latency = _ratio(latency_of(b), latency_of(a))
        rows.append({"scenario": a.role["scenario"], "a": [a.role["resolution"], a.role["channels"]],
                     "b": [b.role["resolution"], b.role["channels"]], "a_gmacs": a.gmacs, "b_gmacs": b.gmacs,
                     "a_ms": latency_of(a), "b_ms": latency_of(b), "latency_b_over_a": latency,
                     "throughput_b_over_a": _ratio(1.0, latency)})
    return rows


def _attention_rows(models: list[StudyModel], latency_of: LatencyOf) -> list[dict]:
    mhsa = {m.role["resolution"]: latency_of(m) for m in models if m.role["variant"] == "mhsa"}
    rows = []
    for model in models:
        variant, resolution = model.role["variant"], model.role["resolution"]
        published = _published(f"attention-stack-{variant}", resolution)
        published.pop("macs_m", None)
        relative = _ratio(latency_of(model), mhsa.get(resolution))
        rows.append({"variant": variant, "resolution": resolution, "macs_m": model.gmacs * 1e3,
                     "latency_ms": latency_of(model), "vs_mhsa": None if relative is None else relative - 1.0,
                     "published_latency_ms": published})
    return rows


#: study name -> (models of the options, rows from the models and their measured latency)
STUDIES: dict[str, tuple[Callable[[StudyOptions], list[StudyModel]],
                         Callable[[list[StudyModel], LatencyOf], list[dict]]]] = {
    "depthwise": (_depthwise_models, _depthwise_rows),
    "fused-mbconv": (_fused_models, _fused_rows),
    "resolution": (_resolution_models, _resolution_rows),
    "attention": (_attention_models, _attention_rows),
}


def run_study(kind: str, device: str, database: Database, options: StudyOptions | None = None, *,
              transport: Transport | None = None, show_progress: bool = False) -> StudyResult:
    """Measure the models of study ``kind`` on ``device`` (skipping those already stored with
    the same settings unless ``options.force``), store them, and summarise them."""
    _check_kind(kind)
    options = options or StudyOptions.make(kind)
    spec, samplers = _campaign(kind, device, options)
    run_campaign(database, spec, transport=transport, samplers=samplers, show_progress=show_progress)
    result = summarize_study(kind, device, database, options)
    timing = (f"each model timed for at most {options.protocol.time_limit_s:g} s after "
              f"{options.protocol.warmup} warm-up runs (median of the timed runs)")
    return dataclasses.replace(result, notes=(timing, *result.notes))


def summarize_study(kind: str, device: str, database: Database, options: StudyOptions | None = None) -> StudyResult:
    """The tables of study ``kind`` from what is stored for ``device`` (nothing is measured);
    models without a stored measurement have ``None`` figures."""
    _check_kind(kind)
    options = options or StudyOptions.make(kind)
    models = study_models(kind, options)
    spec, samplers = _campaign(kind, device, dataclasses.replace(options, force=True))
    plan = plan_campaign(database, spec, samplers)
    with database.session() as session:
        medians = {row.arch_id: row.median_ms
                   for row in ok_measurements(session, plan.device, plan.backend, plan.batch, plan.threads)}
    rows = STUDIES[kind][1](models, lambda model: medians.get(arch_id(model.config)))
    unmeasured = [m for m in models if arch_id(m.config) not in medians]
    over = sum(m.gmacs > options.max_gmacs for m in unmeasured)
    missing = len(unmeasured) - over
    notes = []
    if over:
        notes.append(f"{over} models above {options.max_gmacs:g} GMACs are not measured (raise max_gmacs, "
                     "--max-gmacs, to include them)")
    if missing:
        notes.append(f"{missing} models have no successful measurement")
    if kind == "resolution" and options.layers != 20:
        notes.append(f"{options.layers} convs per stack instead of 20: the MACs of each pair scale alike")
    if kind == "depthwise":
        notes.append("toy-conv layers per stage are a reconstruction fitted to the published MACs")
    return StudyResult(kind, plan.device, plan.backend, plan.batch, plan.threads, tuple(rows), tuple(notes))


def _campaign(kind: str, device: str, options: StudyOptions) -> tuple[CampaignSpec, dict]:
    """The campaign measuring the affordable models of a study, and its sampler table."""
    affordable = [m.config for m in study_models(kind, options) if m.gmacs <= options.max_gmacs]
    spec = CampaignSpec(device=device, n=None, sampler=STUDY_SAMPLER, threads=options.threads,
                        force=options.force, name=f"study-{kind}", protocol=options.protocol,
                        drift_check=options.drift_check)
    return spec, {STUDY_SAMPLER: lambda request: list(affordable)}


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def study_tables(result: StudyResult) -> list[Table]:
    """The paper-style tables of a study result (rich)."""
    caption = (f"measured on {result.device} ({result.backend}, batch {result.batch}, threads "
               f"{result.threads or 'default'}); " + "; ".join(result.notes))
    tables = TABLES[result.kind](result)
    for table in tables:
        table.caption = caption
    return tables


def _published_columns(table: Table) -> None:
    for label in PUBLISHED_DEVICES.values():
        table.add_column(f"published {label} ms", justify="right", style="dim")


def _depthwise_tables(result: StudyResult) -> list[Table]:
    table = Table(title="depthwise versus standard convolutions (toy-conv)")
    for column in ("model", "convs", "MACs (M)", "published MACs (M)", "latency ms", "ms / GMAC",
                   "ms/GMAC vs partner"):
        table.add_column(column, justify="left" if column in ("model", "convs") else "right")
    _published_columns(table)
    for row in result.rows:
        table.add_row(row["name"], "depthwise" if row["depthwise"] else "standard", _fmt(row["macs_m"], ".0f"),
                      _fmt(row["published_macs_m"], ".0f"), _fmt(row["latency_ms"], ".3f"),
                      _fmt(row["ms_per_gmac"], ".2f"), _fmt(row["ms_per_gmac_vs_partner"], ".2f"),
                      *(_fmt(row["published_latency_ms"].get(d)) for d in PUBLISHED_DEVICES))
    return [table]


def _grid(result: StudyResult, key: str, title: str) -> Table:
    channels = sorted({r["channels"] for r in result.rows})
    table = Table(title=title)
    table.add_column("resolution \\ channels")
    for c in channels:
        table.add_column(str(c), justify="right")
    cells = {(r["resolution"], r["channels"]): r[key] for r in result.rows}
    for resolution in sorted({r["resolution"] for r in result.rows}):
        table.add_row(str(resolution), *(_fmt(cells.get((resolution, c))) for c in channels))
    return table


def _fused_tables(result: StudyResult) -> list[Table]:
    return [_grid(result, "time_ratio", "time(fused) / time(unfused)"),
            _grid(result, "macs_ratio", "MACs(fused) / MACs(unfused)")]


def _resolution_tables(result: StudyResult) -> list[Table]:
    table = Table(title="high resolution (a) versus many channels (b) at about equal MACs")
    for column in ("scenario", "a: res x ch", "b: res x ch", "GMACs a", "GMACs b", "ms a", "ms b",
                   "latency b/a", "throughput b/a"):
        table.add_column(column, justify="right")
    for row in result.rows:
        table.add_row(str(row["scenario"]), "{} x {}".format(*row["a"]), "{} x {}".format(*row["b"]),
                      _fmt(row["a_gmacs"]), _fmt(row["b_gmacs"]), _fmt(row["a_ms"], ".3f"), _fmt(row["b_ms"], ".3f"),
                      _fmt(row["latency_b_over_a"]), _fmt(row["throughput_b_over_a"]))
    return [table]


def _attention_tables(result: StudyResult) -> list[Table]:
    table = Table(title="cheaper multi-head self-attention (4 layers, 128 channels)")
    for column in ("variant", "side", "MACs (M)", "latency ms", "vs mhsa"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    _published_columns(table)
    for row in result.rows:
        table.add_row(row["variant"], str(row["resolution"]), _fmt(row["macs_m"], ".1f"),
                      _fmt(row["latency_ms"], ".3f"), _fmt(row["vs_mhsa"], "+.0%"),
                      *(_fmt(row["published_latency_ms"].get(d)) for d in PUBLISHED_DEVICES))
    return [table]


TABLES: dict[str, Callable[[StudyResult], list[Table]]] = {
    "depthwise": _depthwise_tables,
    "fused-mbconv": _fused_tables,
    "resolution": _resolution_tables,
    "attention": _attention_tables,
}


def render_heatmaps(result: StudyResult, path: str | Path) -> Path:
    """Write the fused/unfused time and MAC ratios as two side-by-side heatmaps to a
    self-contained HTML file (plotly.js embedded: it opens offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if result.kind != "fused-mbconv":
        raise ValueError(f"heatmaps show the fused-mbconv study, not {result.kind!r}")
    channels = sorted({r["channels"] for r in result.rows})
    resolutions = sorted({r["resolution"] for r in result.rows})
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.15,
                           subplot_titles=("time(fused) / time(unfused)", "MACs(fused) / MACs(unfused)"))
    for col, (key, scale) in enumerate((("time_ratio", "RdBu_r"), ("macs_ratio", "Oranges")), 1):
        cells = {(r["resolution"], r["channels"]): r[key] for r in result.rows}
        z = [[cells.get((res, c)) for c in channels] for res in resolutions]
        text = [["not measured" if v is None else f"{v:.2f}" for v in line] for line in z]
        figure.add_trace(go.Heatmap(
            z=z, x=[str(c) for c in channels], y=[str(r) for r in resolutions], text=text,
            texttemplate="%{text}", colorscale=scale, zmid=1.0 if key == "time_ratio" else None,
            colorbar={"x": 0.43 if col == 1 else 1.0, "len": 0.9}, name=key,
            hovertemplate="channels %{x}, resolution %{y}: %{text}<extra></extra>"), row=1, col=col)
        figure.update_xaxes(title_text="input channels", type="category", row=1, col=col)
        figure.update_yaxes(title_text="resolution", type="category", row=1, col=col)
    figure.update_layout(title=f"Fused versus unfused MBConv on {result.device} ({result.backend}, "
                               f"batch {result.batch})", width=1200, height=520)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


__all__ = ["PUBLISHED_DEVICES", "STUDIES", "StudyModel", "StudyOptions", "StudyResult", "render_heatmaps",
           "run_study", "study_models", "study_tables", "summarize_study"]
