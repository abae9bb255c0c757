"""explorer: a hardware-aware design-space explorer for efficient vision backbones.

The public names load on first use (PEP 562), so that ``import explorer`` and the light commands
of the CLI do not pay for torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from explorer.architectures import NAMED_ARCHITECTURES, config_from_dict, name_of, resolve
    from search_spaces.base import ArchConfig, KnobError, arch_id

__version__ = "0.1.0"

_LAZY = {
    "NAMED_ARCHITECTURES": "explorer.architectures",
    "config_from_dict": "explorer.architectures",
    "name_of": "explorer.architectures",
    "resolve": "explorer.architectures",
    "ArchConfig": "search_spaces.base",
    "KnobError": "search_spaces.base",
    "arch_id": "search_spaces.base",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def build_model(spec: str | Path | ArchConfig | dict[str, Any], resolution: int | None = None) -> torch.nn.Module:
    """The ``torch.nn.Module`` of a preset name, config object or config JSON path, in eval mode."""
    from explorer.architectures import resolve

    return resolve(spec, resolution).build().eval()


__all__ = [
    "NAMED_ARCHITECTURES",
    "ArchConfig",
    "KnobError",
    "arch_id",
    "build_model",
    "config_from_dict",
    "name_of",
    "resolve",
]
