"""Sampling the FMViT space: flat knobs for search and seeded random configs.

Search runs on the inference form (the training form's branches fold away). As in the paper,
each stage's patch embedding keeps the incoming width (a_i = previous stage output) and the
stem's three convs share one width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces.base import KnobError
from search_spaces.fmvit.config import FMViTConfig
from search_spaces.fmvit.rules import fmb_width

#: flat knob name -> allowed values (ordered where it matters)
KNOBS: dict[str, tuple[Any, ...]] = {
    "stem": (16, 24, 32, 48, 64),
    "block1": (32, 48, 64, 96),
    "block2": (64, 96, 128, 256),
    "block3": (128, 192, 320, 384),
    "block4": (192, 384, 512, 640),
    "fm2": (16, 32, 48, 64),
    "fm3": (32, 64, 96, 128),
    "fm4": (64, 128, 192, 256),
    "depth1": (1, 2, 3, 4, 6),
    "depth2": (1, 2, 3, 4, 6, 8, 10, 12),
    "depth3": (1, 2, 3, 4, 6, 8, 10, 12),
    "depth4": (1, 2, 3, 4, 6, 8),
    "fmb_cfbs": (2, 3, 4),
    "mlp_ratio": (2, 3, 4),
    "head_dim": (16, 32, 64),
    "out_proj": (False, True),
}


def config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> FMViTConfig:
    """An inference-form config from one value per flat knob."""
    missing = [k for k in KNOBS if k not in flat]
    if missing:
        raise KnobError(missing[0], None, "a value for every knob in KNOBS")
    blocks = tuple(flat[f"block{i}"] for i in range(1, 5))
    fms = tuple(flat[f"fm{i}"] for i in range(2, 5))
    outputs = (blocks[0],) + tuple(fmb_width(f, flat["fmb_cfbs"]) for f in fms)
    return FMViTConfig(
        stem_widths=(flat["stem"], flat["stem"]), embed_widths=(flat["stem"],) + outputs[:3], block_widths=blocks,
        fm_widths=fms, depths=tuple(flat[f"depth{i}"] for i in range(1, 5)), fmb_cfbs=flat["fmb_cfbs"],
        mlp_ratio=flat["mlp_ratio"], head_dim=flat["head_dim"], out_proj=flat["out_proj"], resolution=resolution,
    )


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[FMViTConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    rng = np.random.default_rng(seed)
    return [config_from_flat({k: v[int(rng.integers(len(v)))] for k, v in KNOBS.items()}, resolution)
            for _ in range(n)]
