"""Sampling the MCGA space: flat knobs for search and seeded random configs.

Heads are derived from a per-stage ``head_dim`` knob (heads = max(1, d // head_dim)), which keeps
every sampled width divisible by its heads; kernel sets are strings so that every value is a scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces.base import KnobError
from search_spaces.mcga.config import MCGAConfig
from search_spaces.sampling import FlatSpace

#: kernels knob value -> depthwise kernels of the local-query branches
KERNELS = {"3,5": (3, 5), "3,7": (3, 7), "5,7": (5, 7), "3": (3,), "5": (5,), "7": (7,)}

#: flat knob name -> allowed values (ordered where it matters)
KNOBS: dict[str, tuple[Any, ...]] = {
    "dim1": (24, 32, 48, 64),
    "dim2": (48, 64, 96, 128),
    "dim3": (96, 128, 192, 256),
    "dim4": (192, 256, 384, 512),
    "depth1": (1, 2, 3, 4),
    "depth2": (1, 2, 3, 4),
    "depth3": (2, 4, 6, 8, 10, 12),
    "depth4": (2, 4, 6, 8, 10, 12),
    "head_dim1": (16, 32),
    "head_dim2": (16, 32),
    "head_dim3": (16, 32),
    "head_dim4": (16, 32),
    "group_tokens": (4, 8, 16),
    "kernels": tuple(KERNELS),
    "projection": ("fusion", "query", "both"),
    "token_mlp_ratio": (0, 2, 4),
    "mlp_ratio": (2, 3, 4),
    "patch_embed": ("non-overlapping", "overlapping"),
    "classifier_hidden": (0, 1024, 1152, 1280),
}


def config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> MCGAConfig:
    """A config from one value per flat knob."""
    SPACE.require(flat)
    if flat["kernels"] not in KERNELS:
        raise KnobError("kernels", flat["kernels"], "one of " + ", ".join(KERNELS))
    dims = tuple(flat[f"dim{i}"] for i in range(1, 5))
    return MCGAConfig(
        dims=dims, depths=tuple(flat[f"depth{i}"] for i in range(1, 5)),
        heads=tuple(max(1, d // flat[f"head_dim{i}"]) for i, d in enumerate(dims, start=1)),
        group_tokens=flat["group_tokens"], kernels=KERNELS[flat["kernels"]], projection=flat["projection"],
        token_mlp_ratio=flat["token_mlp_ratio"], mlp_ratio=flat["mlp_ratio"], patch_embed=flat["patch_embed"],
        classifier_hidden=flat["classifier_hidden"], resolution=resolution,
    )


def _head_dim(stage: int, dim: int, heads: int) -> int:
    """The first head_dim knob value giving ``heads`` (narrow dims collapse to one head)."""
    return next((hd for hd in KNOBS[f"head_dim{stage}"] if max(1, dim // hd) == heads), dim // heads)


def flat_from_config(config: MCGAConfig) -> dict[str, Any]:
    """The flat knobs of a config (the inverse of ``config_from_flat`` for configs in the table)."""
    flat: dict[str, Any] = {f"dim{i}": d for i, d in enumerate(config.dims, start=1)}
    flat.update({f"depth{i}": d for i, d in enumerate(config.depths, start=1)})
    flat.update({f"head_dim{i}": _head_dim(i, d, h) for i, (d, h) in enumerate(zip(config.dims, config.heads), start=1)})
    flat.update(group_tokens=config.group_tokens, kernels=",".join(map(str, config.kernels)),
                projection=config.projection, token_mlp_ratio=config.token_mlp_ratio, mlp_ratio=config.mlp_ratio,
                patch_embed=config.patch_embed, classifier_hidden=config.classifier_hidden)
    return flat


#: the MCGA space as a knob table
SPACE = FlatSpace(MCGAConfig.space, KNOBS, config_from_flat, flat_from_config)


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[MCGAConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    return SPACE.sample(n, seed, resolution)
