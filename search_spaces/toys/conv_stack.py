"""Experiment 3 of the hardware study: high resolution versus many channels.

A model is a stack of identical standard 3x3 convolutions C -> C (20 in the study), each a
LowFormer ``ConvLayer`` (conv, BatchNorm, Hardswish), on a (1, C, R, R) input. The study times
pairs of such stacks with about the same MACs: one at high resolution with few channels, one at
low resolution with many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from search_spaces.base import check_int
from search_spaces.blocks.config import ConfigMixin
from search_spaces.optable import OpTable, concat
from search_spaces.toys.common import ToyArchitecture, conv_layer_rows

CHANNEL_RANGE = (1, 2048)
LAYER_RANGE = (1, 64)
RESOLUTION_RANGE = (1, 1024)

#: the seven published scenarios: ((resolution, channels), (resolution, channels)) of about equal MACs
RESOLUTION_SCENARIOS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((224, 24), (28, 196)),
    ((224, 48), (112, 96)),
    ((224, 96), (56, 384)),
    ((224, 48), (56, 196)),
    ((112, 24), (14, 196)),
    ((56, 96), (14, 384)),
    ((112, 96), (28, 384)),
)
STUDY_LAYERS = 20


@dataclass(frozen=True)
class ConvStackConfig(ConfigMixin):
    """``layers`` identical standard 3x3 convs with ``channels`` in and out (defaults: ``conv20-c24``).

    channels: 1 to 2048. layers: 1 to 64 (the study uses 20). resolution: input side, 1 to 1024.
    """

    space: ClassVar[str] = "conv-stack"

    channels: int = 24
    layers: int = STUDY_LAYERS
    resolution: int = 224

    def __post_init__(self) -> None:
        check_int("channels", self.channels, *CHANNEL_RANGE)
        check_int("layers", self.layers, *LAYER_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)

    def build(self):
        from torch import nn

        from search_spaces.blocks.modules import ConvLayer

        return nn.Sequential(*(ConvLayer(self.channels, self.channels, 3) for _ in range(self.layers))).eval()

    def op_table(self) -> OpTable:
        c, side = self.channels, self.resolution
        return concat([conv_layer_rows(f"layer{i}", "conv", c, c, 3, 1, side) for i in range(self.layers)])

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, self.resolution, self.resolution)


#: the channel counts of the scenarios, one named stack each
CONV_STACK_CHANNELS: tuple[int, ...] = tuple(sorted({c for pair in RESOLUTION_SCENARIOS for _, c in pair}))

ARCHITECTURES: tuple[ToyArchitecture, ...] = tuple(
    ToyArchitecture(f"conv{STUDY_LAYERS}-c{c}",
                    f"Beyond MACs experiment 3: {STUDY_LAYERS} standard 3x3 convs, {c} channels",
                    ConvStackConfig(channels=c))
    for c in CONV_STACK_CHANNELS
)
