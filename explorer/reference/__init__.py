"""The ``reference`` space: published efficient ImageNet networks of timm, to set beside a search.

Not a design space: a curated list (``explorer/data/reference_networks.csv``: timm model, weight
tag, published resolution, family) that the search never samples. Each network is a
:class:`ReferenceConfig` with an architecture id like any other, stored and measured like any
other, but built by timm in its own environment (``.venv-reference``, made by
``scripts/setup.sh --reference``), which only exports it to ONNX (:func:`build_reference`).
Everything here (op table, measurement, bundles for boards) works from that ONNX file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from explorer.errors import UserError
from search_spaces.base import check_choice, check_int, unknown_keys
from search_spaces.optable import OpTable

SPACE = "reference"
NETWORKS_FILE = "reference_networks.csv"
#: The repository root (this package is explorer/reference).
REPO_ROOT = Path(__file__).resolve().parents[2]
ONNX_DIR_ENV = "EXPLORER_REFERENCE_ONNX"
PYTHON_ENV = "EXPLORER_REFERENCE_PYTHON"
EXPORT_SCRIPT = Path(__file__).with_name("timm_export.py")


class ReferenceNotBuilt(UserError):
    """A reference network without its ONNX file: the message says how to build it."""


@dataclass(frozen=True)
class ReferenceNetwork:
    """One row of the curated list: the timm model, the tag of the weights whose published top-1
    it carries (``predictors.reference``'s ``model`` is ``timm_model.tag``) and their resolution."""

    timm_model: str
    tag: str
    resolution: int
    family: str

    @property
    def weights(self) -> str:
        return f"{self.timm_model}.{self.tag}"

    def config(self, resolution: int | None = None) -> ReferenceConfig:
        return ReferenceConfig(self.timm_model, self.resolution if resolution is None else resolution)


@lru_cache(maxsize=1)
def reference_networks() -> tuple[ReferenceNetwork, ...]:
    """The curated list, smallest first as the file orders it."""
    text = (resources.files("explorer") / "data" / NETWORKS_FILE).read_text()
    return tuple(ReferenceNetwork(row["timm_model"], row["tag"], int(row["resolution"]), row["family"])
                 for row in csv.DictReader(text.splitlines()))


def network_of(model: str) -> ReferenceNetwork | None:
    return next((n for n in reference_networks() if n.timm_model == model), None)


def onnx_dir() -> Path:
    """Where the exported files live: ``$EXPLORER_REFERENCE_ONNX``, else ``out/reference-onnx``
    of the repository (not tracked: any host rebuilds them with :func:`build_reference`)."""
    return Path(os.environ.get(ONNX_DIR_ENV) or REPO_ROOT / "out" / "reference-onnx").expanduser()


BUILD_HINT = ("build it with `explorer space build-reference` (needs the environment of "
              "`bash scripts/setup.sh --reference`)")


@dataclass(frozen=True)
class ReferenceConfig:
    """A reference network at one resolution: its timm model name and the input side."""

    space: ClassVar[str] = SPACE

    model: str
    resolution: int

    @classmethod
    def from_dict(cls, knobs: Mapping[str, Any]) -> ReferenceConfig:
        unknown_keys(knobs, cls)
        model = check_choice("model", knobs.get("model"), (n.timm_model for n in reference_networks()))
        default = network_of(model).resolution  # type: ignore[union-attr] - checked above
        return cls(model, check_int("resolution", knobs.get("resolution", default), 32, 1024))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, self.resolution, self.resolution)

    def with_resolution(self, resolution: int) -> ReferenceConfig:
        return ReferenceConfig.from_dict({"model": self.model, "resolution": resolution})

    def onnx_path(self) -> Path:
        return onnx_dir() / f"{self.model}-{self.resolution}.onnx"

    def onnx_file(self) -> Path:
        """The exported file; :class:`ReferenceNotBuilt` if there is none yet."""
        path = self.onnx_path()
        if not path.is_file():
            raise ReferenceNotBuilt(f"reference network {self.model} at {self.resolution} px has no ONNX file "
                                    f"{path}: {BUILD_HINT}")
        return path

    def build(self):
        raise ReferenceNotBuilt(f"reference network {self.model} is built by timm in its own environment, "
                                "not here: it is measured from its ONNX file with the ort backend")

    def op_table(self) -> OpTable:
        path = self.onnx_file()
        return _counted(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _counted(path: str, mtime_ns: int) -> OpTable:
    from explorer.reference.onnx_count import onnx_op_table

    return onnx_op_table(path)


SPACES = {SPACE: ReferenceConfig}


def reference_configs(resolution: int | None = None) -> list[ReferenceConfig]:
    return [network.config(resolution) for network in reference_networks()]


def require_built(configs: Iterable[ReferenceConfig]) -> None:
    """Refuse, in one line, networks whose ONNX file is missing."""
    missing = [c for c in configs if not c.onnx_path().is_file()]
    if missing:
        first = missing[0]
        raise ReferenceNotBuilt(f"{len(missing)} reference network(s) have no ONNX file in {onnx_dir()} "
                                f"(the first: {first.model} at {first.resolution} px): {BUILD_HINT}")


def reference_python() -> Path:
    """The Python of the reference environment: ``$EXPLORER_REFERENCE_PYTHON``, else
    ``.venv-reference`` of the repository."""
    python = Path(os.environ.get(PYTHON_ENV) or REPO_ROOT / ".venv-reference" / "bin" / "python")
    if not python.is_file():
        raise UserError(f"no reference environment at {python}: create it with `bash scripts/setup.sh --reference` "
                        f"(or name its Python with ${PYTHON_ENV})")
    return python


def build_reference(configs: Iterable[ReferenceConfig], *, force: bool = False, fvcore: bool = False,
                    out: Path | None = None, on_line: Callable[[dict], None] | None = None) -> list[dict]:
    """Export ``configs`` to ONNX in the reference environment, skipping those already built
    (unless ``force``; with ``fvcore`` nothing is skipped, since the counts come from the build).
    Returns one dict per config: ``model``, ``resolution``, ``path``, and ``skipped`` or
    ``seconds`` or ``error``; with ``fvcore``, fvcore's counts of the exported module
    (``fvcore_macs``, ``fvcore_params``), ours of the file (``macs``, ``params``) and the relative
    differences (``macs_difference``, ``params_difference``)."""
    out = onnx_dir() if out is None else out
    configs = list(configs)
    todo = [c for c in configs if force or fvcore or not (out / c.onnx_path().name).is_file()]
    lines = [{"model": c.model, "resolution": c.resolution, "path": str(out / c.onnx_path().name), "skipped": True}
             for c in configs if c not in todo]
    if not todo:
        return lines
    command = [str(reference_python()), str(EXPORT_SCRIPT), "--out", str(out), *(["--fvcore"] if fvcore else []),
               *(f"{c.model}:{c.resolution}" for c in todo)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for text in process.stdout:
            line = json.loads(text)
            if "fvcore_macs" in line:
                _compare(line)
            lines.append(line)
            if on_line is not None:
                on_line(line)
    if process.returncode:
        raise UserError(f"the reference environment's export stopped with status {process.returncode} "
                        f"after {len(lines)} of {len(configs)} networks (its error is above); run the command "
                        "again to go on")
    return lines


def _compare(line: dict) -> None:
    from explorer.reference.onnx_count import onnx_op_table

    table = onnx_op_table(line["path"])
    line.update(macs=table.macs, params=table.params, macs_difference=table.macs / line["fvcore_macs"] - 1,
                params_difference=table.params / line["fvcore_params"] - 1)
