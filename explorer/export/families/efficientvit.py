"""Factories of exported EfficientViT ``model.py`` files: the released B-series and the seed
paper's model (copied into them after the network's sources)."""

from explorer.export.factory import build_network, stage_info
from search_spaces.efficientvit.network import EFFICIENTVIT_FEATURE_KEYS, efficientvit, efficientvit_seed
from search_spaces.efficientvit.rules import seed_widths


def efficientvit_stages(spec):
    return stage_info(EFFICIENTVIT_FEATURE_KEYS, spec["widths"], 2)


def efficientvit_seed_stages(spec):
    return stage_info(EFFICIENTVIT_FEATURE_KEYS, seed_widths(spec["width_mult"]), 2)


def build_efficientvit(spec, num_classes=None, features_only=False, out_indices=None):
    """EfficientViT-B classifier or feature extractor (``stage0`` .. ``stage_final``)."""
    return build_network(efficientvit, efficientvit_stages, spec, num_classes, features_only, out_indices)


def build_efficientvit_seed(spec, num_classes=None, features_only=False, out_indices=None):
    """Seed-paper EfficientViT classifier or feature extractor (``stage0`` .. ``stage_final``)."""
    return build_network(efficientvit_seed, efficientvit_seed_stages, spec, num_classes, features_only,
                         out_indices)
