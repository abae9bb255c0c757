"""One registry of named architectures (presets, ablations, study toy models) and the single
door from a user's spec (name, config object, dict or JSON path) to a config."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.errors import UserError
from explorer.reference import SPACES as REFERENCE_SPACES
from explorer.reference import ReferenceConfig, network_of
from search_spaces.base import ArchConfig, KnobError, arch_id, written_id
from search_spaces import efficientvit, fmvit, mcga
from search_spaces.lowformer import LOWFORMER_PRESETS, LowFormerConfig
from search_spaces.efficientvit.sampling import SEED_SPACE as EFFICIENTVIT_SEED_SPACE
from search_spaces.efficientvit.sampling import SPACE as EFFICIENTVIT_SPACE
from search_spaces.fmvit.sampling import SPACE as FMVIT_SPACE
from search_spaces.lowformer.sampling import SPACE as LOWFORMER_SPACE
from search_spaces.mcga.sampling import SPACE as MCGA_SPACE
from search_spaces.sampling import FlatSpace
from search_spaces.toys import TOY_ARCHITECTURES, TOY_SPACES

OTHER_FAMILIES = (efficientvit, fmvit, mcga)

#: space name -> config class (``from_dict`` constructor)
SPACES: dict[str, Any] = {
    LowFormerConfig.space: LowFormerConfig,
    **{name: cls for family in OTHER_FAMILIES for name, cls in family.SPACES.items()},
    **TOY_SPACES,
    **REFERENCE_SPACES,  # published networks of timm: stored and measured, never sampled
}

#: space name -> knob table, for every space that can be sampled and searched
FLAT_SPACES: dict[str, FlatSpace] = {
    space.name: space
    for space in (LOWFORMER_SPACE, EFFICIENTVIT_SPACE, FMVIT_SPACE, MCGA_SPACE, EFFICIENTVIT_SEED_SPACE)
}
#: the backbone families compared across (``--space all``)
FAMILIES: tuple[str, ...] = ("lowformer", "efficientvit", "fmvit", "mcga")


def flat_space(name: str) -> FlatSpace:
    """The knob table of a space by name; an unknown name lists the known ones."""
    if name not in FLAT_SPACES:
        raise KnobError("space", name, "one of " + ", ".join(FLAT_SPACES))
    return FLAT_SPACES[name]


def family_of(space: str) -> str:
    """The backbone family of a space name (``efficientvit-seed`` belongs to ``efficientvit``)."""
    return next((f for f in FAMILIES if space == f or space.startswith(f + "-")), space)


@dataclass(frozen=True)
class NamedArchitecture:
    """A registry entry. ``make(resolution)`` returns the config at that resolution
    (``None``: the entry's default). ``exact`` is False for reconstructions."""

    name: str
    kind: str  # "preset", "ablation" or "toy"
    source: str
    make: Callable[[int | None], ArchConfig]
    exact: bool = True


def _preset_entry(name: str, config: ArchConfig, source: str) -> NamedArchitecture:
    kind = "ablation" if config.space == LowFormerConfig.space and name.count("-") > 1 else "preset"
    exact = "reconstruction" not in source
    return NamedArchitecture(
        name, kind, source, lambda r, c=config: c if r is None else c.with_resolution(r), exact
    )


NAMED_ARCHITECTURES: dict[str, NamedArchitecture] = {
    **{name: _preset_entry(name, cfg, src) for name, (cfg, src) in LOWFORMER_PRESETS.items()},
    **{name: _preset_entry(name, cfg, src) for family in OTHER_FAMILIES for name, (cfg, src) in family.PRESETS.items()},
    **{
        entry.name: NamedArchitecture(entry.name, "toy", entry.source, entry.make, entry.exact)
        for entry in TOY_ARCHITECTURES
    },
}


class UnknownArchitectureError(UserError, KeyError):
    def __init__(self, spec: str, database_url: str | None = None):
        super().__init__(spec)
        self.spec, self.database_url = spec, database_url

    def __str__(self) -> str:
        stored = f", nor an arch id of {self.database_url}" if self.database_url else ""
        return (f"unknown architecture {self.spec!r}: not a named architecture nor a config file{stored}. "
                f"Named ones: {', '.join(NAMED_ARCHITECTURES)}")


def _check_knob_names(knobs: Mapping[str, Any]) -> None:
    """Knob names (nested ones too) are printable text: errors quote them, and a name holding a
    line break would break the one-line error that reports it."""
    for key, value in knobs.items():
        if not isinstance(key, str) or not key.isprintable():
            raise KnobError("config", key, "knob names of printable characters")
        if isinstance(value, Mapping):
            _check_knob_names(value)


def config_from_dict(knobs: Mapping[str, Any]) -> ArchConfig:
    """A config from its JSON form; ``space`` defaults to ``lowformer``; an ``arch_id`` key, if
    present, must match the knobs (their canonical config's id, or, in a file written before
    configs were canonical, the knobs as written)."""
    if not isinstance(knobs, Mapping):
        raise KnobError("config", knobs, "a JSON object of knobs")
    knobs = dict(knobs)
    _check_knob_names(knobs)
    stated_id = knobs.pop("arch_id", None)  # sample lines and exports carry their id
    space = knobs.get("space", LowFormerConfig.space)
    if not isinstance(space, str) or space not in SPACES:
        raise KnobError("space", space, "one of " + ", ".join(SPACES))
    config = SPACES[space].from_dict(knobs)
    if stated_id is not None and stated_id not in (arch_id(config), written_id({"space": space, **knobs})):
        raise KnobError("arch_id", stated_id, f"the id of these knobs, {arch_id(config)} (or no arch_id)")
    return config


def resolve(spec: str | Path | ArchConfig | Mapping[str, Any], resolution: int | None = None) -> ArchConfig:
    """Name, config, dict or path to a config JSON -> config (at ``resolution`` if given); arch
    ids of a database: :func:`explorer.db.resolve_stored`."""
    if isinstance(spec, ArchConfig):
        config = spec
    elif isinstance(spec, Mapping):
        config = config_from_dict(spec)
    elif isinstance(spec, str) and spec in NAMED_ARCHITECTURES:
        return NAMED_ARCHITECTURES[spec].make(resolution)
    elif isinstance(spec, str) and network_of(spec) is not None:
        return network_of(spec).config(resolution)  # type: ignore[union-attr] - checked just before
    elif Path(spec).is_file():
        try:
            knobs = json.loads(Path(spec).read_text())
        except json.JSONDecodeError as err:
            raise KnobError("config", str(spec), f"a JSON file ({err})") from None
        config = config_from_dict(knobs)
    else:
        raise UnknownArchitectureError(str(spec))
    return config if resolution is None else config.with_resolution(resolution)


def name_of(config: ArchConfig) -> str | None:
    """The registry name of a config at its own resolution, if it is a named architecture (a
    reference network is named by its timm model)."""
    if isinstance(config, ReferenceConfig):
        return config.model
    target = arch_id(config)
    for entry in NAMED_ARCHITECTURES.values():
        try:
            candidate = entry.make(config.resolution)
        except KnobError:  # the entry does not exist at this resolution
            continue
        if arch_id(candidate) == target:
            return entry.name
    return None
