"""Sampling any design space through its flat knob table.

A space flattens into knobs (flat name -> allowed values, scalars only, ordered where order
means something), a ``from_flat`` that builds the config (normalising combinations that
collapse) and its inverse ``to_flat``. Random and Sobol sampling, mutation and neighbours are
then the same code for every family, and a search library sees every knob as a categorical.

Configs are canonical (a knob the network does not use has one value), so flat points that differ
only in such knobs give one architecture id: samples are distinct by id (a repeat is drawn again)
and a mutation always changes the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces.base import ArchConfig, KnobError, arch_id

Flat = dict[str, Any]

#: draws (batches for sampling, tries for a mutation) before a space counts as exhausted
MAX_DRAWS = 100
#: LiteMLA aggregation kernels as flat knob values (scalars) -> kernels
LITE_MLA_SCALES: dict[str, tuple[int, ...]] = {"none": (), "3": (3,), "5": (5,), "3,5": (3, 5)}


def _ordered(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


@dataclass(frozen=True)
class FlatSpace:
    """A design space as a table of categorical knobs.

    name: the config's ``space`` (``lowformer``, ``efficientvit``, ...).
    knobs: flat knob name -> allowed values.
    from_flat: ``(flat, resolution) -> config``; raises :class:`KnobError` for a bad value.
    to_flat: ``config -> flat`` (the inverse of ``from_flat`` for configs inside the table).
    """

    name: str
    knobs: Mapping[str, tuple[Any, ...]]
    from_flat: Callable[[Mapping[str, Any], int], ArchConfig]
    to_flat: Callable[[ArchConfig], Flat]

    def require(self, flat: Mapping[str, Any]) -> None:
        """Raise a :class:`KnobError` naming the first knob ``flat`` lacks."""
        missing = [k for k in self.knobs if k not in flat]
        if missing:
            raise KnobError(missing[0], None, f"a value for every knob of the {self.name} space")

    def _from_indices(self, indices: np.ndarray, resolution: int) -> ArchConfig:
        flat = {name: values[int(i)] for (name, values), i in zip(self.knobs.items(), indices)}
        return self.from_flat(flat, resolution)

    def _distinct(self, n: int, draw: Callable[[int], np.ndarray], resolution: int) -> list[ArchConfig]:
        """``n`` configs of distinct ids from batches of index rows ``draw(k)``, in draw order."""
        configs: dict[str, ArchConfig] = {}
        for _ in range(MAX_DRAWS):
            for indices in draw(n - len(configs)):
                config = self._from_indices(indices, resolution)
                configs.setdefault(arch_id(config), config)
            if len(configs) == n:
                return list(configs.values())
        raise KnobError("n", n, f"at most the {len(configs)} distinct architectures that {MAX_DRAWS} draws "
                                f"of the {self.name} space found")

    def sample(self, n: int, seed: int, resolution: int = 224) -> list[ArchConfig]:
        """``n`` configs of distinct ids, each knob uniform over its values; the same seed gives
        the same list."""
        rng = np.random.default_rng(seed)
        sizes = np.array([len(v) for v in self.knobs.values()])
        return self._distinct(n, lambda k: rng.integers(0, sizes, size=(k, len(sizes))), resolution)

    def sobol(self, n: int, seed: int, resolution: int = 224) -> list[ArchConfig]:
        """``n`` configs of distinct ids from a scrambled Sobol sequence (a repeat takes the next
        point): better coverage than random for small n."""
        from scipy.stats import qmc

        sizes = np.array([len(v) for v in self.knobs.values()])
        engine = qmc.Sobol(d=len(self.knobs), scramble=True, seed=seed)
        return self._distinct(n, lambda k: np.minimum((engine.random(k) * sizes).astype(int), sizes - 1),
                              resolution)

    def mutate(self, config: ArchConfig, rng: np.random.Generator, n_knobs: int = 1) -> ArchConfig:
        """A copy of ``config`` with ``n_knobs`` random knobs set to other allowed values, drawn
        again while the network stays the same (knobs it does not use)."""
        names, parent = [k for k, values in self.knobs.items() if len(values) > 1], arch_id(config)
        for _ in range(MAX_DRAWS):
            flat = self.to_flat(config)
            for index in rng.choice(len(names), size=n_knobs, replace=False):
                name = names[int(index)]
                others = [v for v in self.knobs[name] if v != flat[name]]
                flat[name] = others[int(rng.integers(len(others)))]
            child = self.from_flat(flat, config.resolution)
            if arch_id(child) != parent:
                break
        return child

    def neighbours(self, config: ArchConfig) -> list[ArchConfig]:
        """Configs one step away: the adjacent value of one knob (ordered knobs) or any other
        value (unordered ones); duplicates after normalisation removed."""
        flat = self.to_flat(config)
        seen = {arch_id(config)}
        out = []
        for name, values in self.knobs.items():
            if flat[name] not in values:
                continue
            i = values.index(flat[name])
            candidates = ([values[j] for j in (i - 1, i + 1) if 0 <= j < len(values)] if _ordered(values)
                          else [v for v in values if v != flat[name]])
            for value in candidates:
                neighbour = self.from_flat({**flat, name: value}, config.resolution)
                key = arch_id(neighbour)
                if key not in seen:
                    seen.add(key)
                    out.append(neighbour)
        return out

    def contains(self, config: ArchConfig) -> bool:
        """Whether every knob of ``config`` takes one of the table's values (presets may not)."""
        if config.space != self.name:
            return False
        try:
            flat = self.to_flat(config)
            return (all(flat[k] in v for k, v in self.knobs.items())
                    and config == self.from_flat(flat, config.resolution))
        except (KnobError, KeyError, StopIteration):
            return False
