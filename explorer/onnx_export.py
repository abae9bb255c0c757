"""ONNX export of any architecture, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from explorer.errors import UserError
from search_spaces.base import ArchConfig

DEFAULT_OPSET = 17


class OnnxLoadError(UserError):
    """An ONNX file that ONNX Runtime cannot load (cut, damaged or not ONNX at all)."""


def onnx_session(path: str | Path, options=None):
    """An ONNX Runtime CPU session of ``path``; a file that does not load is a one-line
    :class:`OnnxLoadError` naming it, and the file is left as it is."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ONNX Runtime's errors share no narrower base class
        detail = (str(err).splitlines() or [""])[0]
        raise OnnxLoadError(f"ONNX file {str(path)!r} does not load in ONNX Runtime "
                            f"({type(err).__name__}: {detail:.200})") from None


def export_onnx(config: ArchConfig, path: str | Path, *, opset: int = DEFAULT_OPSET,
                model: torch.nn.Module | None = None, dynamic_batch: bool = True) -> Path:
    """Write ``config`` (or an already built ``model`` of it) to ``path`` as ONNX.

    Input "input" (N, C, H, W) with a dynamic batch axis, output "output". Uses the TorchScript
    exporter: about 4x faster than the dynamo one here and equally exact for these models. A
    network exported elsewhere (:func:`pre_exported`) is copied as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = pre_exported(config)
    if source is not None:
        shutil.copyfile(source, path)
        return path
    model = config.build() if model is None else model.eval()
    example = torch.zeros(config.input_shape(1))
    axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"], dynamic_axes=axes,
                          do_constant_folding=True)
    return path


def pre_exported(config: ArchConfig) -> Path | None:
    """The ONNX file of a network that is not built here (the reference networks of timm, exported
    in their own environment at opset 17), or None for a network of our spaces."""
    onnx_file = getattr(config, "onnx_file", None)
    return None if onnx_file is None else onnx_file()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_abs_difference(config: ArchConfig, path: str | Path, *, model: torch.nn.Module, seed: int = 0) -> float:
    """Largest |ONNX Runtime - PyTorch| on a seeded random input: the export check.

    ``model`` must be the module the file was exported from (a fresh build has new weights).
    """
    model = model.eval()
    x = torch.randn(config.input_shape(1), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model(x).numpy()
    session = onnx_session(path)
    got = session.run(None, {"input": x.numpy()})[0]
    return float(np.max(np.abs(got - expected)))
