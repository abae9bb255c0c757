"""Sampling the FMViT space: flat knobs for search and seeded random configs.

Search runs on the inference form (the training form's branches fold away). As in the paper,
each stage's patch embedding keeps the incoming width (a_i = previous stage output) and the
stem's three convs share one width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces.fmvit.config import FMViTConfig
from search_spaces.fmvit.rules import fmb_width
from search_spaces.sampling import FlatSpace

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
    SPACE.require(flat)
    blocks = tuple(flat[f"block{i}"] for i in range(1, 5))
    fms = tuple(flat[f"fm{i}"] for i in range(2, 5))
    outputs = (blocks[0],) + tuple(fmb_width(f, flat["fmb_cfbs"]) for f in fms)
    return FMViTConfig(
        stem_widths=(flat["stem"], flat["stem"]), embed_widths=(flat["stem"],) + outputs[:3], block_widths=blocks,
        fm_widths=fms, depths=tuple(flat[f"depth{i}"] for i in range(1, 5)), fmb_cfbs=flat["fmb_cfbs"],
        mlp_ratio=flat["mlp_ratio"], head_dim=flat["head_dim"], out_proj=flat["out_proj"], resolution=resolution,
    )


def flat_from_config(config: FMViTConfig) -> dict[str, Any]:
    """The flat knobs of a config (the inverse of ``config_from_flat`` for configs in the table)."""
    flat: dict[str, Any] = {"stem": config.stem_widths[0]}
    flat.update({f"block{i}": w for i, w in enumerate(config.block_widths, start=1)})
    flat.update({f"fm{i}": f for i, f in enumerate(config.fm_widths, start=2)})
    flat.update({f"depth{i}": d for i, d in enumerate(config.depths, start=1)})
    flat.update(fmb_cfbs=config.fmb_cfbs, mlp_ratio=config.mlp_ratio, head_dim=config.head_dim,
                out_proj=config.out_proj)
    return flat


#: the FMViT space (inference form) as a knob table
SPACE = FlatSpace(FMViTConfig.space, KNOBS, config_from_flat, flat_from_config)


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[FMViTConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    return SPACE.sample(n, seed, resolution)
