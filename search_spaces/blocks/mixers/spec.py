"""What a token mixer registers: how it costs (its op-table rows) and how a config may use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search_spaces.optable import OpRow

Rows = tuple[OpRow, ...]


@dataclass(frozen=True)
class MixerKnobs:
    """The hyper-parameters a mixer's rows depend on besides the stage name and its grid.

    heads, dim: heads and the width of each; stride, kernel: the depthwise reduction around the
    mixer (stride 1: none); unfused: the unfused-everywhere ablation; scales, group_tokens: the
    knobs of the one mixer that has them (``()`` and ``0`` for the others).
    """

    heads: int
    dim: int
    stride: int = 1
    kernel: int = 3
    unfused: bool = False
    scales: tuple[int, ...] = ()
    group_tokens: int = 0


@dataclass(frozen=True)
class MixerSpec:
    """A token mixer of the registry (:data:`search_spaces.blocks.mixers.MIXERS`).

    name: its attention type name in configs.
    rows: ``(stage, channels, h, w, knobs) -> rows`` of the mixer without its residual, named as
        the ``attention`` module of a block.
    full_resolution: it runs at the stage resolution only (no reducing stride).
    knob: ``(name, default)`` of the knob only this mixer has, or None.
    """

    name: str
    rows: Callable[[str, int, int, int, MixerKnobs], Rows]
    full_resolution: bool = False
    knob: tuple[str, Any] | None = None
