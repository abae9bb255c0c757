"""The MCGA network from a plain dict of knobs (``MCGAConfig.to_dict()``).

Takes a dict rather than the config class so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py`` and ``rules.py``.
"""

from torch import nn

from search_spaces.mcga.modules import ConvPatchEmbed, MCGABlock, MCGAHead

MCGA_FEATURE_KEYS = ("stage1", "stage2", "stage3", "stage_final")


class MCGABackbone(nn.Module):
    """Four stages of patch embedding + MCGA blocks; ``forward`` returns the NCHW feature dict."""

    def __init__(self, spec):
        super().__init__()
        stages, c_in = [], 3
        for i, (c, depth, heads) in enumerate(zip(spec["dims"], spec["depths"], spec["heads"]), start=1):
            blocks = [ConvPatchEmbed(c_in, c, i, spec["patch_embed"])]
            blocks += [MCGABlock(c, heads, spec["group_tokens"], tuple(spec["kernels"]), spec["projection"],
                                 spec["token_mlp_ratio"], spec["mlp_ratio"]) for _ in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        features = {}
        for key, stage in zip(MCGA_FEATURE_KEYS, self.stages):
            x = stage(x)
            features[key] = x
        return features


class MCGA(nn.Module):
    """Backbone + classification head; ``forward_features`` gives the per-stage feature maps."""

    def __init__(self, spec):
        super().__init__()
        self.backbone = MCGABackbone(spec)
        self.head = MCGAHead(spec["dims"][3], spec["classifier_hidden"], spec["num_classes"])

    def forward_features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x)["stage_final"])
