"""The EfficientViT design spaces as typed, frozen configs.

Two spaces: ``efficientvit`` (the released multi-scale-attention B-series, exact) and
``efficientvit-seed`` (the seed paper's enhanced linear attention model, a reconstruction whose
open choices are knobs). Every knob is validated on construction; an invalid value raises
:class:`KnobError` naming the knob, the value and the allowed range. The attention knobs of a
model without attention blocks take their defaults (the first valid ``dim``), so that one network
has one config and one architecture id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.base import KnobError, check_choice, check_int, check_int_tuple, first_equivalent
from search_spaces.blocks.config import ConfigMixin
from search_spaces.efficientvit import rules

WIDTH_RANGES = ((8, 128), (8, 256), (8, 512), (8, 1024), (8, 2048))
DEPTH_RANGES = ((0, 4), (1, 8), (1, 8), (0, 16), (0, 16))
DIMS = (8, 16, 32)
HEADS_RATIOS = (0.5, 1.0, 2.0)
EXPAND_RATIOS = (2, 3, 4, 6)
SCALES = ((), (3,), (5,), (3, 5))
KERNELS = (3, 5)
HEAD_WIDTH_RANGE = (16, 8192)
NUM_CLASSES_RANGE = (1, 100_000)
RESOLUTION_RANGE = (32, 1024)

SEED_DEPTH_RANGES = ((1, 8), (1, 8), (0, 16), (0, 16))
WIDTH_MULT_RANGE = (0.75, 1.5)
#: the multipliers the seed space samples (each builds other widths), the canonical ones
SEED_WIDTH_MULTS = (0.75, 1.0, 1.1, 1.2, 1.35, 1.5)
#: the grid of canonical multipliers outside those
WIDTH_MULT_STEP = 0.0001
ATTENTION_RATIOS = (1, 2)
EXPANSION_BASES = ("output", "input")


def _check_tuple(knob: str, value: Any, ranges: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != len(ranges):
        raise KnobError(knob, value, f"a list of {len(ranges)} integers")
    return tuple(check_int(f"{knob}[{i}]", v, *r) for i, (v, r) in enumerate(zip(value, ranges)))


def _check_scales(value: Any) -> tuple[int, ...]:
    allowed = "one of " + ", ".join(str(list(s)) for s in SCALES)
    if not isinstance(value, (list, tuple)) or tuple(value) not in SCALES:
        raise KnobError("scales", value, allowed)
    return tuple(value)


def _check_width_mult(value: Any) -> float:
    low, high = WIDTH_MULT_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise KnobError("width_mult", value, f"a number in [{low}, {high}]")
    return _canonical_width_mult(float(value))


def _width_effect(width_mult: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return rules.seed_widths(width_mult), rules.seed_head_widths(width_mult)


def _canonical_width_mult(value: float) -> float:
    """One multiplier per network: widths are rounded to multiples of 8, so nearby multipliers
    build the same one. The sampled multiplier that builds it, else the smallest multiple of
    ``WIDTH_MULT_STEP`` that does (widths never shrink as the multiplier grows, so those that
    build it form one run, found by bisection), else ``value`` itself."""
    target = _width_effect(value)
    sampled = first_equivalent(value, SEED_WIDTH_MULTS, _width_effect)
    if sampled in SEED_WIDTH_MULTS:
        return sampled
    low = math.ceil(WIDTH_MULT_RANGE[0] / WIDTH_MULT_STEP)
    around = (math.ceil(value / WIDTH_MULT_STEP), math.floor(value / WIDTH_MULT_STEP))
    high = next((i for i in around if low <= i and _width_effect(round(i * WIDTH_MULT_STEP, 4)) == target), None)
    if high is None:  # no multiple of the step builds it
        return value
    while low < high:
        middle = (low + high) // 2
        if _width_effect(round(middle * WIDTH_MULT_STEP, 4)) == target:
            high = middle
        else:
            low = middle + 1
    return round(low * WIDTH_MULT_STEP, 4)


@dataclass(frozen=True)
class EfficientViTConfig(ConfigMixin):
    """One architecture of the EfficientViT-B space (defaults: EfficientViT-B1 at 224x224).

    widths: C0..C4, multiples of 8; C3 and C4 divisible by ``dim``.
    depths: L0 residual DSConv blocks after the stem conv; stages 1 and 2 have L blocks
        including the strided one (L >= 1); stages 3 and 4 have one strided MBConv plus L
        EfficientViT blocks.
    dim: width of each LiteMLA head, 8, 16 or 32.
    heads_ratio: heads = int(C // dim * heads_ratio), 0.5, 1 or 2 (released: 1).
    expand_ratio: expansion of the stage 1-4 MBConvs (from their input channels), 2, 3, 4 or 6.
    local_expand_ratio: expansion of the local MBConv of every EfficientViT block.
    scales: kernels of LiteMLA's aggregation branches: [], [3], [5] (released) or [3, 5].
    kernel: depthwise kernel of every MBConv, 3 (released) or 5.
    head_widths: (W0, W1) of the classification head.
    num_classes: classifier outputs.
    resolution: input side in pixels.
    """

    space: ClassVar[str] = "efficientvit"

    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    depths: tuple[int, ...] = (1, 2, 3, 3, 4)
    dim: int = 16
    heads_ratio: float = 1.0
    expand_ratio: int = 4
    local_expand_ratio: int = 4
    scales: tuple[int, ...] = (5,)
    kernel: int = 3
    head_widths: tuple[int, ...] = (1536, 1600)
    num_classes: int = 1000
    resolution: int = 224

    def __post_init__(self) -> None:
        widths = _check_tuple("widths", self.widths, WIDTH_RANGES)
        for i, w in enumerate(widths):
            if w % 8:
                raise KnobError(f"widths[{i}]", w, "a multiple of 8")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "depths", _check_tuple("depths", self.depths, DEPTH_RANGES))
        check_choice("dim", self.dim, DIMS)
        object.__setattr__(self, "heads_ratio", check_choice("heads_ratio", self.heads_ratio, HEADS_RATIOS))
        for i in (3, 4):
            c = widths[i]
            if c % self.dim:
                raise KnobError(f"widths[{i}]", c, f"a multiple of dim={self.dim}")
            if rules.lite_heads(c, self.dim, self.heads_ratio) < 1:
                raise KnobError("heads_ratio", self.heads_ratio,
                                f"a ratio giving at least one head at widths[{i}]={c} with dim={self.dim}")
        check_choice("expand_ratio", self.expand_ratio, EXPAND_RATIOS)
        check_choice("local_expand_ratio", self.local_expand_ratio, EXPAND_RATIOS)
        object.__setattr__(self, "scales", _check_scales(self.scales))
        check_choice("kernel", self.kernel, KERNELS)
        object.__setattr__(self, "head_widths", check_int_tuple("head_widths", self.head_widths, 2, *HEAD_WIDTH_RANGE))
        check_int("num_classes", self.num_classes, *NUM_CLASSES_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        if not any(self.depths[3:]):  # no EfficientViT block: its knobs build nothing
            for knob in ("heads_ratio", "local_expand_ratio", "scales"):
                object.__setattr__(self, knob, getattr(type(self), knob))
            object.__setattr__(self, "dim", next(d for d in (type(self).dim, *DIMS)
                                                 if widths[3] % d == 0 and widths[4] % d == 0))

    def heads(self, stage: int) -> int:
        """LiteMLA heads of stage 3 or 4."""
        return rules.lite_heads(self.widths[stage], self.dim, self.heads_ratio)

    def build(self):
        from search_spaces.efficientvit.network import efficientvit

        return efficientvit(self.to_dict()).eval()

    def op_table(self):
        from search_spaces.efficientvit.optable import efficientvit_op_table

        return efficientvit_op_table(self)


@dataclass(frozen=True)
class EfficientViTSeedConfig(ConfigMixin):
    """One architecture of the seed paper's space (defaults: the w1.0 model at 192x192).

    The paper fixes widths 16, 24, 48, 96, 192, depths 2, 3, 5, 2, key dim 16, expansion 4 and
    LayerNorm in stages 3-4; the stem, the expansion basis and the head widths are
    reconstruction choices (see the family's documentation).

    width_mult: multiplier of every width (rounded to multiples of 8) and of the head widths
        (floored to multiples of 8), in [0.75, 1.5].
    depths: L1..L4; stages 1 and 2 count their downsampling block, stages 3 and 4 do not.
    attention_ratio: inner attention width as a multiple of C (paper: 2), in heads of 16.
    kernel: depthwise kernel of every MBConv and FFN, 3 or 5 (paper).
    expansion_basis: hidden width of the downsampling MBConvs, 4x their ``output`` (the
        calibrated choice) or ``input`` channels.
    num_classes: classifier outputs.
    resolution: input side in pixels.
    """

    space: ClassVar[str] = "efficientvit-seed"

    width_mult: float = 1.0
    depths: tuple[int, ...] = rules.SEED_DEPTHS
    attention_ratio: int = 2
    kernel: int = 5
    expansion_basis: str = "output"
    num_classes: int = 1000
    resolution: int = 192

    def __post_init__(self) -> None:
        object.__setattr__(self, "width_mult", _check_width_mult(self.width_mult))
        object.__setattr__(self, "depths", _check_tuple("depths", self.depths, SEED_DEPTH_RANGES))
        check_choice("attention_ratio", self.attention_ratio, ATTENTION_RATIOS)
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("expansion_basis", self.expansion_basis, EXPANSION_BASES)
        check_int("num_classes", self.num_classes, *NUM_CLASSES_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        if not any(self.depths[2:]):  # no attention block: its ratio builds nothing
            object.__setattr__(self, "attention_ratio", type(self).attention_ratio)

    @property
    def widths(self) -> tuple[int, ...]:
        return rules.seed_widths(self.width_mult)

    @property
    def head_widths(self) -> tuple[int, ...]:
        return rules.seed_head_widths(self.width_mult)

    def build(self):
        from search_spaces.efficientvit.network import efficientvit_seed

        return efficientvit_seed(self.to_dict()).eval()

    def op_table(self):
        from search_spaces.efficientvit.optable import seed_op_table

        return seed_op_table(self)
