"""The published LowFormer models and the papers' ablations as configs.

"official" follows the reference code (standalone file for B0/B1/B1.5/B3/E1-E3, training-code
flags for B2 and the ablations); see docs on the LowFormer architecture, sections 5 and 6.
"""

from __future__ import annotations

import dataclasses

from search_spaces.lowformer.config import STAGE3_DEFAULT, STAGE4_DEFAULT, LowFormerConfig

BIG_HEAD = (2304, 2560)


def _both_stages(config: LowFormerConfig, **knobs) -> LowFormerConfig:
    return dataclasses.replace(
        config,
        stage3=dataclasses.replace(config.stage3, **knobs),
        stage4=dataclasses.replace(config.stage4, **knobs),
    )


B0 = LowFormerConfig(depths=(0, 1, 1, 3, 4), downsample_expansion=4)
B1 = LowFormerConfig()
B15 = LowFormerConfig(widths=(20, 40, 80, 160, 320), depths=(0, 1, 1, 6, 6), head_widths=BIG_HEAD)
B2 = LowFormerConfig(widths=(24, 48, 96, 192, 384), depths=(0, 1, 1, 6, 6), head_widths=BIG_HEAD)
B3 = LowFormerConfig(widths=(32, 64, 128, 256, 512), depths=(1, 2, 3, 6, 6), stem_expansion=4)
E1 = _both_stages(dataclasses.replace(B15, depths=(0, 1, 1, 4, 4)), attention="none", mlp=False)
E2 = _both_stages(dataclasses.replace(B3, depths=(1, 2, 3, 4, 4)), attention="none", mlp=False)
E3 = _both_stages(B3, mlp=False)


def _shallow(config: LowFormerConfig) -> LowFormerConfig:
    """Change a) of the edge variants: stages 3 and 4 two blocks shallower, MLP removed."""
    d = config.depths
    return _both_stages(dataclasses.replace(config, depths=(d[0], d[1], d[2], d[3] - 2, d[4] - 2)), mlp=False)


#: name -> (config at 224, source)
LOWFORMER_PRESETS: dict[str, tuple[LowFormerConfig, str]] = {
    "lowformer-b0": (B0, "LowFormer B0 (reference code)"),
    "lowformer-b1": (B1, "LowFormer B1 (reference code)"),
    "lowformer-b1.5": (B15, "LowFormer B1.5 (reference code)"),
    "lowformer-b2": (B2, "LowFormer B2 (training-code flags; the standalone b2 entry is a bug)"),
    "lowformer-b3": (B3, "LowFormer B3 (reference code)"),
    "lowformer-e1": (E1, "LowFormer E1 (standalone reference, June 2026)"),
    "lowformer-e2": (E2, "LowFormer E2 (standalone reference, June 2026)"),
    "lowformer-e3": (E3, "LowFormer E3 (standalone reference, June 2026)"),
    "lowformer-b1-unfused-mbconv": (
        dataclasses.replace(B1, unfused=True), "ablation b1_ablation: unfused MBConv everywhere"),
    "lowformer-b1-attention-removed": (
        _both_stages(dataclasses.replace(B1, depths=(1, 2, 2, 7, 7)), attention="none", mlp=False),
        "ablation b1_ablation2: conv-only (noattention resets depths to 1,2,2,7,7)"),
    "lowformer-b1-relu-linear-attention": (
        _both_stages(B1, attention="relu-linear", attention_stride=1, attention_kernel=5,
                     compression=1.0, head_dim=16, mlp=False),
        "ablation b1_ablation3: EfficientViT ReLU linear attention, no GroupNorm, no MLP"),
    "lowformer-b1-high-res-attention": (
        dataclasses.replace(B1, stage3=dataclasses.replace(STAGE3_DEFAULT, attention_stride=1)),
        "ablation b1_ablation4: stride-1 attention in stage 3 (5x5 kernel kept)"),
    "lowformer-b1-no-channel-compression": (
        _both_stages(B1, compression=1.0), "paper ablation: no channel compression (m = 1)"),
    "lowformer-b1-original-mhsa": (
        dataclasses.replace(
            B1,
            stage3=dataclasses.replace(STAGE3_DEFAULT, attention="mhsa", attention_stride=1, compression=1.0),
            stage4=dataclasses.replace(STAGE4_DEFAULT, attention="mhsa", attention_stride=1, compression=1.0),
        ),
        "paper ablation: plain MHSA at full stage resolution (reconstruction; no reference config)"),
    "lowformer-b1-mlpless": (_both_stages(B1, mlp=False), "paper ablation: B1 without MLP"),
    "lowformer-b1-mlpless-shallow": (_shallow(B1), "paper ablation: B1 without MLP, stages 3/4 two blocks shallower"),
    "lowformer-b1.5-mlpless": (_both_stages(B15, mlp=False), "paper ablation: B1.5 without MLP"),
    "lowformer-b1.5-mlpless-shallow": (_shallow(B15), "paper ablation: B1.5 without MLP, shallower"),
    "lowformer-b3-mlpless-shallow": (_shallow(B3), "paper ablation: B3 without MLP, shallower"),
}
