"""Sampling the EfficientViT spaces: flat knobs for search and seeded random configs.

Each space is flattened into a knob table (flat knob name -> allowed values, scalars only, so a
search library can sample them as categoricals), with ``*_from_flat`` building the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces.base import KnobError
from search_spaces.efficientvit.config import SEED_WIDTH_MULTS, EfficientViTConfig, EfficientViTSeedConfig
from search_spaces.sampling import LITE_MLA_SCALES, FlatSpace

#: scales knob value -> LiteMLA aggregation kernels
SCALES = LITE_MLA_SCALES

#: flat knob name -> allowed values of the EfficientViT-B space (ordered where it matters)
KNOBS: dict[str, tuple[Any, ...]] = {
    "width0": (8, 16, 24, 32),
    "width1": (16, 24, 32, 48, 64),
    "width2": (32, 48, 64, 96, 128),
    "width3": (64, 96, 128, 192, 256),
    "width4": (128, 192, 256, 384, 512),
    "depth0": (0, 1, 2),
    "depth1": (1, 2, 3, 4),
    "depth2": (1, 2, 3, 4, 5, 6),
    "depth3": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "depth4": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "dim": (8, 16, 32),
    "heads_ratio": (0.5, 1.0, 2.0),
    "expand_ratio": (2, 3, 4, 6),
    "local_expand_ratio": (2, 3, 4, 6),
    "scales": tuple(SCALES),
    "kernel": (3, 5),
    "head_w0": (1024, 1536, 2304),
    "head_w1": (1280, 1600, 2560),
}

#: flat knob name -> allowed values of the seed-paper space
SEED_KNOBS: dict[str, tuple[Any, ...]] = {
    "width_mult": SEED_WIDTH_MULTS,
    "depth1": (1, 2, 3),
    "depth2": (1, 2, 3, 4),
    "depth3": (0, 1, 2, 3, 4, 5, 6, 8),
    "depth4": (0, 1, 2, 3, 4),
    "attention_ratio": (1, 2),
    "kernel": (3, 5),
    "expansion_basis": ("output", "input"),
}


def config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> EfficientViTConfig:
    """An EfficientViT-B config from one value per flat knob."""
    SPACE.require(flat)
    if flat["scales"] not in SCALES:
        raise KnobError("scales", flat["scales"], "one of " + ", ".join(SCALES))
    return EfficientViTConfig(
        widths=tuple(flat[f"width{i}"] for i in range(5)),
        depths=tuple(flat[f"depth{i}"] for i in range(5)),
        dim=flat["dim"], heads_ratio=flat["heads_ratio"], expand_ratio=flat["expand_ratio"],
        local_expand_ratio=flat["local_expand_ratio"], scales=SCALES[flat["scales"]], kernel=flat["kernel"],
        head_widths=(flat["head_w0"], flat["head_w1"]), resolution=resolution,
    )


def flat_from_config(config: EfficientViTConfig) -> dict[str, Any]:
    """The flat knobs of a config (the inverse of ``config_from_flat``)."""
    flat: dict[str, Any] = {f"width{i}": w for i, w in enumerate(config.widths)}
    flat.update({f"depth{i}": d for i, d in enumerate(config.depths)})
    flat.update(dim=config.dim, heads_ratio=config.heads_ratio, expand_ratio=config.expand_ratio,
                local_expand_ratio=config.local_expand_ratio, kernel=config.kernel,
                scales=next(k for k, v in SCALES.items() if v == config.scales),
                head_w0=config.head_widths[0], head_w1=config.head_widths[1])
    return flat


def seed_config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> EfficientViTSeedConfig:
    """A seed-paper config from one value per flat knob."""
    SEED_SPACE.require(flat)
    return EfficientViTSeedConfig(
        width_mult=flat["width_mult"], depths=tuple(flat[f"depth{i}"] for i in range(1, 5)),
        attention_ratio=flat["attention_ratio"], kernel=flat["kernel"], expansion_basis=flat["expansion_basis"],
        resolution=resolution,
    )


def seed_flat_from_config(config: EfficientViTSeedConfig) -> dict[str, Any]:
    """The flat knobs of a seed-paper config (the inverse of ``seed_config_from_flat``)."""
    flat: dict[str, Any] = {f"depth{i}": d for i, d in enumerate(config.depths, start=1)}
    flat.update(width_mult=config.width_mult, attention_ratio=config.attention_ratio, kernel=config.kernel,
                expansion_basis=config.expansion_basis)
    return flat


#: the EfficientViT-B space and the seed paper's space as knob tables
SPACE = FlatSpace(EfficientViTConfig.space, KNOBS, config_from_flat, flat_from_config)
SEED_SPACE = FlatSpace(EfficientViTSeedConfig.space, SEED_KNOBS, seed_config_from_flat, seed_flat_from_config)


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[EfficientViTConfig]:
    """``n`` EfficientViT-B configs, each knob uniform over its values; same seed, same list."""
    return SPACE.sample(n, seed, resolution)


def sample_seed_configs(n: int, seed: int, resolution: int = 224) -> list[EfficientViTSeedConfig]:
    """``n`` seed-paper configs, each knob uniform over its values; same seed, same list."""
    return SEED_SPACE.sample(n, seed, resolution)
