"""The LowFormer design space."""

from search_spaces.lowformer.config import LowFormerConfig, TransformerStage
from search_spaces.lowformer.presets import LOWFORMER_PRESETS

__all__ = ["LOWFORMER_PRESETS", "LowFormerConfig", "TransformerStage"]
