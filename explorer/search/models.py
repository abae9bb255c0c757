"""The real latency model and accuracy score of a search, behind the protocols of
:mod:`explorer.search.study`, and a picklable factory that workers use to load them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from explorer.db import Database, UnknownDeviceError, open_database, resolve_device
from explorer.errors import UserError
from explorer.search.study import Evaluator, SearchSetupError, describe_changes, stale_changes
from search_spaces.base import ArchConfig


class ScoreObjective:
    """A score of :mod:`predictors.proxies` (``default``: the one with the best evidence)."""

    def __init__(self, db: Database, name: str = "default"):
        from predictors.proxies import score_spec

        if name == "default":
            from predictors.calibration import default_objective

            name = default_objective(db)
        self.name, self.label = name, score_spec(name).label
        self._db = db

    @cached_property
    def evidence(self) -> dict[str, str]:
        """What the scores rest on (see :class:`explorer.search.study.Objective`): the score and
        its version, and for the surrogate's scores the digest of the results it is fitted on."""
        from predictors.proxies import score_spec
        from predictors.proxies.registry import SURROGATE

        spec = score_spec(self.name)
        evidence = {"objective": self.name, "objective_version": spec.version}
        if spec.kind == SURROGATE:
            from predictors.results import evidence_digest

            evidence["accuracy_evidence"] = evidence_digest(self._db)
        return evidence

    def score(self, configs: Sequence[ArchConfig]) -> np.ndarray:
        from predictors.proxies import score_configs

        return score_configs(self._db, configs, self.name)

    def describe(self, configs: Sequence[ArchConfig]) -> list[dict | None]:
        """The accuracy surrogate's view of each config (predicted top-1, ~90 % interval, nearest
        known result, extrapolation flags), whatever the objective; None without enough results."""
        from predictors.proxies.scoring import surrogate_details
        from predictors.results import NotEnoughResultsError, load_surrogate

        try:
            surrogate = load_surrogate(self._db)
        except NotEnoughResultsError:
            return [None] * len(configs)
        return [surrogate_details(surrogate, config) for config in configs]


def load_latency_model(db: Database, device: str):
    """The device's default predictor; unknown devices and missing predictors become errors that
    list the known devices or say how to train one."""
    from predictors import NoPredictorError, load_predictor

    try:
        with db.session() as session:
            resolve_device(session, device)
        return load_predictor(db, device)
    except (UnknownDeviceError, NoPredictorError) as err:
        raise SearchSetupError(str(err)) from None


@dataclass(frozen=True)
class ModelSource:
    """Opens the database and loads (latency model, objective); picklable, so each worker process
    loads its own copy instead of sharing a connection."""

    db_url: str | None
    device: str
    objective: str = "default"

    def __call__(self):
        db = open_database(self.db_url)
        return load_latency_model(db, self.device), ScoreObjective(db, self.objective)


def stale_study_message(db: Database, study) -> str | None:
    """One line saying that ``study``'s stored scores rest on other evidence than its score has now
    (:func:`explorer.search.study.stale_changes`), and how to re-score it; ``None`` when current."""
    objective = study.user_attrs.get("objective")
    if not objective:
        return None
    try:
        changed = stale_changes(study, ScoreObjective(db, objective))
    except UserError as err:  # a score this version no longer knows
        changed = {"objective": (objective, str(err))}
    if not changed:
        return None
    return (f"study {study.study_name!r} was scored on other evidence than its score rests on now "
            f"({describe_changes(changed)}): its scores and shortlist are stale; run `explorer search` with its "
            "options again to re-score it")


def study_evaluator(db: Database, study) -> Evaluator:
    """The latency model and score a stored study was searched with (to place other
    architectures, e.g. the published models, on the same axes)."""
    attrs = study.user_attrs
    return Evaluator(load_latency_model(db, attrs["device"]), ScoreObjective(db, attrs["objective"]))
