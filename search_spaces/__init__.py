"""Design spaces: typed configs that build PyTorch models and analytic op tables."""

from search_spaces.base import ArchConfig, KnobError, arch_id, canonical_json

__all__ = ["ArchConfig", "KnobError", "arch_id", "canonical_json"]
