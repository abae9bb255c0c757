"""Experiment 2 of the hardware study: fused versus unfused MBConv.

A model repeats one residual block C -> C on a (1, C, R, R) input. Fused: the LowFormer
``FusedMBConv`` (3x3 conv expanding to C*e, BatchNorm, Hardswish; 1x1 projection, BatchNorm).
Unfused: the ``MBConv`` of LowFormer's unfused-MBConv ablation (1x1 expand, 3x3 depthwise, each
followed by Hardswish only; 1x1 projection, BatchNorm), reused rather than redefined. ONNX Runtime
and TorchScript's ``optimize_for_inference`` fold BatchNorm into the preceding conv, so the norms
it lacks change nothing there; only PyTorch eager times them. Two blocks by default: the second
reads the first's output, as in a real stage, and the MAC ratio of a fused to an unfused stack
does not depend on the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from search_spaces.base import check_bool, check_int
from search_spaces.blocks.config import ConfigMixin
from search_spaces.blocks.rules import expanded
from search_spaces.optable import OpRow, OpTable, add, concat
from search_spaces.toys.common import ToyArchitecture, conv_layer_rows

CHANNEL_RANGE = (1, 2048)
EXPANSION_RANGE = (1, 8)
REPEAT_RANGE = (1, 32)
RESOLUTION_RANGE = (1, 1024)

#: the published grid of experiment 2
MBCONV_GRID_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
MBCONV_GRID_RESOLUTIONS: tuple[int, ...] = (7, 14, 28, 56, 112, 224)
MBCONV_GRID_EXPANSIONS: tuple[int, ...] = (4, 6)
DEFAULT_EXPANSION = 4


@lru_cache(maxsize=4096)
def _block_rows(stage: str, channels: int, mid: int, fused: bool, side: int) -> tuple[OpRow, ...]:
    c = channels
    if fused:
        rows = conv_layer_rows(stage, "main.spatial_conv", c, mid, 3, 1, side)
    else:
        rows = (conv_layer_rows(stage, "main.inverted_conv", c, mid, 1, 1, side, has_norm=False)
                + conv_layer_rows(stage, "main.depth_conv", mid, mid, 3, 1, side, groups=mid, has_norm=False))
    rows += conv_layer_rows(stage, "main.point_conv", mid, c, 1, 1, side, has_act=False)
    return rows + (add(stage, "residual", (c, side, side)),)


@dataclass(frozen=True)
class MBConvStackConfig(ConfigMixin):
    """``repeats`` residual (fused) MBConv blocks C -> C (defaults: ``fused-mbconv-c64``).

    channels: C, 1 to 2048. fused: fused (3x3 expand + 1x1) or unfused (1x1, 3x3 depthwise, 1x1).
    expansion: hidden width C*e, 1 to 8 (the study uses 4 and 6). repeats: blocks, 1 to 32.
    resolution: input side, 1 to 1024.
    """

    space: ClassVar[str] = "mbconv-stack"

    channels: int = 64
    fused: bool = True
    expansion: int = DEFAULT_EXPANSION
    repeats: int = 2
    resolution: int = 56

    def __post_init__(self) -> None:
        check_int("channels", self.channels, *CHANNEL_RANGE)
        check_bool("fused", self.fused)
        check_int("expansion", self.expansion, *EXPANSION_RANGE)
        check_int("repeats", self.repeats, *REPEAT_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)

    @property
    def mid(self) -> int:
        return expanded(self.channels, self.expansion)

    def build(self):
        from torch import nn

        from search_spaces.blocks.modules import FusedMBConv, MBConv, Residual

        c = self.channels

        def block():
            if self.fused:
                return FusedMBConv(c, c, 1, self.mid)
            return MBConv(c, c, 1, self.mid, variant="plain")

        return nn.Sequential(*(Residual(block()) for _ in range(self.repeats))).eval()

    def op_table(self) -> OpTable:
        return concat([_block_rows(f"block{i}", self.channels, self.mid, self.fused, self.resolution)
                       for i in range(self.repeats)])

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, self.resolution, self.resolution)


def _name(config: MBConvStackConfig) -> str:
    """``fused-mbconv-c64``, ``unfused-mbconv-c64-e6``."""
    suffix = "" if config.expansion == DEFAULT_EXPANSION else f"-e{config.expansion}"
    return f"{'fused' if config.fused else 'unfused'}-mbconv-c{config.channels}{suffix}"


def _entry(config: MBConvStackConfig) -> ToyArchitecture:
    kind = "fused" if config.fused else "unfused"
    return ToyArchitecture(
        _name(config),
        f"Beyond MACs experiment 2: {config.repeats} residual {kind} MBConv blocks, expansion "
        f"{config.expansion}, {config.channels} channels; the block count is this project's choice",
        config,
    )


ARCHITECTURES: tuple[ToyArchitecture, ...] = tuple(
    _entry(MBConvStackConfig(channels=c, fused=fused, expansion=e))
    for e in MBCONV_GRID_EXPANSIONS for c in MBCONV_GRID_CHANNELS for fused in (True, False)
)
