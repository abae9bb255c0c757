"""Which published LowFormer model an architecture is closest to, by a documented knob distance.

The distance is Euclidean between knob vectors in which every multiplicative knob (widths,
expansions, head widths, MLP ratio, attention stride, 1/compression) enters as its log2, every
depth as depth / 2, the attention kernel as kernel / 2, and the attention type and MLP flag as
one-hot / 0-1 entries. One unit is thus "twice as wide", "two blocks deeper" or "another kind of
attention". The resolution is not part of it: the presets are compared at the candidate's own.
"""

from __future__ import annotations

import math

import numpy as np

from explorer.architectures import NAMED_ARCHITECTURES
from search_spaces.lowformer import LowFormerConfig, TransformerStage
from search_spaces.lowformer.config import ATTENTION_TYPES

#: The published models a candidate is compared with (those with a training recipe).
REFERENCE_PRESETS = ("lowformer-b0", "lowformer-b1", "lowformer-b1.5", "lowformer-b2", "lowformer-b3",
                     "lowformer-e1", "lowformer-e2", "lowformer-e3")


def _stage_vector(stage: TransformerStage) -> list[float]:
    return [
        *(float(stage.attention == kind) for kind in ATTENTION_TYPES),
        math.log2(stage.attention_stride),
        stage.attention_kernel / 2,
        -math.log2(stage.compression),
        float(stage.mlp),
        math.log2(stage.mlp_ratio),
    ]


def knob_vector(config: LowFormerConfig) -> np.ndarray:
    """The vector the distance is computed on (see module docstring)."""
    return np.array([
        *(math.log2(w) for w in config.widths),
        *(d / 2 for d in config.depths),
        math.log2(config.stem_expansion),
        math.log2(config.downsample_expansion),
        math.log2(config.block_expansion),
        *(math.log2(w) for w in config.head_widths),
        float(config.unfused),
        *_stage_vector(config.stage3),
        *_stage_vector(config.stage4),
    ])


def knob_distance(a: LowFormerConfig, b: LowFormerConfig) -> float:
    return float(np.linalg.norm(knob_vector(a) - knob_vector(b)))


def nearest_preset(config: LowFormerConfig) -> tuple[str, float]:
    """(name, distance) of the closest of :data:`REFERENCE_PRESETS`."""
    distances = {name: knob_distance(config, NAMED_ARCHITECTURES[name].make(None)) for name in REFERENCE_PRESETS}
    name = min(distances, key=distances.__getitem__)
    return name, distances[name]
