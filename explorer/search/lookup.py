"""The configs behind the arch ids a search printed: a trial keeps its knobs as Optuna
parameters (rebuilt by :func:`explorer.search.space.trial_config`) and its id as a user
attribute, not as a row of the architectures table, so a user importing the result of a trial
they trained names it by that id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna

from explorer.search.journal import open_storage
from explorer.search.space import trial_config
from search_spaces.base import ArchConfig

SQLITE = "sqlite:///"


def trial_lookup(storage_url: str) -> Callable[[str], ArchConfig | None]:
    """arch id -> config of a completed trial of any study in ``storage_url`` (None if no trial
    has it). The studies are read on the first call, once; a SQLite storage that does not exist is
    not created."""
    configs: dict[str, ArchConfig] | None = None

    def lookup(key: str) -> ArchConfig | None:
        nonlocal configs
        if configs is None:
            configs = _trial_configs(storage_url)
        return configs.get(key)

    return lookup


def _trial_configs(storage_url: str) -> dict[str, ArchConfig]:
    path = storage_url.removeprefix(SQLITE) if storage_url.startswith(SQLITE) else None
    if "://" not in storage_url:
        path = storage_url
    if path is not None and not Path(path).expanduser().is_file():
        return {}
    storage = open_storage(storage_url)
    configs: dict[str, ArchConfig] = {}
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            key = trial.user_attrs.get("arch_id")
            if key is not None and key not in configs:
                configs[key] = trial_config(study, trial)
    return configs
