"""Measurement bundles: everything a device without the tool needs to measure a set of models.

A bundle directory holds ``models/<arch id>-<sha256 prefix>.onnx``, ``manifest.json`` (what to
measure and how) and ``runner.py``, which is the measuring protocol of local campaigns
(``explorer/measure/protocol.py``) followed by :mod:`explorer.remote.runner_main`. The bundle id
hashes the request (device, runtime and protocol settings, reference model, architectures), so
writing the same request again yields the same id. The measurement key hashes all of it but
the architectures: results of two bundles with equal keys were measured alike, which lets a
resumed SSH run collect what an interrupted one measured instead of measuring it again.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from explorer.architectures import name_of
from explorer.errors import UserError
from explorer.measure import protocol
from explorer.measure.campaign import Job
from explorer.measure.protocol import ProtocolSettings
from explorer.onnx_export import export_onnx, file_sha256
from explorer.remote import runner_main
from search_spaces.base import ArchConfig, arch_id

MANIFEST_NAME = runner_main.MANIFEST_NAME
MANIFEST_FORMAT = runner_main.MANIFEST_FORMAT
RUNNER_NAME = "runner.py"
RESULTS_NAME = "results.jsonl"
MODELS_DIR = "models"
BACKEND = "ort"
RUNTIME = "onnxruntime CPUExecutionProvider"
GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"
INPUT_SEED = 0
EXPORT_SEED = 0
#: the purpose of an ordinary job (campaign.Job's default); other purposes (drift checks) repeat
CAMPAIGN = "campaign"
OPSET = 17
#: the oldest Python the runner must run on (what a Raspberry Pi OS or Jetson image ships)
RUNNER_MIN_PYTHON = (3, 9)
#: the largest value of a model input dimension a manifest may state (batch, channels, sides)
MAX_INPUT_SIDE = 65_536


class BundleError(UserError, ValueError):
    """A bundle directory that cannot be written or read as asked."""


@dataclass(frozen=True)
class BundleModel:
    """One measurement of a bundle: its key (the architecture id, or for a repeated drift-check
    model a key naming the bundle and the repetition), purpose, architecture, ONNX file
    (relative path) and input shape."""

    key: str
    purpose: str
    arch_id: str
    config: dict[str, Any]
    file: str
    sha256: str
    input_shape: tuple[int, ...]
    name: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BundleModel:
        """Validated: every field of the right type, the file a path under ``models/``."""
        fields = {name: _field(data, name, kinds, "model")
                  for name, kinds in (("key", str), ("purpose", str), ("arch_id", str), ("config", dict),
                                      ("file", str), ("sha256", str), ("input_shape", list))}
        if fields["file"].startswith("/") or ".." in fields["file"].split("/") or \
                not fields["file"].startswith(f"{MODELS_DIR}/"):
            raise BundleError(f"model field 'file' is {fields['file']!r:.80}; allowed: a relative path "
                              f"under {MODELS_DIR}/ without '..'")
        shape = fields["input_shape"]
        if not shape or not all(type(n) is int and 0 < n <= MAX_INPUT_SIDE for n in shape):
            raise BundleError(f"model field 'input_shape' is {shape!r:.80}; allowed: positive integers "
                              f"up to {MAX_INPUT_SIDE}")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise BundleError(f"model field 'name' is {name!r:.80}; allowed: a string or null")
        return cls(**{**fields, "input_shape": tuple(shape)}, name=name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_shape": list(self.input_shape)}


@dataclass(frozen=True)
class Manifest:
    """What a bundle measures and how; ``manifest.json`` is its JSON form. ``measurement_key``
    hashes everything but the model list: results with equal keys are interchangeable."""

    bundle_id: str
    measurement_key: str
    device: str
    threads: int | None
    batch: int
    protocol: dict[str, Any]
    reference: BundleModel | None
    models: tuple[BundleModel, ...]
    created_at: str = ""

    @property
    def backend(self) -> str:
        return BACKEND

    def model(self, key: str) -> BundleModel | None:
        return next((m for m in self.models if m.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT, "bundle_id": self.bundle_id,
            "measurement_key": self.measurement_key, "created_at": self.created_at,
            "device": self.device, "backend": BACKEND, "input_seed": INPUT_SEED,
            "runtime": {"runtime": RUNTIME, "batch": self.batch, "threads": self.threads,
                        "graph_optimization_level": GRAPH_OPTIMIZATION, "opset": OPSET},
            "protocol": self.protocol,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "models": [m.to_dict() for m in self.models],
        }

    @classmethod
    def load(cls, bundle_dir: str | Path) -> Manifest:
        """The manifest of ``bundle_dir``; a clear error when it is missing or malformed."""
        path = Path(bundle_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise BundleError(f"{bundle_dir} is not a bundle: no {MANIFEST_NAME}") from None
        except (OSError, ValueError) as err:  # unreadable, not UTF-8 or not JSON
            raise BundleError(f"{path} is not a valid manifest: {type(err).__name__}: {err}") from None
        try:
            if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
                found = data.get("format") if isinstance(data, dict) else type(data).__name__
                raise BundleError(f"manifest field 'format' is {found!r:.80}; allowed: {MANIFEST_FORMAT}")
            runtime = _field(data, "runtime", dict, "manifest")
            threads = _field(runtime, "threads", (int, type(None)), "manifest runtime")
            batch = _field(runtime, "batch", int, "manifest runtime")
            if batch < 1 or (threads is not None and threads < 1):
                raise BundleError(f"manifest runtime fields 'batch' {batch} and 'threads' {threads}; "
                                  "allowed: positive integers (threads may be null)")
            reference = _field(data, "reference", (dict, type(None)), "manifest")
            return cls(bundle_id=_field(data, "bundle_id", str, "manifest"),
                       measurement_key=_field(data, "measurement_key", str, "manifest"),
                       device=_field(data, "device", str, "manifest"), threads=threads, batch=batch,
                       protocol=dict(_field(data, "protocol", dict, "manifest")),
                       reference=None if reference is None else BundleModel.from_dict(reference),
                       models=tuple(BundleModel.from_dict(m) for m in _field(data, "models", list, "manifest")),
                       created_at=str(data.get("created_at", "")))
        except BundleError as err:
            raise BundleError(f"{path}: {err}") from None


def _field(data: Any, name: str, kinds: type | tuple[type, ...], where: str) -> Any:
    """``data[name]`` if ``data`` is an object holding a value of ``kinds`` there (never a bool
    for a number); else a :class:`BundleError` naming the field and what is allowed."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    allowed = " or ".join("null" if k is type(None) else {"str": "a string", "int": "an integer",
                                                            "dict": "an object", "list": "a list"}[k.__name__]
                          for k in kinds)
    if not isinstance(data, dict):
        raise BundleError(f"{where} is {type(data).__name__}; allowed: an object")
    if name not in data:
        raise BundleError(f"{where} field {name!r} is missing; allowed: {allowed}")
    value = data[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise BundleError(f"{where} field {name!r} is {value!r:.80}; allowed: {allowed}")
    return value


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def measurement_key(device: str, batch: int, threads: int | None, settings: ProtocolSettings,
                    reference_id: str | None) -> str:
    """Hash of how results are measured (device, runtime, protocol, reference model)."""
    return "m" + _digest({"device": device, "backend": BACKEND, "batch": batch, "threads": threads,
                          "graph_optimization_level": GRAPH_OPTIMIZATION, "opset": OPSET,
                          "protocol": settings.to_dict(), "input_seed": INPUT_SEED,
                          "reference": reference_id})[:15]


def bundle_id(jobs: Sequence[Job], measurement: str) -> str:
    """Id of a job list under a measurement key. It hashes the request, not the ONNX files, so
    writing the same request again yields the same id."""
    return "b" + _digest({"measurement": measurement,
                          "jobs": [[job.arch_id, job.purpose] for job in jobs]})[:15]


def render_runner() -> str:
    """Source of ``runner.py``: the protocol module, then the runner's main (without its import
    of that protocol module), as one file that imports nothing of this package."""
    parts = []
    for module, dropped in ((protocol, ()), (runner_main, (f"from {protocol.__name__} import",))):
        lines = [line for line in inspect.getsource(module).splitlines()
                 if not line.startswith(("from __future__ import", *dropped))]
        parts.append(f"# ---- {module.__name__} ----\n" + "\n".join(lines).strip() + "\n")
    source = ('#!/usr/bin/env python3\n"""Measurement runner of an explorer bundle (generated; '
              'usage: python runner.py BUNDLE_DIR [--output results.jsonl])."""\n'
              "from __future__ import annotations\n\n" + "\n\n".join(parts))
    _check_standalone(source)
    return source


def _check_standalone(source: str) -> None:
    """The runner must parse as Python 3.9 and import nothing of this package."""
    tree = ast.parse(source, filename=RUNNER_NAME, feature_version=RUNNER_MIN_PYTHON)
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        bad = [n for n in names if n.split(".")[0] in ("explorer", "search_spaces", "torch")]
        if bad:
            raise BundleError(f"runner would import {bad[0]!r}, which the device does not have")


def write_bundle(jobs: Sequence[Job], out_dir: str | Path, *, device: str, reference: ArchConfig | None,
                 settings: ProtocolSettings = ProtocolSettings(),
                 progress: Callable[[int, int], None] = lambda done, total: None) -> Manifest:
    """Export the models of ``jobs`` (which share batch and threads) and the fixed ``reference``
    model timed between them (``None``: absolute figures only; campaigns use
    ``explorer.measure.REFERENCE``) into ``out_dir``, with the manifest and the runner.

    A directory already holding the same bundle is reused as it is; one holding another bundle
    is refused, so that nothing measured there is lost. The manifest is written last: a cut
    export leaves no bundle (and the models it finished are kept for the next attempt)."""
    if not jobs:
        raise BundleError("a bundle needs at least one architecture to measure")
    out = Path(out_dir)
    batch, threads = jobs[0].batch, jobs[0].threads
    measurement = measurement_key(device, batch, threads, settings, reference and arch_id(reference))
    key = bundle_id(jobs, measurement)
    if (out / MANIFEST_NAME).exists():
        existing = Manifest.load(out)
        if existing.bundle_id == key and _files_intact(out, existing):
            return existing
        if existing.bundle_id != key:
            raise BundleError(f"{out} already holds bundle {existing.bundle_id} (device "
                              f"{existing.device}, {len(existing.models)} models); choose another "
                              "directory or remove it")
    exported: dict[str, tuple[str, str]] = {}
    models = []
    total = len({job.arch_id for job in jobs}) + (reference is not None)
    for job in jobs:
        if job.arch_id not in exported:
            progress(len(exported), total)
            exported[job.arch_id] = _export(job.config, out)
        entry_key = job.arch_id if job.purpose == CAMPAIGN else f"{key}/{len(models)}/{job.arch_id}"
        models.append(_entry(job.config, entry_key, job.purpose, exported[job.arch_id], job.name))
    ref = None if reference is None else _entry(reference, arch_id(reference), "reference",
                                                _export(reference, out), name_of(reference))
    progress(total, total)
    manifest = Manifest(bundle_id=key, measurement_key=measurement, device=device, threads=threads,
                        batch=batch, protocol=settings.to_dict(), reference=ref, models=tuple(models),
                        created_at=datetime.now(timezone.utc).isoformat())
    _write_atomic(out / RUNNER_NAME, render_runner())
    _write_atomic(out / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1) + "\n")
    return manifest


def _files_intact(out: Path, manifest: Manifest) -> bool:
    entries = [m for m in (manifest.reference, *manifest.models) if m is not None]
    try:
        paths = [(runner_main.model_path(out, m.file), m.sha256) for m in entries]
    except ValueError:  # a file reached through a link out of the directory is not part of it
        return False
    return (out / RUNNER_NAME).exists() and all(p.exists() and file_sha256(p) == sha for p, sha in paths)


def _export(config: ArchConfig, out: Path) -> tuple[str, str]:
    """Export with weights from a fixed seed; the file name carries the hash, so a device never
    mixes up two exports of one architecture, and an export finished before an interruption
    is found and kept. Returns (relative path, sha256)."""
    key = arch_id(config)
    for existing in sorted((out / MODELS_DIR).glob(f"{key}-*.onnx")):
        digest = file_sha256(existing)
        if existing.stem == f"{key}-{digest[:12]}":
            return f"{MODELS_DIR}/{existing.name}", digest
    partial = out / MODELS_DIR / f"{key}.onnx.partial"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(EXPORT_SEED)
        export_onnx(config, partial, opset=OPSET)
    digest = file_sha256(partial)
    relative = f"{MODELS_DIR}/{key}-{digest[:12]}.onnx"
    os.replace(partial, out / relative)
    return relative, digest


def _entry(config: ArchConfig, key: str, purpose: str, file: tuple[str, str], name: str | None) -> BundleModel:
    return BundleModel(key=key, purpose=purpose, arch_id=arch_id(config),
                       config={"space": config.space, **config.to_dict()}, file=file[0], sha256=file[1],
                       input_shape=tuple(config.input_shape(1)), name=name)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
