"""What the toy spaces share: flat-knob serialisation, registry entries and ConvLayer rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from search_spaces.base import ArchConfig, KnobError, arch_id, unknown_keys
from search_spaces.optable import OpRow, conv_layer


Config = TypeVar("Config", bound="ToyConfig")


class ToyConfig:
    """Mixin for the frozen config dataclasses of the toy spaces, whose knobs are all flat
    (ints, floats, bools and tuples of ints), so one serialisation fits them all."""

    space: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: type[Config], knobs: Mapping[str, Any]) -> Config:
        if not isinstance(knobs, Mapping):
            raise KnobError("config", knobs, f"a JSON object of {cls.space} knobs")
        if knobs.get("space", cls.space) != cls.space:
            raise KnobError("space", knobs["space"], f"'{cls.space}'")
        unknown_keys(knobs, cls)
        return cls(**{k: v for k, v in knobs.items() if k != "space"})

    @property
    def arch_id(self) -> str:
        return arch_id(self)

    def with_resolution(self: Config, resolution: int) -> Config:
        return dataclasses.replace(self, resolution=resolution)


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
