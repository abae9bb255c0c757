"""The released EfficientViT-B classifiers and the seed paper's model as configs.

B0-B3 follow the released code exactly. The seed model is a reconstruction from the paper's
text (no code was released for it); its source text gives the published figures beside ours.
"""

from __future__ import annotations

from search_spaces.efficientvit.config import EfficientViTConfig, EfficientViTSeedConfig

SMALL_HEAD = (1024, 1280)
BIG_HEAD = (2304, 2560)

B0 = EfficientViTConfig(widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2), head_widths=SMALL_HEAD)
B1 = EfficientViTConfig()
B2 = EfficientViTConfig(widths=(24, 48, 96, 192, 384), depths=(1, 3, 4, 4, 6), dim=32, head_widths=BIG_HEAD)
B3 = EfficientViTConfig(widths=(32, 64, 128, 256, 512), depths=(1, 4, 6, 6, 9), dim=32, head_widths=BIG_HEAD)
SEED = EfficientViTSeedConfig()
SEED_W12 = EfficientViTSeedConfig(width_mult=1.2, resolution=224)

#: name -> (config at its published resolution, source)
EFFICIENTVIT_PRESETS: dict[str, tuple[EfficientViTConfig | EfficientViTSeedConfig, str]] = {
    "efficientvit-b0": (B0, "EfficientViT-B0 (released code, mit-han-lab/efficientvit)"),
    "efficientvit-b1": (B1, "EfficientViT-B1 (released code, mit-han-lab/efficientvit)"),
    "efficientvit-b2": (B2, "EfficientViT-B2 (released code, mit-han-lab/efficientvit)"),
    "efficientvit-b3": (B3, "EfficientViT-B3 (released code, mit-han-lab/efficientvit)"),
    "efficientvit-seed": (
        SEED, "EfficientViT seed paper (arXiv v1), w1.0 at 192: reconstruction; published 7.9 M params / "
              "304 M MACs, ours 7,943,368 / 303.88 M"),
    "efficientvit-seed-w1.2": (
        SEED_W12, "EfficientViT seed paper (arXiv v1), w1.2 at 224: reconstruction; published 10.9 M params / "
                  "584 M MACs, ours 10,795,400 / 587.71 M"),
}
