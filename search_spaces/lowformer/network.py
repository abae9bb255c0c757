"""The LowFormer network from a plain dict of knobs (``LowFormerConfig.to_dict()``).

Takes a dict rather than the config class so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py``, ``rules.py`` and the shared blocks it composes.
"""

from torch import nn

from search_spaces.blocks.modules import ClsHead, ConvLayer, Residual
from search_spaces.blocks.network import Backbone, Classifier
from search_spaces.blocks.rules import expanded
from search_spaces.lowformer.modules import LowFormerBlock, conv_block
from search_spaces.lowformer.rules import local_fused


def lowformer_backbone(spec):
    """The LowFormer stem and stages from a dict of knobs."""
    widths, depths, unfused = spec["widths"], spec["depths"], spec["unfused"]
    c0 = widths[0]
    stem = [ConvLayer(3, c0, 3, 2)]
    stem += [Residual(conv_block(c0, c0, 1, expanded(c0, spec["stem_expansion"]), unfused))
             for _ in range(depths[0])]
    stages = []
    for i in (1, 2, 3, 4):
        c_in, c_out = widths[i - 1], widths[i]
        blocks = [conv_block(c_in, c_out, 2, expanded(c_in, spec["downsample_expansion"]), unfused)]
        if i <= 2:
            mid = expanded(c_out, spec["block_expansion"])
            blocks += [Residual(conv_block(c_out, c_out, 1, mid, unfused)) for _ in range(depths[i] - 1)]
        else:
            fused = local_fused(c_out, spec["fusion_threshold"], unfused)
            blocks += [LowFormerBlock(c_out, spec[f"stage{i}"], fused, spec["block_expansion"], unfused)
                       for _ in range(depths[i])]
        stages.append(nn.Sequential(*blocks))
    return Backbone(nn.Sequential(*stem), stages)


class LowFormer(Classifier):
    """The LowFormer classifier: backbone + classification head."""

    def __init__(self, spec):
        super().__init__(lowformer_backbone(spec), ClsHead(spec["widths"][4], spec["head_widths"], spec["num_classes"]))
