"""The EfficientViT design spaces: the released B-series and the seed paper's model."""

from search_spaces.efficientvit.config import EfficientViTConfig, EfficientViTSeedConfig
from search_spaces.efficientvit.presets import EFFICIENTVIT_PRESETS

PRESETS = EFFICIENTVIT_PRESETS
#: space name -> config class
SPACES = {EfficientViTConfig.space: EfficientViTConfig, EfficientViTSeedConfig.space: EfficientViTSeedConfig}

__all__ = ["EFFICIENTVIT_PRESETS", "PRESETS", "SPACES", "EfficientViTConfig", "EfficientViTSeedConfig"]
