"""EfficientViT networks from plain dicts of knobs (``config.to_dict()``).

Takes a dict rather than the config classes so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py``, ``rules.py`` and the shared blocks it composes.
"""

from torch import nn

from search_spaces.blocks.modules import ClsHead, ConvLayer, MBConv, Residual
from search_spaces.blocks.network import LOWFORMER_FEATURE_KEYS, Backbone, Classifier
from search_spaces.efficientvit.modules import (
    DSConv,
    EfficientViTBlock,
    SeedAttentionBlock,
    SeedDownsample,
    SeedHead,
)
from search_spaces.efficientvit.rules import (
    SEED_EXPANSION,
    hidden_width,
    lite_heads,
    seed_head_widths,
    seed_heads,
    seed_mid,
    seed_widths,
)

EFFICIENTVIT_FEATURE_KEYS = LOWFORMER_FEATURE_KEYS


def efficientvit_backbone(spec):
    """The released B-series backbone: DSConv stem, MBConv stages 1-2, LiteMLA stages 3-4."""
    widths, depths, kernel = spec["widths"], spec["depths"], spec["kernel"]
    ratio, c0 = spec["expand_ratio"], widths[0]
    stem = [ConvLayer(3, c0, 3, 2)] + [Residual(DSConv(c0, c0)) for _ in range(depths[0])]
    stages = []
    for i in (1, 2, 3, 4):
        c_in, c = widths[i - 1], widths[i]
        variant = "full" if i <= 2 else "local"
        blocks = [MBConv(c_in, c, 2, hidden_width(c_in, ratio), variant, kernel)]
        if i <= 2:
            blocks += [Residual(MBConv(c, c, 1, hidden_width(c, ratio), "full", kernel)) for _ in range(depths[i] - 1)]
        else:
            heads = lite_heads(c, spec["dim"], spec["heads_ratio"])
            mid = hidden_width(c, spec["local_expand_ratio"])
            blocks += [EfficientViTBlock(c, heads, spec["dim"], tuple(spec["scales"]), mid, kernel)
                       for _ in range(depths[i])]
        stages.append(nn.Sequential(*blocks))
    return Backbone(nn.Sequential(*stem), stages)


def efficientvit(spec):
    return Classifier(efficientvit_backbone(spec),
                      ClsHead(spec["widths"][4], spec["head_widths"], spec["num_classes"]))


def efficientvit_seed(spec):
    """The seed paper's model (reconstruction): MBConv stages with pooled shortcuts on every
    downsampling block, then LayerNorm linear-attention blocks in stages 3 and 4."""
    widths, kernel = seed_widths(spec["width_mult"]), spec["kernel"]
    stages = []
    for i, depth in zip((1, 2, 3, 4), spec["depths"]):
        c_in, c = widths[i - 1], widths[i]
        blocks = [SeedDownsample(c_in, c, seed_mid(c_in, c, spec["expansion_basis"]), kernel)]
        if i <= 2:
            blocks += [Residual(MBConv(c, c, 1, SEED_EXPANSION * c, "full", kernel)) for _ in range(depth - 1)]
        else:
            heads = seed_heads(c, spec["attention_ratio"])
            blocks += [SeedAttentionBlock(c, heads, kernel) for _ in range(depth)]
        stages.append(nn.Sequential(*blocks))
    backbone = Backbone(nn.Sequential(ConvLayer(3, widths[0], 3, 2)), stages)
    return Classifier(backbone, SeedHead(widths[4], seed_head_widths(spec["width_mult"]), spec["num_classes"]))
