"""Measurement backends behind one small interface.

A backend turns a config (and its built module) into a :class:`Prepared` model: a timer that
runs one batch on inputs made beforehand, plus what must be recorded about how it ran (runtime
settings, model file hash). A new runtime plugs in by subclassing :class:`Backend` and adding it
to :data:`BACKENDS`; nothing else changes.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from explorer.errors import UserError
from explorer.measure.protocol import Timer, perf_timer
from explorer.onnx_export import export_onnx, file_sha256, onnx_session
from search_spaces.base import ArchConfig, KnobError, arch_id

INPUT_SEED = 0


class BackendUnavailable(UserError, RuntimeError):
    """The backend cannot run on this host (e.g. CUDA without a GPU)."""


@dataclass(frozen=True)
class Prepared:
    """A model ready to time: ``timer()`` runs one batch and returns milliseconds."""

    timer: Timer
    settings: dict[str, Any] = field(default_factory=dict)
    model_sha256: str | None = None
    close: Callable[[], None] = lambda: None


def make_input(config: ArchConfig, batch: int) -> np.ndarray:
    """The seeded random input of ``config`` at ``batch``, made before any timing."""
    rng = np.random.default_rng(INPUT_SEED)
    return rng.standard_normal(config.input_shape(batch)).astype(np.float32)


class Backend(abc.ABC):
    """Prepares models for timing with one runtime."""

    name: ClassVar[str]
    runtime: ClassVar[str]

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` with the reason if this host cannot run it."""

    @abc.abstractmethod
    def prepare(self, config: ArchConfig, model: torch.nn.Module, *, batch: int, threads: int | None,
                workdir: Path) -> Prepared:
        """Export/compile ``model`` (built from ``config``) and return its timer."""


class OnnxRuntimeCPU(Backend):
    """ONNX Runtime on the CPU: the runtime of the shipped database and of most edge devices."""

    name = "ort"
    runtime = "onnxruntime CPUExecutionProvider"

    def __init__(self, graph_optimization: str = "ORT_ENABLE_ALL"):
        self.graph_optimization = graph_optimization

    def prepare(self, config, model, *, batch, threads, workdir):
        import onnxruntime as ort

        path = export_onnx(config, Path(workdir) / f"{arch_id(config)}.onnx", model=model)
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.graph_optimization)
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        session = onnx_session(path, options)
        feed = {"input": make_input(config, batch)}
        settings = {"runtime": self.runtime, "onnxruntime": ort.__version__,
                    "graph_optimization_level": self.graph_optimization,
                    "intra_op_num_threads": threads, "inter_op_num_threads": 1, "opset": 17}
        # the session holds the model in memory; the file can go (a B3 is ~230 MB)
        return Prepared(perf_timer(lambda: session.run(None, feed)), settings, file_sha256(path),
                        lambda: path.unlink(missing_ok=True))


def _torch_threads(threads: int | None) -> Callable[[], None]:
    """Set torch's intra-op threads; return the function restoring the previous value."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    return lambda: torch.set_num_threads(previous)


def _state_sha256(module: torch.nn.Module) -> str:
    """Hash of the weights actually timed (there is no model file for the torch backends)."""
    digest = hashlib.sha256()
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class TorchEager(Backend):
    """PyTorch eager mode, as the published A40 throughput figures."""

    name = "torch"
    runtime = "PyTorch eager"
    device = "cpu"

    def check_available(self) -> None:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(f"backend {self.name!r} needs CUDA; torch sees no GPU on this host")

    def compile(self, model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
        return model

    def prepare(self, config, model, *, batch, threads, workdir):
        self.check_available()
        restore = _torch_threads(threads)
        x = torch.from_numpy(make_input(config, batch)).to(self.device)
        model = model.eval().to(self.device)
        with torch.inference_mode():
            runnable = self.compile(model, x)
        settings = {"runtime": self.runtime, "torch": torch.__version__, "device": self.device,
                    "num_threads": torch.get_num_threads()}

        def run() -> None:
            with torch.inference_mode():
                runnable(x)

        return Prepared(self._timer(run), settings, _state_sha256(model), restore)

    def _timer(self, run: Callable[[], None]) -> Timer:
        return perf_timer(run)


class TorchScript(TorchEager):
    """TorchScript trace + ``torch.jit.optimize_for_inference`` (freezes and fuses conv-BN),
    as the published TITAN RTX latencies."""

    name = "torchscript"
    runtime = "TorchScript, torch.jit.optimize_for_inference"

    def compile(self, model, example):
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        return torch.jit.optimize_for_inference(traced.eval())


class CudaTorchScript(TorchScript):
    """TorchScript on a CUDA GPU, timed with CUDA events (wall clocks miss asynchronous work)."""

    name = "cuda"
    runtime = "TorchScript on CUDA, torch.jit.optimize_for_inference, CUDA events"
    device = "cuda"

    def _timer(self, run):
        def timer() -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            return float(start.elapsed_time(end))
        return timer


BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (OnnxRuntimeCPU, TorchEager, TorchScript, CudaTorchScript)
}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; a clear error names the allowed ones."""
    if name not in BACKENDS:
        raise KnobError("backend", name, "one of " + ", ".join(BACKENDS))
    return BACKENDS[name]()


__all__ = ["BACKENDS", "Backend", "BackendUnavailable", "OnnxRuntimeCPU", "Prepared", "TorchEager",
           "TorchScript", "CudaTorchScript", "get_backend", "make_input"]
