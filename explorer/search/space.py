"""What a search samples, as Optuna sees it.

``--space NAME`` (a key of :data:`explorer.architectures.FLAT_SPACES`) makes every knob of that
space's table a categorical parameter of every trial, under the knob's own name. ``--space all``
is define-by-run: a categorical ``space`` parameter picks the family, then that family's knobs
are sampled under the family's prefix (``mcga.dim1``, ``lowformer.width0``), so that Optuna keeps
one distribution per family and knob instead of mixing two families' values of ``depth1``.
Optuna's NSGA-II recombines only the parameters every trial has; on this conditional space that
is the family alone, which made it exactly random search (``benchmarks/search_hypervolume.py
--space all``). For NSGA-II, every trial therefore also carries the other families' knobs.

The input resolution is a knob too when a search gives several (``resolutions``): one
categorical parameter ``resolution`` shared by every family. With one resolution (``--resolution
N``, and every study from before this knob) it is fixed and no trial carries it.

The published models (presets) of the searched families are the reference markers; the presets
and ablations whose knobs all lie in the table are the first trials of a new study, at their
published resolution (the nearest searched one when that is not searched). A study records its
space in the user attribute ``space``; studies from before that attribute searched ``lowformer``.
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
#: The parameter of a searched input resolution (and the study attribute of the searched set).
RESOLUTION_PARAM = "resolution"
#: Resolutions searched by default: the published families run at 192-288, and lower input
#: sides are the cheapest way into a tight budget.
DEFAULT_RESOLUTIONS = (160, 192, 224, 256, 288)


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


def suggest(trial: optuna.Trial, space: str, every_family: bool = False, resolutions: tuple[int, ...] = ()) -> None:
    """Sample one architecture of ``space`` into ``trial.params``. ``every_family`` (``all``
    only) also samples the other families' knobs: the config ignores them, but they are carried
    along like dormant genes, so that a sampler that recombines only the parameters every trial
    has (NSGA-II) recombines the knobs too, not just the family. ``resolutions``: searched input
    sides (none: the study's fixed resolution)."""
    if resolutions:
        trial.suggest_categorical(RESOLUTION_PARAM, resolutions)
    if check_space(space) != ALL:
        for knob, values in FLAT_SPACES[space].knobs.items():
            trial.suggest_categorical(knob, values)
        return
    family = trial.suggest_categorical(SPACE_PARAM, FAMILIES)
    for sampled in FAMILIES if every_family else (family,):
        for knob, values in FLAT_SPACES[sampled].knobs.items():
            trial.suggest_categorical(f"{sampled}.{knob}", values)


def config_of(params: Mapping[str, Any], resolution: int, space: str = DEFAULT_SPACE) -> ArchConfig:
    """The config of a trial's parameters (the inverse of :func:`params_of`); a searched
    resolution parameter overrides ``resolution``."""
    resolution = params.get(RESOLUTION_PARAM, resolution)
    if check_space(space) != ALL:
        return FLAT_SPACES[space].from_flat(params, resolution)
    family = params[SPACE_PARAM]
    prefix = family + "."
    return FLAT_SPACES[family].from_flat({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)},
                                         resolution)


def params_of(config: ArchConfig, space: str = DEFAULT_SPACE, with_resolution: bool = False) -> dict[str, Any]:
    """A config as trial parameters of ``space`` (with its resolution when that is searched)."""
    extra = {RESOLUTION_PARAM: config.resolution} if with_resolution else {}
    if check_space(space) != ALL:
        return {**extra, **FLAT_SPACES[space].to_flat(config)}
    family = family_of(config.space)
    return {**extra, SPACE_PARAM: family,
            **{f"{family}.{k}": v for k, v in FLAT_SPACES[family].to_flat(config).items()}}


def study_space(study: optuna.Study) -> str:
    return study.user_attrs.get(SPACE_PARAM, DEFAULT_SPACE)


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> ArchConfig:
    """The architecture of a stored trial, rebuilt in the space its study searched."""
    return config_of(trial.params, study.user_attrs["resolution"], study_space(study))


def family_presets(family: str, kinds: tuple[str, ...] = ("preset",)) -> list[str]:
    """Names of the registry's architectures of ``family`` and of one of ``kinds``, in registry order."""
    return [name for name, entry in NAMED_ARCHITECTURES.items()
            if entry.kind in kinds and family_of(entry.make(None).space) == family]


def published_resolution(name: str, resolutions: tuple[int, ...]) -> int:
    """The resolution a named model is published at, or the nearest of ``resolutions``."""
    own = NAMED_ARCHITECTURES[name].make(None).resolution
    return own if own in resolutions else min(resolutions, key=lambda r: (abs(r - own), r))


def _made(names: list[str], resolution: int, resolutions: tuple[int, ...] = ()) -> dict[str, ArchConfig]:
    configs = {}
    for name in names:
        try:
            configs[name] = NAMED_ARCHITECTURES[name].make(
                published_resolution(name, resolutions) if resolutions else resolution)
        except KnobError:  # not defined at this resolution
            continue
    return configs


def reference_configs(resolution: int, space: str = DEFAULT_SPACE,
                      resolutions: tuple[int, ...] = ()) -> dict[str, ArchConfig]:
    """The published models (kind ``preset``) of every family ``space`` searches, at
    ``resolution``, or at their published one when resolution is searched."""
    return _made([name for family in flat_spaces(space) for name in family_presets(family)], resolution, resolutions)


def seed_params(resolution: int, space: str = DEFAULT_SPACE,
                resolutions: tuple[int, ...] = ()) -> dict[str, dict[str, Any]]:
    """Trial parameters of every preset and ablation of the searched families whose knobs all
    lie in the table (others cannot be a trial of this space); with searched ``resolutions``,
    each at its published resolution (or the nearest searched one)."""
    seeds = {}
    for family, table in flat_spaces(space).items():
        for name, config in _made(family_presets(family, ("preset", "ablation")), resolution, resolutions).items():
            if table.contains(config):
                seeds[name] = params_of(config, space, with_resolution=bool(resolutions))
    return seeds


def study_resolutions(study: optuna.Study) -> tuple[int, ...]:
    """The resolutions a study searches (empty: its one fixed resolution)."""
    return tuple(study.user_attrs.get("resolutions") or ())
