"""What the toy spaces share: registry entries and ConvLayer rows (their configs use the
families' :class:`~search_spaces.blocks.config.ConfigMixin`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from search_spaces.base import ArchConfig
from search_spaces.optable import OpRow, conv_layer


@dataclass(frozen=True)
class ToyArchitecture:
    """A named toy model: ``make(resolution)`` gives its config at that input side (``None``: the
    entry's default). ``exact`` is False where the published architecture is not fully known."""

    name: str
    source: str
    config: ArchConfig
    exact: bool = True

    def make(self, resolution: int | None = None) -> ArchConfig:
        return self.config if resolution is None else self.config.with_resolution(resolution)


@lru_cache(maxsize=4096)
def conv_layer_rows(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, side: int,
                    *, groups: int = 1, bias: bool = False, has_norm: bool = True,
                    has_act: bool = True) -> tuple[OpRow, ...]:
    """Rows of a ``ConvLayer`` on a square ``side`` x ``side`` input (cached: toys repeat layers)."""
    return conv_layer(stage, name, c_in, c_out, kernel, stride, side, side, groups, bias, has_norm, has_act)
