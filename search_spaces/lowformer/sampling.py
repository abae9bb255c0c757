"""Sampling the LowFormer space: seeded random and Sobol configs, mutations, neighbours.

The space is flattened into ``KNOBS`` (flat knob name -> allowed values), so that a search can
sample every knob in every trial. Some combinations collapse (``relu-linear`` runs at stride 1,
attention knobs do nothing when the attention is ``none``); ``config_from_flat`` normalises
them, and architecture ids then identify the duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces.base import KnobError
from search_spaces.lowformer.config import LowFormerConfig, TransformerStage

STAGE_KNOBS: dict[str, tuple[Any, ...]] = {
    "attention": ("lowtention", "mhsa", "relu-linear", "none"),
    "attention_stride": (1, 2, 4),
    "attention_kernel": (3, 5, 7),
    "compression": (1.0, 0.5, 0.25),
    "head_dim": (16, 30, 64),
    "mlp": (True, False),
    "mlp_ratio": (2, 3, 4),
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
    "fusion_threshold": (0, 128, 192, 256, 384, 4096),
    **{f"stage3.{k}": v for k, v in STAGE_KNOBS.items()},
    **{f"stage4.{k}": v for k, v in STAGE_KNOBS.items()},
    "unfused": (False, True),
    "head_w0": (1024, 1536, 2048, 2304),
    "head_w1": (1280, 1600, 2048, 2560),
}


def _stage_from_flat(flat: Mapping[str, Any], prefix: str) -> TransformerStage:
    knobs = {k: flat[f"{prefix}.{k}"] for k in STAGE_KNOBS}
    if knobs["attention"] == "relu-linear":
        knobs["attention_stride"] = 1
    if knobs["attention"] == "none":
        knobs.update(attention_stride=1, attention_kernel=3, compression=1.0, head_dim=30)
    if not knobs["mlp"]:
        knobs["mlp_ratio"] = 4
    return TransformerStage(**knobs)


def config_from_flat(flat: Mapping[str, Any], resolution: int = 224) -> LowFormerConfig:
    """A config from one value per flat knob, with collapsing combinations normalised."""
    missing = [k for k in KNOBS if k not in flat]
    if missing:
        raise KnobError(missing[0], None, "a value for every knob in KNOBS")
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
    return flat


def _from_indices(indices: np.ndarray, resolution: int) -> LowFormerConfig:
    flat = {name: values[int(i)] for (name, values), i in zip(KNOBS.items(), indices)}
    return config_from_flat(flat, resolution)


def sample_configs(n: int, seed: int, resolution: int = 224) -> list[LowFormerConfig]:
    """``n`` configs, each knob uniform over its values; the same seed gives the same list."""
    rng = np.random.default_rng(seed)
    sizes = np.array([len(v) for v in KNOBS.values()])
    return [_from_indices(rng.integers(0, sizes), resolution) for _ in range(n)]


def sobol_configs(n: int, seed: int, resolution: int = 224) -> list[LowFormerConfig]:
    """``n`` configs from a scrambled Sobol sequence: better coverage than random for small n."""
    from scipy.stats import qmc

    sizes = np.array([len(v) for v in KNOBS.values()])
    points = qmc.Sobol(d=len(KNOBS), scramble=True, seed=seed).random(n)
    return [_from_indices(np.minimum((p * sizes).astype(int), sizes - 1), resolution) for p in points]


def _replace_flat(config: LowFormerConfig, knob: str, value: Any) -> LowFormerConfig:
    flat = flat_from_config(config)
    flat[knob] = value
    return config_from_flat(flat, config.resolution)


def mutate(config: LowFormerConfig, rng: np.random.Generator, n_knobs: int = 1) -> LowFormerConfig:
    """A copy of ``config`` with ``n_knobs`` random knobs set to other allowed values."""
    flat = flat_from_config(config)
    names = list(KNOBS)
    for index in rng.choice(len(names), size=n_knobs, replace=False):
        name = names[int(index)]
        others = [v for v in KNOBS[name] if v != flat[name]]
        flat[name] = others[int(rng.integers(len(others)))]
    return config_from_flat(flat, config.resolution)


def neighbours(config: LowFormerConfig) -> list[LowFormerConfig]:
    """Configs one step away: the adjacent value of one knob (ordered knobs) or any other value
    (unordered ones); duplicates after normalisation removed."""
    flat = flat_from_config(config)
    seen = {config.arch_id}
    out = []
    for name, values in KNOBS.items():
        if flat[name] not in values:
            continue
        i = values.index(flat[name])
        ordered = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        candidates = [values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)] if ordered else \
            [v for v in values if v != flat[name]]
        for value in candidates:
            neighbour = _replace_flat(config, name, value)
            if neighbour.arch_id not in seen:
                seen.add(neighbour.arch_id)
                out.append(neighbour)
    return out


def in_space(config: LowFormerConfig) -> bool:
    """Whether every knob of ``config`` takes one of the sampled values (presets may not)."""
    flat = flat_from_config(config)
    return all(flat[k] in v for k, v in KNOBS.items()) and config == config_from_flat(flat, config.resolution)
