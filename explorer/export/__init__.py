"""Export an architecture as a self-contained package for a training repository.

A package is a directory with ``model.py`` (plain PyTorch, generated from the sources of the
LowFormer builder so that it can never drift from what was searched and measured),
``config.json``, ``model.onnx`` and a ``README.md`` that states every latency with its provenance
and the training recipe of the nearest published model.
"""

from __future__ import annotations

import ast
import csv
import inspect
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import ModuleType

from explorer.architectures import name_of
from explorer.export import factory
from explorer.export.recipes import COMMON_RECIPE, TRAINING_RECIPES
from explorer.onnx_export import DEFAULT_OPSET, export_onnx
from explorer.search.nearest import nearest_preset
from search_spaces.base import arch_id as compute_arch_id
from search_spaces.lowformer import LowFormerConfig, modules, network, rules

TEMPLATES = Path(__file__).with_name("templates")
PUBLISHED_CSV = Path(__file__).parents[1] / "data" / "published_reference.csv"
#: Sources of ``model.py``, in dependency order. Each imports only torch and the ones before it.
MODEL_SOURCES: tuple[ModuleType, ...] = (rules, modules, network, factory)
PROJECT_PACKAGES = ("search_spaces", "explorer", "predictors")
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
class ExportItem:
    """What to export: a config, the directory name, where it came from and what is known about it."""

    label: str
    config: LowFormerConfig
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


def model_name(label: str) -> str:
    """A Python identifier for the factory function: ``lowformer-b1.5`` -> ``lowformer_b1_5``."""
    name = re.sub(r"\W", "_", label)
    return name if name[:1].isalpha() else f"lowformer_{name}"


def _split_source(module: ModuleType) -> tuple[list[str], str]:
    """(third-party import lines, body) of a module: its docstring and project imports dropped."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    drop: set[int] = set()
    imports = []
    for index, node in enumerate(ast.parse(source).body):
        span = range(node.lineno - 1, node.end_lineno)
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            drop.update(span)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            drop.update(span)
            if not (isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in PROJECT_PACKAGES):
                imports.append(ast.get_source_segment(source, node))
    body = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    return imports, body.strip("\n")


def standalone_model_source(config: LowFormerConfig, label: str) -> str:
    """The text of ``model.py``: the builder's own sources concatenated, then this config."""
    imports, bodies = ["import json"], []
    for module in MODEL_SOURCES:
        module_imports, body = _split_source(module)
        imports += [line for line in module_imports if line not in imports]
        bodies.append(f"# -- {module.__name__.rsplit('.', 1)[-1]} ".ljust(96, "-") + "\n\n" + body)
    header = (f'"""{label}: a LowFormer-family network in plain PyTorch (architecture {config.arch_id}).\n\n'
              "Generated from the sources of the design space it was searched in; needs only torch.\n"
              '"""\n\n' + "\n".join(imports))
    tail = Template((TEMPLATES / "model_tail.py.tmpl").read_text()).substitute(
        model_name=model_name(label), arch_id=config.arch_id,
        config_json=json.dumps(config.to_dict(), indent=2, sort_keys=True))
    return header + "\n\n\n" + "\n\n\n".join(bodies) + "\n" + tail


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


def readme_text(item: ExportItem, params: int, macs: int) -> str:
    nearest, distance = nearest_preset(item.config)
    recipe = TRAINING_RECIPES[nearest]
    rows = [*recipe.as_rows(), *COMMON_RECIPE.items()]
    return Template((TEMPLATES / "README.md.tmpl").read_text()).substitute(
        title=item.label, arch_id=item.config.arch_id, resolution=item.config.resolution,
        params_m=f"{params / 1e6:.2f}", macs_m=f"{macs / 1e6:.1f}", source=item.source, opset=DEFAULT_OPSET,
        latency_section=_latency_section(item.latencies), accuracy_section=_accuracy_section(item.scores),
        nearest=nearest, distance=f"{distance:.2f}",
        recipe_rows="\n".join(f"| {k} | {v} |" for k, v in rows),
    )


def export_package(item: ExportItem, directory: str | Path) -> Path:
    """Write ``model.py``, ``config.json``, ``model.onnx`` and ``README.md`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = item.config
    table = config.op_table()
    (directory / "model.py").write_text(standalone_model_source(config, item.label))
    (directory / "config.json").write_text(config.to_json() + "\n")
    export_onnx(config, directory / "model.onnx")
    (directory / "README.md").write_text(readme_text(item, table.params, table.macs))
    return directory


def export_many(items: Iterable[ExportItem], root: str | Path) -> list[ExportResult]:
    """Each item into ``root/<label>``; a failure is recorded in its result and the rest go on."""
    results = []
    for item in items:
        directory = Path(root) / item.label
        try:
            export_package(item, directory)
        except Exception as err:  # noqa: BLE001 - one bad config must not stop the others
            results.append(ExportResult(item.label, compute_arch_id(item.config), directory, False,
                                        f"{type(err).__name__}: {err}"))
        else:
            files = tuple(sorted(p.name for p in directory.iterdir()))
            results.append(ExportResult(item.label, item.config.arch_id, directory, True, files=files))
    return results


def _published(config: LowFormerConfig, metric: str) -> list[dict[str, str]]:
    name = name_of(config)
    if name is None:
        return []
    with PUBLISHED_CSV.open(newline="") as handle:
        return [r for r in csv.DictReader(handle)
                if r["model"] == name and int(r["resolution"]) == config.resolution and r["metric"] == metric]


def published_top1(config: LowFormerConfig) -> tuple[tuple[str, float], ...]:
    """The papers' ImageNet top-1 of a named architecture at its resolution, as labelled scores."""
    return tuple((f"ImageNet top-1 % (published: {r['source']})", float(r["value"])) for r in _published(config, "top1"))


def published_latencies(config: LowFormerConfig) -> tuple[LatencyRecord, ...]:
    """The papers' latencies of a named architecture at its resolution (``published_reference.csv``)."""
    rows = _published(config, "latency_ms")
    return tuple(
        LatencyRecord(r["device"], float(r["value"]), "published",
                      f"published: {r['source']}" + (f" ({r['note']})" if r["note"] else ""))
        for r in rows
    )
