"""Sampling the LowFormer space: seeded random and Sobol configs, mutations, neighbours.

The space is flattened into ``KNOBS`` (flat knob name -> allowed values), so that a search can
sample every knob in every trial. Some combinations collapse: the linear and group attentions run
at stride 1 (``config_from_flat`` sets it), and every knob the network does not use (a stage
without blocks, attention knobs without attention, ``scales`` and ``group_tokens`` of another
type, ...) takes its canonical value in the config itself, so equal networks get one id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces.base import KnobError
from search_spaces.lowformer.config import (
    FULL_RESOLUTION_ATTENTION,
    FUSION_THRESHOLD_STEPS,
    HEAD_DIM_STEPS,
    LowFormerConfig,
    TransformerStage,
)
from search_spaces.sampling import LITE_MLA_SCALES, FlatSpace

STAGE_KNOBS: dict[str, tuple[Any, ...]] = {
    "attention": ("lowtention", "mhsa", "relu-linear", "relu-linear-ms", "rlmhsa", "group-attention", "none"),
    "attention_stride": (1, 2, 4),
    "attention_kernel": (3, 5, 7),
    "compression": (1.0, 0.5, 0.25),
    "head_dim": HEAD_DIM_STEPS,
    "mlp": (True, False),
    "mlp_ratio": (2, 3, 4),
    "scales": tuple(LITE_MLA_SCALES),
    "group_tokens": (4, 8, 16),
}

#: flat knob name -> allowed values (ordered: neighbours are adjacent values)
KNOBS: dict[str, tuple[Any, ...]] = {
    "width0": (16, 20, 24, 32, 40, 48),
    "width1": (24, 32, 40, 48, 64, 80, 96),
    "width2": (48, 64, 80, 96, 128, 160, 192),
    "width3": (96, 128, 160, 192, 256, 320),
    "width4": (160, 192, 256, 320, 384, 448, 512),
    "depth0": (0, 1, 2),
    "depth1": (1, 2, 3),
    "depth2": (1, 2, 3, 4),
    "depth3": (0, 1, 2, 3, 4, 5, 6, 7, 8),
    "depth4": (0, 1, 2, 3, 4, 5, 6, 7, 8),
    "stem_expansion": (2, 4),
    "downsample_expansion": (4, 6),
    "block_expansion": (2, 4, 6),
    "fusion_threshold": FUSION_THRESHOLD_STEPS,
    **{f"stage3.{k}": v for k, v in STAGE_KNOBS.items()},
    **{f"stage4.{k}": v for k, v in STAGE_KNOBS.items()},
    "unfused": (False, True),
    "head_w0": (1024, 1536, 2048, 2304),
    "head_w1": (1280, 1600, 2048, 2560),
}


def _stage_from_flat(flat: Mapping[str, Any], prefix: str) -> TransformerStage:
    knobs = {k: flat[f"{prefix}.{k}"] for k in STAGE_KNOBS}
    if knobs["scales"] not in LITE_MLA_SCALES:
        raise KnobError(f"{prefix}.scales", knobs["scales"], "one of " + ", ".join(LITE_MLA_SCALES))
    knobs["scales"] = LITE_MLA_SCALES[knobs["scales"]]
    if knobs["attention"] in FULL_RESOLUTION_ATTENTION:
        knobs["attention_stride"] = 1
    return TransformerStage(**knobs)


def config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> LowFormerConfig:
    """A config from one value per flat knob (canonical: see module docstring)."""
    SPACE.require(flat)
    try:
        stages = {s: _stage_from_flat(flat, s) for s in ("stage3", "stage4")}
    except KnobError as err:
        raise KnobError(err.knob, err.value, err.allowed) from None
    return LowFormerConfig(
        widths=tuple(flat[f"width{i}"] for i in range(5)),
        depths=tuple(flat[f"depth{i}"] for i in range(5)),
        stem_expansion=flat["stem_expansion"],
        downsample_expansion=flat["downsample_expansion"],
        block_expansion=flat["block_expansion"],
        fusion_threshold=flat["fusion_threshold"],
        unfused=flat["unfused"],
        head_widths=(flat["head_w0"], flat["head_w1"]),
        resolution=resolution,
        **stages,
    )


def flat_from_config(config: LowFormerConfig) -> dict[str, Any]:
    """The flat knobs of a config (the inverse of ``config_from_flat`` for in-space configs)."""
    flat: dict[str, Any] = {f"width{i}": w for i, w in enumerate(config.widths)}
    flat.update({f"depth{i}": d for i, d in enumerate(config.depths)})
    flat.update(stem_expansion=config.stem_expansion, downsample_expansion=config.downsample_expansion,
                block_expansion=config.block_expansion, fusion_threshold=config.fusion_threshold,
                unfused=config.unfused, head_w0=config.head_widths[0], head_w1=config.head_widths[1])
    for s in ("stage3", "stage4"):
        stage = getattr(config, s)
        flat.update({f"{s}.{k}": getattr(stage, k) for k in STAGE_KNOBS})
        flat[f"{s}.scales"] = next((k for k, v in LITE_MLA_SCALES.items() if v == stage.scales), stage.scales)
    return flat


#: the LowFormer space as a knob table
SPACE = FlatSpace(LowFormerConfig.space, KNOBS, config_from_flat, flat_from_config)


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[LowFormerConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    return SPACE.sample(n, seed, resolution)


def sobol_configs(n: int, seed: int, resolution: int = 224) -> list[LowFormerConfig]:
    """``n`` configs from a scrambled Sobol sequence: better coverage than random for small n."""
    return SPACE.sobol(n, seed, resolution)


def mutate(config: LowFormerConfig, rng: np.random.Generator, n_knobs: int = 1) -> LowFormerConfig:
    """A copy of ``config`` with ``n_knobs`` random knobs set to other allowed values."""
    return SPACE.mutate(config, rng, n_knobs)


def neighbours(config: LowFormerConfig) -> list[LowFormerConfig]:
    """Configs one step away (see :meth:`FlatSpace.neighbours`)."""
    return SPACE.neighbours(config)


def in_space(config: LowFormerConfig) -> bool:
    """Whether every knob of ``config`` takes one of the sampled values (presets may not)."""
    return SPACE.contains(config)
