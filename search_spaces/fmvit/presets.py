"""FMViT presets: T, S, M, B, L, each in the fused inference form and in the training form.

All are reconstructions (the paper's code was never released): widths are decoded from its
Table 1 and the per-stage depths calibrated against the published parameters and FLOPs. The
training form uses the multi-group set {2, 4}.
"""

from __future__ import annotations

from search_spaces.fmvit.config import FMViTConfig

_WIDE = dict(stem_widths=(64, 64), embed_widths=(64, 96, 320, 480), block_widths=(96, 256, 384, 640),
             fm_widths=(64, 96, 256))

#: model -> (config, published params / MACs, ours fused params / MACs at 224)
_MODELS: dict[str, tuple[FMViTConfig, str, str]] = {
    "t": (FMViTConfig(), "2.0 M / 0.3 G", "1,983,688 / 308.53 M"),
    "s": (FMViTConfig(stem_widths=(48, 48), embed_widths=(48, 48, 160, 320), block_widths=(48, 96, 192, 384),
                      fm_widths=(32, 64, 128), depths=(3, 3, 2, 3)), "6.4 M / 0.8 G", "6,363,560 / 811.20 M"),
    "m": (FMViTConfig(stem_widths=(64, 64), embed_widths=(64, 96, 160, 480), block_widths=(96, 128, 320, 512),
                      fm_widths=(32, 96, 192), depths=(3, 3, 5, 2)), "12.8 M / 2.0 G", "12,895,400 / 1993.54 M"),
    "b": (FMViTConfig(**_WIDE, depths=(3, 5, 6, 3)), "24.3 M / 4.2 G", "24,089,320 / 4190.07 M"),
    "l": (FMViTConfig(**_WIDE, depths=(6, 11, 10, 6)), "35.3 M / 7.1 G", "35,466,280 / 7111.65 M"),
}


def _presets() -> dict[str, tuple[FMViTConfig, str]]:
    out: dict[str, tuple[FMViTConfig, str]] = {}
    for key, (config, published, ours) in _MODELS.items():
        source = (f"FMViT-{key.upper()}: reconstruction (widths decoded from the paper's Table 1, depths "
                  f"calibrated); published {published} params / FLOPs, ours {ours}")
        out[f"fmvit-{key}"] = (config, source)
        out[f"fmvit-{key}-train"] = (config.trainable(), source.replace(": reconstruction", ", training form with "
                                                                         "reparameterisation branches: reconstruction"))
    return out


#: name -> (config at 224, source)
FMVIT_PRESETS: dict[str, tuple[FMViTConfig, str]] = _presets()
