"""The FMViT design space (multi-frequency blocks, shared-projection attention; a reconstruction)."""

from search_spaces.fmvit.config import FMViTConfig
from search_spaces.fmvit.presets import FMVIT_PRESETS

PRESETS = FMVIT_PRESETS
SPACES = {FMViTConfig.space: FMViTConfig}

__all__ = ["FMVIT_PRESETS", "PRESETS", "SPACES", "FMViTConfig"]
