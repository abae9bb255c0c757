"""The LowFormer network from a plain dict of knobs (``LowFormerConfig.to_dict()``).

Takes a dict rather than the config class so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py`` and ``rules.py``.
"""

from torch import nn

from search_spaces.lowformer.modules import ClsHead, ConvLayer, LowFormerBlock, Residual, conv_block
from search_spaces.lowformer.rules import expanded, local_fused

LOWFORMER_FEATURE_KEYS = ("stage0", "stage1", "stage2", "stage3", "stage_final")


class Backbone(nn.Module):
    """Stem + four stages; ``forward`` returns the feature dict ``stage0`` .. ``stage_final``
    (shared with EfficientViT, whose released code has the same layout)."""

    def __init__(self, input_stem, stages):
        super().__init__()
        self.input_stem = input_stem
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        x = self.input_stem(x)
        features = {"stage0": x}
        for key, stage in zip(LOWFORMER_FEATURE_KEYS[1:], self.stages):
            x = stage(x)
            features[key] = x
        return features


class Classifier(nn.Module):
    """Backbone + head; ``forward_features`` gives the per-stage feature maps."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward_features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x)["stage_final"])


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
