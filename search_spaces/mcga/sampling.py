"""Sampling the MCGA space: flat knobs for search and seeded random configs.

Heads are derived from a per-stage ``head_dim`` knob (heads = max(1, d // head_dim)), which keeps
every sampled width divisible by its heads; kernel sets are strings so that every value is a scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces.base import KnobError
from search_spaces.mcga.config import MCGAConfig

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
    missing = [k for k in KNOBS if k not in flat]
    if missing:
        raise KnobError(missing[0], None, "a value for every knob in KNOBS")
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


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[MCGAConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    rng = np.random.default_rng(seed)
    return [config_from_flat({k: v[int(rng.integers(len(v)))] for k, v in KNOBS.items()}, resolution)
            for _ in range(n)]
