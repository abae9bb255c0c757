"""Factory of an exported FMViT ``model.py`` (copied into it after the network's sources).

A training-form model keeps its reparameterisation branches; ``model.fuse()`` returns the
inference form with the same outputs (in eval mode) and the same state-dict keys.
"""

from explorer.export.factory import build_network, stage_info
from search_spaces.fmvit.network import FMVIT_FEATURE_KEYS, FMViT
from search_spaces.fmvit.rules import fmb_width


def fmvit_stages(spec):
    widths = [spec["block_widths"][0], *(fmb_width(f, spec["fmb_cfbs"]) for f in spec["fm_widths"])]
    return stage_info(FMVIT_FEATURE_KEYS, widths, 4)


def build_fmvit(spec, num_classes=None, features_only=False, out_indices=None):
    """FMViT classifier or feature extractor (``stage1`` .. ``stage_final``), in ``spec["form"]``."""
    if num_classes == 0 and spec["form"] == "train" and not features_only:
        raise ValueError("invalid num_classes 0 for the training form: its head BatchNorm folds into the "
                         "classifier on fuse(); allowed: an integer >= 1, or features_only=True")
    return build_network(FMViT, fmvit_stages, spec, num_classes, features_only, out_indices)
