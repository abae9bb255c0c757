"""What every design space shares: knob validation, canonical JSON and architecture ids.

A space is a frozen dataclass (its config) with three pure views of the same architecture:
``build()`` (a ``torch.nn.Module``), ``op_table()`` (the analytic per-op table) and
``input_shape()``. Everything downstream (measurement, prediction, search) only talks to this
small surface, so a new space plugs in without touching the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from search_spaces.optable import OpTable

ARCH_ID_LENGTH = 16


class KnobError(ValueError):
    """An invalid knob value; the message names the knob, the value and the allowed range."""

    def __init__(self, knob: str, value: Any, allowed: str):
        self.knob, self.value, self.allowed = knob, value, allowed
        super().__init__(f"invalid value for knob '{knob}': {value!r}; allowed: {allowed}")


@runtime_checkable
class ArchConfig(Protocol):
    """The contract of a design-space config (see module docstring)."""

    space: ClassVar[str]
    resolution: int

    def to_dict(self) -> dict[str, Any]: ...

    def build(self) -> torch.nn.Module: ...

    def op_table(self) -> OpTable: ...

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]: ...

    def with_resolution(self, resolution: int) -> ArchConfig: ...


def check_int(knob: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise KnobError(knob, value, f"an integer in [{low}, {high}]")
    return value


def check_choice(knob: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    for choice in choices:
        if value == choice and type(value) is type(choice) or (
            isinstance(choice, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
            and float(value) == choice
        ):
            return choice
    raise KnobError(knob, value, "one of " + ", ".join(repr(c) for c in choices))


def check_bool(knob: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise KnobError(knob, value, "true or false")
    return value


def check_int_tuple(knob: str, value: Any, length: int, low: int, high: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise KnobError(knob, value, f"a list of {length} integers, each in [{low}, {high}]")
    return tuple(check_int(f"{knob}[{i}]", v, low, high) for i, v in enumerate(value))


def first_equivalent(value: Any, candidates: Iterable[Any], effect: Callable[[Any], Any]) -> Any:
    """The first of ``candidates`` whose ``effect`` on the network equals that of ``value``.

    Knob values that build the same network (thresholds or head widths that give the same
    blocks) share one canonical value this way, so that one network has one architecture id.
    ``candidates`` must end with values that cover the knob's range, or with one that is always
    equivalent; ``value`` itself is the last resort.
    """
    target = effect(value)
    return next((c for c in candidates if effect(c) == target), value)


def canonical_json(config: ArchConfig) -> str:
    """Sorted keys, every default spelled out, no whitespace: the hashed form of a config."""
    payload = {"space": config.space, **config.to_dict()}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def arch_id(config: ArchConfig) -> str:
    """Stable id of an architecture: the same config always hashes to the same id, and configs
    hash their canonical form (every knob the network does not use at its canonical value), so
    one network has one id."""
    return _hash_id(canonical_json(config))


def written_id(knobs: Mapping[str, Any]) -> str:
    """The id of knobs as written (``space`` and every knob spelled out): a config's id before
    configs were canonical, which files written then carry."""
    return _hash_id(json.dumps(dict(knobs), sort_keys=True, separators=(",", ":")))


def _hash_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:ARCH_ID_LENGTH]


def unknown_keys(knobs: Mapping[str, Any], cls: type) -> None:
    allowed = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(knobs) - allowed - {"space"})
    if extra:
        raise KnobError(extra[0], knobs[extra[0]], "a known knob: " + ", ".join(sorted(allowed)))
