"""The MCGA design space (multi-scale convolutions meet group attention; a reconstruction)."""

from search_spaces.mcga.config import MCGAConfig
from search_spaces.mcga.presets import MCGA_PRESETS

PRESETS = MCGA_PRESETS
SPACES = {MCGAConfig.space: MCGAConfig}

__all__ = ["MCGA_PRESETS", "PRESETS", "SPACES", "MCGAConfig"]
