"""The FMViT network from a plain dict of knobs (``FMViTConfig.to_dict()``).

Takes a dict rather than the config class so that an exported ``model.py`` needs nothing but
torch, this file, ``modules.py`` and ``rules.py``.
"""

from torch import nn

from search_spaces.fmvit.modules import CFB, FMB, FMViTHead, Stem, patch_embed, reparameterize
from search_spaces.fmvit.rules import fmb_width

FMVIT_FEATURE_KEYS = ("stage1", "stage2", "stage3", "stage_final")


class FMViTBackbone(nn.Module):
    """Stem + four stages; ``forward`` returns the feature dict ``stage1`` .. ``stage_final``."""

    def __init__(self, spec):
        super().__init__()
        rep = tuple(spec["multi_groups"]) if spec["form"] == "train" else None
        c1, c3 = spec["stem_widths"]
        self.stem = Stem(c1, c3, rep)
        ratio, cfbs = spec["mlp_ratio"], spec["fmb_cfbs"]
        stages, c_in = [], c3
        for i in range(4):
            a, b = spec["embed_widths"][i], spec["block_widths"][i]
            blocks = [patch_embed(c_in, a, 1 if i == 0 else 2, rep), patch_embed(a, b, 1, rep)]
            blocks += [CFB(b, ratio, rep) for _ in range(spec["depths"][i])]
            c_in = b
            if i > 0:
                f = spec["fm_widths"][i - 1]
                blocks.append(FMB(b, f, cfbs, ratio, spec["head_dim"], spec["out_proj"], rep))
                c_in = fmb_width(f, cfbs)
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        x = self.stem(x)
        features = {}
        for key, stage in zip(FMVIT_FEATURE_KEYS, self.stages):
            x = stage(x)
            features[key] = x
        return features


class FMViT(nn.Module):
    """Backbone + classification head; ``fuse()`` gives the inference form of a training-form model."""

    def __init__(self, spec):
        super().__init__()
        self.backbone = FMViTBackbone(spec)
        width = fmb_width(spec["fm_widths"][2], spec["fmb_cfbs"])
        self.head = FMViTHead(width, spec["num_classes"], None if spec["form"] == "inference" else ())

    def forward_features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x)["stage_final"])

    def fuse(self):
        """An eval-mode inference-form copy computing the same function (in eval mode)."""
        return reparameterize(self)
