"""Export an architecture as a self-contained package for a training repository.

A package is a directory with ``model.py`` (plain PyTorch, generated from the sources of the
family's builder so that it can never drift from what was searched and measured),
``config.json``, ``model.onnx`` and a ``README.md`` that states every latency with its provenance,
whether the architecture is a reconstruction (published sizes beside ours), and the training
recipe of the nearest published LowFormer, or which paper to follow for the other families.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from explorer.architectures import NAMED_ARCHITECTURES, name_of
from explorer.export.families import EXPORT_FAMILIES, ExportFamily, export_family
from explorer.export.model_source import model_name, model_sources, standalone_model_source
from explorer.export.published import (
    LatencyRecord,
    PublishedSize,
    published_latencies,
    published_sizes,
    published_top1,
)
from explorer.export.recipes import COMMON_RECIPE, TRAINING_RECIPES
from explorer.onnx_export import DEFAULT_OPSET, export_onnx
from explorer.search.nearest import nearest_preset
from search_spaces.base import ArchConfig
from search_spaces.base import arch_id as compute_arch_id
from search_spaces.fmvit import FMViTConfig

TEMPLATES = Path(__file__).with_name("templates")

__all__ = [
    "EXPORT_FAMILIES", "ExportFamily", "ExportItem", "ExportResult", "LatencyRecord", "PublishedSize",
    "export_family", "export_many", "export_package", "inference_form", "model_name", "model_sources",
    "published_latencies", "published_sizes", "published_top1", "readme_text", "standalone_model_source",
]


@dataclass(frozen=True)
class ExportItem:
    """What to export: a config, the directory name, where it came from and what is known about it."""

    label: str
    config: ArchConfig
    source: str
    latencies: tuple[LatencyRecord, ...] = ()
    scores: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ExportResult:
    label: str
    arch_id: str
    directory: Path
    ok: bool
    error: str | None = None
    files: tuple[str, ...] = field(default=())


def inference_form(config: ArchConfig) -> ArchConfig:
    """The network that deploys: an FMViT training form fused, any other config as it is."""
    return config.fused() if isinstance(config, FMViTConfig) else config


def _format_latency(record: LatencyRecord) -> str:
    interval = "" if record.low_ms is None else f" ({record.low_ms:.1f} to {record.high_ms:.1f})"
    return f"| {record.device} | {record.latency_ms:.2f}{interval} | {record.provenance} | {record.detail} |"


def _latency_section(records: Sequence[LatencyRecord]) -> str:
    if not records:
        return "No latency is known for this architecture yet (measure it with `explorer measure`)."
    rows = "\n".join(_format_latency(r) for r in sorted(records, key=lambda r: (r.device, r.provenance)))
    return ("Each number says what it is: *measured* (by this tool, with the protocol named), "
            "*predicted* (by a latency model, with its interval) or *published* (copied from a paper).\n\n"
            "| device | latency ms | provenance | how |\n|---|---|---|---|\n" + rows)


def _accuracy_section(scores: Sequence[tuple[str, float]]) -> str:
    if not scores:
        return "No accuracy is known: none has been measured or predicted for this architecture."
    rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in scores)
    return ("None of these is a trained accuracy unless it says so; proxies rank architectures, "
            "they do not predict top-1.\n\n| score | value |\n|---|---|\n" + rows)


def _size(params: float | None, macs: float | None) -> str:
    return f"{'-' if params is None else f'{params:g} M'} / {'-' if macs is None else f'{macs:g} M'}"


def _ours(config: ArchConfig) -> str:
    table = inference_form(config).op_table()
    return f"{table.params:,} / {table.macs / 1e6:.2f} M"


def _size_section(config: ArchConfig, family: ExportFamily) -> str:
    """Published parameters and MACs beside ours; for a reconstruction, also says that it is one."""
    name, deployed = name_of(config), inference_form(config)
    reconstructed = family.reconstruction or (name is not None and not NAMED_ARCHITECTURES[name].exact)
    reference = name_of(deployed) or nearest_preset(deployed)[0]
    sizes = published_sizes(reference)
    if not reconstructed and not sizes:
        return ""
    lead = ""
    if family.reconstruction:
        lead = (f"**Reconstruction.** The published {family.title} models were rebuilt from the paper's text "
                "(no code was released for them); counts under this reconstruction are exact for it, not "
                "verified counts of the authors' network. ")
    elif reconstructed:
        lead = f"**Reconstruction.** {NAMED_ARCHITECTURES[name].source}. "
    rows = [f"| {s.model} @ {s.resolution} | {_size(s.params_m, s.macs_m)} ({s.source}) | "
            f"{_ours(NAMED_ARCHITECTURES[reference].make(s.resolution))} |" for s in sizes]
    if not sizes:
        rows.append(f"| {reference} | none published | {_ours(NAMED_ARCHITECTURES[reference].make(None))} |")
    itself = reference == name_of(deployed)
    if not itself or all(s.resolution != config.resolution for s in sizes):
        rows.append(f"| this architecture @ {config.resolution} | - | {_ours(config)} |")
    what = "this model" if itself else f"the nearest published model, {reference}"
    return (f"## {'Reconstruction' if reconstructed else 'Published size'}\n\n{lead}Parameters and MACs of "
            f"{what}, published and ours (inference form; params exact, MACs in millions):\n\n"
            "| model | published params / MACs | ours params / MACs |\n|---|---|---|\n" + "\n".join(rows) + "\n\n")


def _form_section(config: ArchConfig) -> str:
    if not isinstance(config, FMViTConfig):
        return ""
    if config.form == "inference":
        return ("## Form\n\nThis is FMViT's fused inference form: every conv is a single conv with bias. To train "
                "with the reparameterisation branches, export the training form (`explorer export ... --form "
                "train`); its `model.fuse()` has this model's state-dict keys.\n\n")
    return ("## Form\n\nThis is FMViT's **training form**: every conv is a sum of conv+BN branches (multi-group "
            f"1x1 branches for G in {set(config.multi_groups)}, asymmetric and 1x1 branches, identity BNs), and the "
            "MLPs and the head have a BatchNorm before their first layer. Train it as it is; afterwards fold the "
            "branches away:\n\n```python\nfused = model.eval().fuse()   # inference form, same outputs in eval "
            "mode\ntorch.save(fused.state_dict(), \"fused.pt\")  # loads into the inference-form export\n```\n\n"
            "`model.onnx` is the **fused inference form** (what deploys and what latency is measured on); "
            "export your trained network the same way with `torch.onnx.export(model.eval().fuse(), ...)`.\n\n")


def _training_section(config: ArchConfig, family: ExportFamily) -> str:
    nearest, distance = nearest_preset(inference_form(config))
    if nearest in TRAINING_RECIPES:
        rows = [*TRAINING_RECIPES[nearest].as_rows(), *COMMON_RECIPE.items()]
        return Template((TEMPLATES / "recipe.md.tmpl").read_text()).substitute(
            nearest=nearest, distance=f"{distance:.2f}", recipe_rows="\n".join(f"| {k} | {v} |" for k, v in rows))
    return (f"## Training recipe\n\nNo training recipe is shipped for {family.title}, and none is made up here. "
            f"{family.training} The nearest published model of the family is {nearest} (knob distance "
            f"{distance:.2f}).\n")


def readme_text(item: ExportItem, params: int, macs: int) -> str:
    config = item.config
    family = export_family(config.space)
    form = f" ({config.form} form)" if isinstance(config, FMViTConfig) else ""
    keys = family.stages(config.to_dict()).module_name()
    return Template((TEMPLATES / "README.md.tmpl").read_text()).substitute(
        title=item.label, family=family.title, arch_id=config.arch_id, resolution=config.resolution, form=form,
        params_m=f"{params / 1e6:.2f}", macs_m=f"{macs / 1e6:.1f}", source=item.source, opset=DEFAULT_OPSET,
        in_channels=config.input_shape()[1], first_feature=keys[0], last_feature=keys[-1],
        onnx_form=" of the fused inference form" if isinstance(config, FMViTConfig) else "",
        form_section=_form_section(config), size_section=_size_section(config, family),
        latency_section=_latency_section(item.latencies), accuracy_section=_accuracy_section(item.scores),
        training_section=_training_section(config, family),
    ).rstrip() + "\n"


def export_package(item: ExportItem, directory: str | Path) -> Path:
    """Write ``model.py``, ``config.json``, ``model.onnx`` and ``README.md`` into ``directory``.

    ``model.onnx`` is always the deployed network: an FMViT training form is exported fused.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = item.config
    table = config.op_table()
    (directory / "model.py").write_text(standalone_model_source(config, item.label))
    (directory / "config.json").write_text(config.to_json() + "\n")
    export_onnx(inference_form(config), directory / "model.onnx")
    (directory / "README.md").write_text(readme_text(item, table.params, table.macs))
    return directory


def directory_name(label: str) -> str:
    """``label`` as one plain directory name: separators, ``..`` and other characters a study
    name may hold become ``_``, so an export never lands outside the directory it was given."""
    name = re.sub(r"[^0-9A-Za-z_.+-]", "_", label).lstrip(".")
    return name or "_"


def export_many(items: Iterable[ExportItem], root: str | Path) -> list[ExportResult]:
    """Each item into ``root/<label>``; a failure is recorded in its result and the rest go on."""
    results = []
    for item in items:
        directory = Path(root) / directory_name(item.label)
        try:
            export_package(item, directory)
        except Exception as err:  # noqa: BLE001 - one bad config must not stop the others
            results.append(ExportResult(item.label, compute_arch_id(item.config), directory, False,
                                        f"{type(err).__name__}: {err}"))
        else:
            files = tuple(sorted(p.name for p in directory.iterdir()))
            results.append(ExportResult(item.label, item.config.arch_id, directory, True, files=files))
    return results
