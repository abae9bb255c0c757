"""Factory of an exported LowFormer ``model.py`` (copied into it after the network's sources)."""

from explorer.export.factory import build_network, stage_info
from search_spaces.blocks.network import LOWFORMER_FEATURE_KEYS
from search_spaces.lowformer.network import LowFormer


def lowformer_stages(spec):
    return stage_info(LOWFORMER_FEATURE_KEYS, spec["widths"], 2)


def build_lowformer(spec, num_classes=None, features_only=False, out_indices=None):
    """LowFormer classifier or feature extractor (``stage0`` .. ``stage_final``)."""
    return build_network(LowFormer, lowformer_stages, spec, num_classes, features_only, out_indices)
