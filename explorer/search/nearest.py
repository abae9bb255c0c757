"""Which published model of its own space an architecture is closest to, by a documented knob
distance that works for every family's knob table.

Each knob of the space's table (:data:`explorer.architectures.FLAT_SPACES`) is one coordinate
that spans one unit from its smallest to its largest allowed value: a numeric knob enters as its
position among the sorted allowed values (linear between neighbours, clipped at the ends, so a
preset outside the table counts as the table's end), a yes/no knob as 0 or 1, any other knob as
one-hot entries scaled so that two different values are one unit apart. The distance is
Euclidean: one unit is "from the narrowest to the widest", "from the shallowest to the deepest"
or "another kind of attention". Resolution is not a knob: presets are compared at their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from explorer.architectures import FLAT_SPACES, NAMED_ARCHITECTURES, family_of
from explorer.search.space import family_presets
from search_spaces.base import ArchConfig


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _coordinates(value: Any, allowed: Sequence[Any]) -> list[float]:
    if all(isinstance(v, bool) for v in allowed):
        return [float(value)]
    if _numeric(allowed):
        ordered = sorted(set(allowed))
        if len(ordered) == 1:
            return [0.0]
        return [float(np.interp(value, ordered, np.linspace(0.0, 1.0, len(ordered))))]
    return [float(value == v) / math.sqrt(2) for v in allowed]


def knob_vector(config: ArchConfig) -> np.ndarray:
    """The vector the distance is computed on (see module docstring)."""
    table = FLAT_SPACES[config.space]
    flat = table.to_flat(config)
    return np.array([x for knob, allowed in table.knobs.items() for x in _coordinates(flat[knob], allowed)])


def knob_distance(a: ArchConfig, b: ArchConfig) -> float:
    """Distance between two architectures of the same space."""
    return float(np.linalg.norm(knob_vector(a) - knob_vector(b)))


def comparable_presets(config: ArchConfig) -> list[str]:
    """The published models (kind ``preset``) of ``config``'s family that share its knob table."""
    return [name for name in family_presets(family_of(config.space))
            if NAMED_ARCHITECTURES[name].make(None).space == config.space]


def nearest_preset(config: ArchConfig) -> tuple[str, float]:
    """(name, distance) of the closest of :func:`comparable_presets`."""
    distances = {name: knob_distance(config, NAMED_ARCHITECTURES[name].make(None))
                 for name in comparable_presets(config)}
    name = min(distances, key=distances.__getitem__)
    return name, distances[name]
