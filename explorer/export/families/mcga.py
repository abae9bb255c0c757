"""Factory of an exported MCGA ``model.py`` (copied into it after the network's sources)."""

from explorer.export.factory import build_network, stage_info
from search_spaces.mcga.network import MCGA, MCGA_FEATURE_KEYS


def mcga_stages(spec):
    return stage_info(MCGA_FEATURE_KEYS, spec["dims"], 4)


def build_mcga(spec, num_classes=None, features_only=False, out_indices=None):
    """MCGA classifier or feature extractor (``stage1`` .. ``stage_final``, NCHW maps)."""
    return build_network(MCGA, mcga_stages, spec, num_classes, features_only, out_indices)
