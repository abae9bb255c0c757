"""The LowFormer network from a plain dict of knobs (``LowFormerConfig.to_dict()``).

Takes a dict rather than the config class so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py`` and ``rules.py``.
"""

from torch import nn

from search_spaces.lowformer.modules import ClsHead, ConvLayer, LowFormerBlock, Residual, conv_block
from search_spaces.lowformer.rules import expanded, local_fused

LOWFORMER_FEATURE_KEYS = ("stage0", "stage1", "stage2", "stage3", "stage_final")


class LowFormerBackbone(nn.Module):
    """Stem + four stages; ``forward`` returns the feature dict ``stage0`` .. ``stage_final``."""

    def __init__(self, spec):
        super().__init__()
        widths, depths, unfused = spec["widths"], spec["depths"], spec["unfused"]
        c0 = widths[0]
        stem = [ConvLayer(3, c0, 3, 2)]
        stem += [Residual(conv_block(c0, c0, 1, expanded(c0, spec["stem_expansion"]), unfused))
                 for _ in range(depths[0])]
        self.input_stem = nn.Sequential(*stem)
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
        self.stages = nn.ModuleList(stages)
        self.widths = tuple(widths)

    def forward(self, x):
        x = self.input_stem(x)
        features = {"stage0": x}
        for key, stage in zip(LOWFORMER_FEATURE_KEYS[1:], self.stages):
            x = stage(x)
            features[key] = x
        return features


class LowFormer(nn.Module):
    """Backbone + classification head; ``forward_features`` gives the per-stage feature maps."""

    def __init__(self, spec):
        super().__init__()
        self.backbone = LowFormerBackbone(spec)
        self.head = ClsHead(spec["widths"][4], spec["head_widths"], spec["num_classes"])

    def forward_features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x)["stage_final"])
