"""What a search samples, as Optuna sees it.

``--space NAME`` (a key of :data:`explorer.architectures.FLAT_SPACES`) makes every knob of that
space's table a categorical parameter of every trial, under the knob's own name. ``--space all``
is define-by-run: a categorical ``space`` parameter picks the family, then that family's knobs
are sampled under the family's prefix (``mcga.dim1``, ``lowformer.width0``), so that Optuna keeps
one distribution per family and knob instead of mixing two families' values of ``depth1``.
Optuna's NSGA-II recombines only the parameters every trial has; on this conditional space that
is the family alone, which made it exactly random search (``benchmarks/search_hypervolume.py
--space all``). For NSGA-II, every trial therefore also carries the other families' knobs.

The published models (presets) of the searched families are the reference markers; the presets
and ablations whose knobs all lie in the table are the first trials of a new study. A study records its space in the user
attribute ``space``; studies from before that attribute searched ``lowformer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from explorer.architectures import FAMILIES, FLAT_SPACES, NAMED_ARCHITECTURES, family_of
from explorer.errors import UserError
from search_spaces.base import ArchConfig, KnobError
from search_spaces.sampling import FlatSpace

ALL = "all"
DEFAULT_SPACE = "lowformer"
#: The parameter that picks the family in ``--space all`` (and the study attribute of the space).
SPACE_PARAM = "space"


def space_names() -> tuple[str, ...]:
    """The values ``--space`` accepts."""
    return (*FLAT_SPACES, ALL)


def check_space(name: str) -> str:
    if name not in space_names():
        raise UserError(f"invalid space {name!r}; allowed: {', '.join(space_names())}")
    return name


def flat_spaces(space: str) -> dict[str, FlatSpace]:
    """family -> knob table of every family that ``space`` searches."""
    if check_space(space) == ALL:
        return {family: FLAT_SPACES[family] for family in FAMILIES}
    return {family_of(space): FLAT_SPACES[space]}


def suggest(trial: optuna.Trial, space: str, every_family: bool = False) -> None:
    """Sample one architecture of ``space`` into ``trial.params``. ``every_family`` (``all``
    only) also samples the other families' knobs: the config ignores them, but they are carried
    along like dormant genes, so that a sampler that recombines only the parameters every trial
    has (NSGA-II) recombines the knobs too, not just the family."""
    if check_space(space) != ALL:
        for knob, values in FLAT_SPACES[space].knobs.items():
            trial.suggest_categorical(knob, values)
        return
    family = trial.suggest_categorical(SPACE_PARAM, FAMILIES)
    for sampled in FAMILIES if every_family else (family,):
        for knob, values in FLAT_SPACES[sampled].knobs.items():
            trial.suggest_categorical(f"{sampled}.{knob}", values)


def config_of(params: Mapping[str, Any], resolution: int, space: str = DEFAULT_SPACE) -> ArchConfig:
    """The config of a trial's parameters (the inverse of :func:`params_of`)."""
    if check_space(space) != ALL:
        return FLAT_SPACES[space].from_flat(params, resolution)
    family = params[SPACE_PARAM]
    prefix = family + "."
    return FLAT_SPACES[family].from_flat({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)},
                                         resolution)


def params_of(config: ArchConfig, space: str = DEFAULT_SPACE) -> dict[str, Any]:
    """A config as trial parameters of ``space``."""
    if check_space(space) != ALL:
        return FLAT_SPACES[space].to_flat(config)
    family = family_of(config.space)
    return {SPACE_PARAM: family, **{f"{family}.{k}": v for k, v in FLAT_SPACES[family].to_flat(config).items()}}


def study_space(study: optuna.Study) -> str:
    return study.user_attrs.get(SPACE_PARAM, DEFAULT_SPACE)


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> ArchConfig:
    """The architecture of a stored trial, rebuilt in the space its study searched."""
    return config_of(trial.params, study.user_attrs["resolution"], study_space(study))


def family_presets(family: str, kinds: tuple[str, ...] = ("preset",)) -> list[str]:
    """Names of the registry's architectures of ``family`` and of one of ``kinds``, in registry order."""
    return [name for name, entry in NAMED_ARCHITECTURES.items()
            if entry.kind in kinds and family_of(entry.make(None).space) == family]


def _made(names: list[str], resolution: int) -> dict[str, ArchConfig]:
    configs = {}
    for name in names:
        try:
            configs[name] = NAMED_ARCHITECTURES[name].make(resolution)
        except KnobError:  # not defined at this resolution
            continue
    return configs


def reference_configs(resolution: int, space: str = DEFAULT_SPACE) -> dict[str, ArchConfig]:
    """The published models (kind ``preset``) of every family ``space`` searches."""
    return _made([name for family in flat_spaces(space) for name in family_presets(family)], resolution)


def seed_params(resolution: int, space: str = DEFAULT_SPACE) -> dict[str, dict[str, Any]]:
    """Trial parameters of every preset and ablation of the searched families whose knobs all
    lie in the table (others cannot be a trial of this space)."""
    seeds = {}
    for family, table in flat_spaces(space).items():
        for name, config in _made(family_presets(family, ("preset", "ablation")), resolution).items():
            if table.contains(config):
                seeds[name] = params_of(config, space)
    return seeds
