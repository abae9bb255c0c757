"""explorer: a hardware-aware design-space explorer for efficient vision backbones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from explorer.architectures import NAMED_ARCHITECTURES, config_from_dict, name_of, resolve
from search_spaces.base import ArchConfig, KnobError, arch_id

__version__ = "0.1.0"


def build_model(spec: str | Path | ArchConfig | dict[str, Any], resolution: int | None = None) -> torch.nn.Module:
    """The ``torch.nn.Module`` of a preset name, config object or config JSON path, in eval mode."""
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
