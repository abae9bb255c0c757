"""Experiment 4 of the hardware study: making multi-head self-attention cheaper.

A model stacks residual attention layers (4 in the study) with C channels in and out on a
(1, C, R, R) feature map, R being the resolution. Each layer is LowFormer's
``MultiHeadSelfAttention``: 1x1 q, k, v projections C -> C*m, scaled dot-product attention,
1x1 output projection back to C, with no norm and no MLP, so that only the attention is timed.
With ``attention_stride`` 2 a depthwise conv (+ BatchNorm) halves the resolution before the
projections and a depthwise transposed conv restores it after them. Heads are 32 channels wide,
as in LowFormer (128 channels: 4 heads, or 2 when compressed to 64); neither the head count nor
the 3x3 kernel of the depthwise conv was published, and the MACs do not depend on the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from search_spaces.base import KnobError, check_choice, check_int
from search_spaces.blocks.config import ConfigMixin
from search_spaces.blocks.rules import transposed_geometry
from search_spaces.optable import OpRow, OpTable, add, attention, concat, conv, conv_transpose, norm
from search_spaces.toys.common import ToyArchitecture

CHANNEL_RANGE = (8, 1024)
LAYER_RANGE = (1, 32)
COMPRESSIONS = (1.0, 0.5, 0.25)
ATTENTION_STRIDES = (1, 2, 4)
ATTENTION_KERNELS = (3, 5, 7)
HEAD_DIM_RANGE = (8, 128)
RESOLUTION_RANGE = (1, 1024)

#: variant name -> knobs of the four published variants
ATTENTION_VARIANTS: dict[str, dict[str, object]] = {
    "mhsa": {},
    "chcompr": {"compression": 0.5},
    "convlow": {"attention_stride": 2},
    "convlow-chcompr": {"attention_stride": 2, "compression": 0.5},
}
#: the published feature-map sides
ATTENTION_RESOLUTIONS: tuple[int, ...] = (8, 16, 32, 64)


@lru_cache(maxsize=4096)
def _layer_rows(stage: str, channels: int, heads: int, head_dim: int, stride: int, kernel: int,
                side: int) -> tuple[OpRow, ...]:
    c, inner = channels, heads * head_dim
    rows: list[OpRow] = []
    reduced = side
    if stride > 1:
        rows.append(conv(stage, "main.reduction.conv", c, c, kernel, stride, side, side, groups=c))
        rows.append(norm(stage, "main.reduction.norm", rows[-1].out_shape))
        reduced = rows[-1].out_shape[1]
    rows += [conv(stage, f"main.{proj}", c, inner, 1, 1, reduced, reduced) for proj in "qkv"]
    rows += attention(stage, "main.attention", heads, reduced * reduced, reduced * reduced, head_dim)
    rows.append(conv(stage, "main.o", inner, c, 1, 1, reduced, reduced, bias=True))
    if stride > 1:
        kernel_t, stride_t, padding = transposed_geometry(stride)
        rows.append(conv_transpose(stage, "main.upsampling", c, c, kernel_t, stride_t, padding,
                                   reduced, reduced, groups=c, bias=True))
    rows.append(add(stage, "residual", (c, side, side)))
    return tuple(rows)


@dataclass(frozen=True)
class AttentionStackConfig(ConfigMixin):
    """``layers`` residual multi-head self-attention layers (defaults: ``attention-stack-mhsa``).

    channels: C, 8 to 1024 (the study uses 128). layers: 1 to 32 (the study uses 4).
    compression: m, q, k and v have C*m channels: 1, 1/2 (``chcompr``) or 1/4.
    attention_stride: 1, or 2 (``convlow``) or 4: resolution reduction around the attention.
    attention_kernel: kernel of the reducing depthwise conv, 3, 5 or 7 (3 without reduction: unused).
    head_dim: channels per head, 8 to 128; must divide C*m.
    resolution: feature-map side R, 1 to 1024.
    """

    space: ClassVar[str] = "attention-stack"

    channels: int = 128
    layers: int = 4
    compression: float = 1.0
    attention_stride: int = 1
    attention_kernel: int = 3
    head_dim: int = 32
    resolution: int = 32

    def __post_init__(self) -> None:
        check_int("channels", self.channels, *CHANNEL_RANGE)
        check_int("layers", self.layers, *LAYER_RANGE)
        object.__setattr__(self, "compression", check_choice("compression", self.compression, COMPRESSIONS))
        check_choice("attention_stride", self.attention_stride, ATTENTION_STRIDES)
        check_choice("attention_kernel", self.attention_kernel, ATTENTION_KERNELS)
        check_int("head_dim", self.head_dim, *HEAD_DIM_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        if self.attention_stride == 1:  # no reducing convolution: its kernel builds nothing
            object.__setattr__(self, "attention_kernel", type(self).attention_kernel)
        inner = self.channels * self.compression
        if inner != int(inner) or int(inner) % self.head_dim:
            raise KnobError("head_dim", self.head_dim,
                            f"a divisor of channels x compression = {inner:g}")

    @property
    def heads(self) -> int:
        return int(self.channels * self.compression) // self.head_dim

    def build(self):
        from torch import nn

        from search_spaces.blocks.mixers.modules import MultiHeadSelfAttention
        from search_spaces.blocks.modules import Residual

        return nn.Sequential(*(
            Residual(MultiHeadSelfAttention(self.channels, self.heads, self.head_dim,
                                            self.attention_stride, self.attention_kernel))
            for _ in range(self.layers)
        )).eval()

    def op_table(self) -> OpTable:
        return concat([_layer_rows(f"layer{i}", self.channels, self.heads, self.head_dim,
                                   self.attention_stride, self.attention_kernel, self.resolution)
                       for i in range(self.layers)])

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, self.resolution, self.resolution)


ARCHITECTURES: tuple[ToyArchitecture, ...] = tuple(
    ToyArchitecture(
        f"attention-stack-{variant}",
        f"Beyond MACs Table 3: 4 residual attention layers, 128 channels, variant {variant}; "
        "heads 32 wide and the 3x3 depthwise kernel are this project's choice",
        AttentionStackConfig(**knobs),
    )
    for variant, knobs in ATTENTION_VARIANTS.items()
)
