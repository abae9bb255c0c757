"""The config base of the families (and toy spaces) whose knobs are plain fields."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from search_spaces.base import KnobError, arch_id, unknown_keys


class ConfigMixin:
    """``to_dict``, ``from_dict``, JSON, ``arch_id``, ``with_resolution`` and ``input_shape`` of a
    frozen config dataclass of plain fields (tuples serialise as lists)."""

    space: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, knobs: Mapping[str, Any]):
        if not isinstance(knobs, Mapping):
            raise KnobError("config", knobs, f"a JSON object of {cls.space} knobs")
        if knobs.get("space", cls.space) != cls.space:
            raise KnobError("space", knobs["space"], f"'{cls.space}'")
        unknown_keys(knobs, cls)
        return cls(**{k: v for k, v in knobs.items() if k != "space"})

    def to_json(self) -> str:
        return json.dumps({"space": self.space, **self.to_dict()}, indent=2, sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | Path):
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def arch_id(self) -> str:
        return arch_id(self)

    def with_resolution(self, resolution: int):
        return dataclasses.replace(self, resolution=resolution)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, self.resolution, self.resolution)
