"""Experiment 1 of the hardware study: five-stage toy backbones made only of standard or only of
depthwise 3x3 convolutions (224x224 input, 7x7 output, every stage opens with a stride-2 conv).

Only the channels and the MAC counts of the six models were published, not their layers per
stage. The layers below come from :func:`fit_layers`: the depthwise model of each pair has twice
the layers per stage of its standard partner (as the paper says), and the split minimises the
larger of the pair's two relative MAC errors; ties go to fewer layers, then to the most even split.

==========  ======================  =========  ================  ========  =========  =======
model       channels C0..C4         convs      layers per stage  MACs (M)  published  error
==========  ======================  =========  ================  ========  =========  =======
toy-conv-1  15, 30, 60, 120, 240    standard   2, 4, 5, 5, 5     462.31    463        -0.15 %
toy-conv-2  30, 60, 120, 240, 480   depthwise  4, 8, 10, 10, 10  41.91     42         -0.21 %
toy-conv-3  30, 50, 100, 160, 160   standard   1, 7, 1, 10, 1    957.08    956        +0.11 %
toy-conv-4  60, 120, 240, 480, 480  depthwise  2, 14, 2, 20, 2   81.71     82         -0.36 %
toy-conv-5  30, 60, 150, 240, 240   standard   1, 5, 5, 5, 3     1712.07   1710       +0.12 %
toy-conv-6  60, 180, 360, 720, 720  depthwise  2, 10, 10, 10, 6  104.36    104        +0.34 %
==========  ======================  =========  ================  ========  =========  =======

The uneven split of the second pair is the price of the closest match: the smoother 2, 4, 5, 5, 6
(depthwise 4, 8, 10, 10, 12) would miss by +0.41 % / +0.16 %. Every conv is a LowFormer
``ConvLayer`` (conv, BatchNorm, Hardswish), the family's own atom, and there is no classifier: the
MACs match without one, and the study times the convolutions. The depthwise convs use
groups = C_in with channel multiplier C_out / C_in (3 -> C0 included).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from search_spaces.base import KnobError, check_bool, check_int, check_int_tuple
from search_spaces.blocks.config import ConfigMixin
from search_spaces.blocks.rules import stride2_side
from search_spaces.optable import OpTable, concat
from search_spaces.toys.common import ToyArchitecture, conv_layer_rows

STAGES = 5
IN_CHANNELS = 3
CHANNEL_RANGE = (1, 2048)
LAYER_RANGE = (1, 32)
RESOLUTION_RANGE = (32, 1024)


@dataclass(frozen=True)
class ToyConvConfig(ConfigMixin):
    """One toy backbone of experiment 1 (defaults: ``toy-conv-1``).

    channels: C0..C4, the output channels of the five stages.
    layers: 3x3 convs per stage, 1 to 32; the first of each stage has stride 2.
    depthwise: every conv depthwise (groups = C_in); then each C_i must be a multiple of the
        previous stage's channels (3 for C0).
    resolution: input side in pixels, 32 to 1024.
    """

    space: ClassVar[str] = "toy-conv"

    channels: tuple[int, ...] = (15, 30, 60, 120, 240)
    layers: tuple[int, ...] = (2, 4, 5, 5, 5)
    depthwise: bool = False
    resolution: int = 224

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", check_int_tuple("channels", self.channels, STAGES, *CHANNEL_RANGE))
        object.__setattr__(self, "layers", check_int_tuple("layers", self.layers, STAGES, *LAYER_RANGE))
        check_bool("depthwise", self.depthwise)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        if self.depthwise:
            for i, (c_in, c_out) in enumerate(zip((IN_CHANNELS, *self.channels), self.channels)):
                if c_out % c_in:
                    raise KnobError(f"channels[{i}]", c_out,
                                    f"a multiple of {c_in} (the channels before it) when depthwise is true")

    def _groups(self, c_in: int) -> int:
        return c_in if self.depthwise else 1

    def _stages(self) -> Iterator[tuple[int, int, int, int, int]]:
        """(stage index, c_in, c_out, layers, input side) per stage."""
        side, c_in = self.resolution, IN_CHANNELS
        for i, (c_out, n) in enumerate(zip(self.channels, self.layers)):
            yield i, c_in, c_out, n, side
            side, c_in = stride2_side(side), c_out

    def build(self):
        from torch import nn

        from search_spaces.blocks.modules import ConvLayer

        stages = []
        for _, c_in, c_out, n, _ in self._stages():
            convs = [ConvLayer(c_in, c_out, 3, 2, groups=self._groups(c_in))]
            convs += [ConvLayer(c_out, c_out, 3, 1, groups=self._groups(c_out)) for _ in range(n - 1)]
            stages.append(nn.Sequential(*convs))
        return nn.Sequential(*stages).eval()

    def op_table(self) -> OpTable:
        parts = []
        for i, c_in, c_out, n, side in self._stages():
            stage, out_side = f"stage{i}", stride2_side(side)
            parts.append(conv_layer_rows(stage, "layer0", c_in, c_out, 3, 2, side, groups=self._groups(c_in)))
            parts += [conv_layer_rows(stage, f"layer{j}", c_out, c_out, 3, 1, out_side,
                                      groups=self._groups(c_out))
                      for j in range(1, n)]
        return concat(parts)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, IN_CHANNELS, self.resolution, self.resolution)


def _macs_per_layout(config: ToyConvConfig, layouts: np.ndarray) -> np.ndarray:
    """MACs of ``config`` for every row of ``layouts`` (layers per stage). MACs are affine in
    the layers of each stage, so two op tables give them all."""
    def per_stage(layers: tuple[int, ...]) -> np.ndarray:
        table = replace(config, layers=layers).op_table().by_stage()
        return np.array([table[f"stage{i}"]["macs"] for i in range(STAGES)], dtype=np.float64)

    first = per_stage((1,) * STAGES)
    extra = per_stage((2,) * STAGES) - first
    return first.sum() + (layouts - 1) @ extra


def fit_layers(standard: tuple[int, ...], standard_macs: float, depthwise: tuple[int, ...],
               depthwise_macs: float, max_layers: int = 12, resolution: int = 224) -> tuple[int, ...]:
    """Layers per stage of a standard model whose depthwise partner has twice as many, chosen
    to minimise the larger relative MAC error of the two against their targets (ties: fewer
    layers, then the most even split). How the published toy-conv models were reconstructed."""
    layouts = np.array(list(itertools.product(range(1, max_layers + 1), repeat=STAGES)))
    standard_error = np.abs(_macs_per_layout(
        ToyConvConfig(standard, resolution=resolution), layouts) / standard_macs - 1)
    depthwise_error = np.abs(_macs_per_layout(
        ToyConvConfig(depthwise, depthwise=True, resolution=resolution), 2 * layouts) / depthwise_macs - 1)
    error = np.maximum(standard_error, depthwise_error)
    best = np.lexsort(((layouts**2).sum(axis=1), layouts.sum(axis=1), error))[0]
    return tuple(int(n) for n in layouts[best])


#: (standard, depthwise) pairs compared by the study
TOY_CONV_PAIRS: tuple[tuple[str, str], ...] = (
    ("toy-conv-1", "toy-conv-2"), ("toy-conv-3", "toy-conv-4"), ("toy-conv-5", "toy-conv-6"),
)

#: per pair: published standard channels, depthwise channels, fitted standard layers per stage
_RECONSTRUCTION = (
    ((15, 30, 60, 120, 240), (30, 60, 120, 240, 480), (2, 4, 5, 5, 5)),
    ((30, 50, 100, 160, 160), (60, 120, 240, 480, 480), (1, 7, 1, 10, 1)),
    ((30, 60, 150, 240, 240), (60, 180, 360, 720, 720), (1, 5, 5, 5, 3)),
)


def _reconstructed_models() -> dict[str, ToyConvConfig]:
    models = {}
    for (standard_name, depthwise_name), (standard, depthwise, layers) in zip(TOY_CONV_PAIRS, _RECONSTRUCTION):
        models[standard_name] = ToyConvConfig(standard, layers)
        models[depthwise_name] = ToyConvConfig(depthwise, tuple(2 * n for n in layers), depthwise=True)
    return models


#: name -> config at 224 (see the module docstring for the layers per stage)
TOY_CONV_MODELS: dict[str, ToyConvConfig] = _reconstructed_models()


def _source(config: ToyConvConfig) -> str:
    kind = "depthwise" if config.depthwise else "standard"
    return (f"Beyond MACs Table 1: {kind} 3x3 convs, channels {', '.join(map(str, config.channels))}; "
            f"layers per stage {', '.join(map(str, config.layers))} are a reconstruction fitted to the "
            "published MACs")


ARCHITECTURES: tuple[ToyArchitecture, ...] = tuple(
    ToyArchitecture(name, _source(config), config, exact=False) for name, config in TOY_CONV_MODELS.items()
)
