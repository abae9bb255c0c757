"""The backbone and classifier of LowFormer and EfficientViT-B, from their stem and stages.

Takes built modules rather than configs so that an exported ``model.py`` can carry it.
"""

from torch import nn

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
