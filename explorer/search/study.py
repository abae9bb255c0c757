"""The search: an Optuna multi-objective study (accuracy score up, predicted latency down) with
the budget as a hard constraint on the predictor's upper bound.

Why the loop looks the way it does:

* Trials are asked and told in batches on an in-memory study, so the latency model and the
  score are called once per batch (vectorised), and the persistent storage is written once per
  batch (``add_trials``). A stopped search loses at most one batch.
* Every architecture is evaluated once: the evaluator caches by architecture id, a duplicate
  trial gets the stored values (flagged ``duplicate``). Giving samplers the true values of a
  repeated point keeps NSGA-II's populations and TPE's densities honest; pruning would not.
* Several workers share one storage. After writing its batch, a worker adds the other workers'
  new trials to its in-memory study, so every sampler sees (nearly) the whole history.
* The space is sampled define-by-run (:func:`explorer.search.space.suggest`), so that ``--space
  all`` can pick a family first. TPE (``group=True``) models each family's knobs jointly; NSGA-II
  recombines only the parameters every trial has, so in ``all`` its trials carry every family's
  knobs (see :data:`RECOMBINES_SHARED_PARAMS`).
"""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from explorer.architectures import family_of
from explorer.errors import UserError
from explorer.search.journal import open_storage
from explorer.search.space import (
    DEFAULT_SPACE,
    SPACE_PARAM,
    check_space,
    config_of,
    flat_spaces,
    seed_params,
    suggest,
)
from search_spaces.base import ArchConfig, arch_id

DIRECTIONS = (optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE)
#: Optuna's GPSampler is not offered: in this 40-knob categorical, two-objective space its first
#: model-based trial took over 3 minutes on 2 cores (timed with optuna 5.0).
SAMPLERS = ("nsga2", "tpe", "random")
#: Samplers that recombine only the parameters every trial has (Optuna's intersection search
#: space): with ``--space all`` they sample every family's knobs in every trial.
RECOMBINES_SHARED_PARAMS = ("nsga2",)
CONSTRAINT = "budget"
#: Study attributes a resumed search must agree with.
IDENTITY_ATTRS = ("device", "budget_ms", "objective", "resolution", "resolutions", SPACE_PARAM)
#: Study attribute: the objective's ``evidence`` the stored scores were computed with.
EVIDENCE_ATTR = "score_evidence"


class LatencyModel(Protocol):
    """A per-device latency predictor: median and ~90 % interval in ms per config."""

    name: str

    def predict(self, configs: Sequence[ArchConfig]) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class Objective(Protocol):
    """An accuracy score (higher is better) with a label that says what it is. An objective may
    also have ``evidence``: a dict of strings that changes whenever the score of a config would
    (its version, the digest of the results it is fitted on); a stored study remembers it and is
    re-scored when it changed (:func:`start_study`)."""

    name: str
    label: str

    def score(self, configs: Sequence[ArchConfig]) -> np.ndarray: ...


class StudyMismatchError(UserError):
    """A --study name that already holds a search for another device, budget, objective or space."""


class SearchSetupError(UserError):
    """A device, objective or space the search cannot use; the message says what to do."""


@dataclass(frozen=True)
class Evaluation:
    """What the search knows about one architecture; stored as the trial's user attributes."""

    arch_id: str
    score: float
    latency_ms: float
    low_ms: float
    high_ms: float
    macs: int
    params: int

    @classmethod
    def from_attrs(cls, attrs: dict) -> Evaluation:
        return cls(**{k: attrs[k] for k in cls.__dataclass_fields__})


class Evaluator:
    """Predicts and scores batches of configs, each architecture id once."""

    def __init__(self, latency: LatencyModel, objective: Objective):
        self.latency, self.objective = latency, objective
        self._known: dict[str, Evaluation] = {}

    def remember(self, evaluation: Evaluation) -> None:
        self._known.setdefault(evaluation.arch_id, evaluation)

    def evaluate(self, configs: Sequence[ArchConfig]) -> list[Evaluation]:
        ids = [arch_id(c) for c in configs]
        new = {key: config for key, config in zip(ids, configs) if key not in self._known}
        if new:
            batch = list(new.values())
            median, low, high = self.latency.predict(batch)
            scores = np.asarray(self.objective.score(batch), dtype=float)
            for i, (key, config) in enumerate(new.items()):
                table = config.op_table()
                self._known[key] = Evaluation(key, float(scores[i]), float(median[i]), float(low[i]),
                                              float(high[i]), int(table.macs), int(table.params))
        return [self._known[key] for key in ids]


@dataclass(frozen=True)
class SearchSettings:
    """One search: ``trials`` is the study's total, so re-running the same settings resumes.
    ``space``: a name of :func:`explorer.search.space.space_names` (``all``: every family)."""

    device: str
    budget_ms: float
    objective: str
    trials: int = 1000
    sampler: str = "nsga2"
    seed: int = 0
    resolution: int = 224
    study_name: str | None = None
    batch_size: int = 50
    space: str = DEFAULT_SPACE
    resolutions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_space(self.space)
        object.__setattr__(self, "resolutions", tuple(sorted(set(self.resolutions))))
        if len(self.resolutions) == 1:  # one resolution is the fixed-resolution search
            object.__setattr__(self, "resolution", self.resolutions[0])
            object.__setattr__(self, "resolutions", ())
        if any(not isinstance(r, int) or not 32 <= r <= 1024 for r in (self.resolution, *self.resolutions)):
            raise UserError(f"invalid resolution(s) {self.resolutions or self.resolution}; allowed: integers 32-1024")
        if self.sampler not in SAMPLERS:
            raise UserError(f"invalid sampler {self.sampler!r}; allowed: {', '.join(SAMPLERS)}")
        if self.trials < 1:
            raise UserError(f"invalid --trials {self.trials}; allowed: an integer >= 1")
        if self.batch_size < 1:
            raise UserError(f"invalid batch size {self.batch_size}; allowed: an integer >= 1")

    @property
    def name(self) -> str:
        """The ``--study`` name, else DEVICE-BUDGET-OBJECTIVE (plus -SPACE unless LowFormer, so
        that another space starts a new study instead of resuming the LowFormer one)."""
        if self.study_name:
            return self.study_name
        suffix = "" if self.space == DEFAULT_SPACE else f"-{self.space}"
        return f"{self.device}-{self.budget_ms:g}ms-{self.objective}{suffix}"

    def identity(self) -> dict:
        """What a stored study must match to be resumed by these settings."""
        return {key: (list(self.resolutions) if key == "resolutions" else getattr(self, key))
                for key in IDENTITY_ATTRS}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():  # ``group`` (one joint model per family of --space all) is experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=50)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"invalid sampler {name!r}; allowed: {', '.join(SAMPLERS)}")


def check_models(evaluator: Evaluator, settings: SearchSettings) -> None:
    """Evaluate one architecture of every searched family (a seed, which the search evaluates
    anyway) so that a latency model or score that cannot handle a family fails before the search,
    naming both."""
    seeds = [config_of(params, settings.resolution, settings.space)
             for params in seed_params(settings.resolution, settings.space, settings.resolutions).values()]
    what = f"the latency model {evaluator.latency.name!r} and the objective {evaluator.objective.name!r}"
    for family, table in flat_spaces(settings.space).items():
        probe = next((c for c in seeds if family_of(c.space) == family), None)
        probe = probe or table.sample(1, seed=settings.seed, resolution=settings.resolution)[0]
        try:
            [evaluation] = evaluator.evaluate([probe])
        except Exception as err:  # any model's failure on a family is a setup problem of this search
            raise SearchSetupError(f"cannot search the {family} family with {what}: {type(err).__name__}: {err}; "
                                   f"choose another --objective or --space") from err
        if not all(math.isfinite(v) for v in (evaluation.score, evaluation.latency_ms, evaluation.high_ms)):
            raise SearchSetupError(f"cannot search the {family} family with {what}: architecture "
                                   f"{evaluation.arch_id} gets no finite score or latency; choose another "
                                   "--objective or --space")


def open_study(storage_url: str, settings: SearchSettings, latency_name: str, objective_label: str,
               evidence: dict | None = None) -> optuna.Study:
    """Create the study or load it; a loaded one must match device, budget, objective, resolution,
    space (a study without a stored space searched LowFormer) and latency predictor. A new study
    stores the objective's ``evidence`` (see :class:`Objective`)."""
    study = optuna.create_study(storage=open_storage(storage_url), study_name=settings.name,
                                directions=list(DIRECTIONS), load_if_exists=True)
    identity = settings.identity()
    if not study.user_attrs:
        for key, value in {**identity, "objective_label": objective_label, "predictor": latency_name,
                           **({EVIDENCE_ATTR: evidence} if evidence is not None else {})}.items():
            study.set_user_attr(key, value)
        return study
    stored = {SPACE_PARAM: DEFAULT_SPACE, "resolutions": [], **study.user_attrs}
    # a retrained predictor would mix its latencies with the stored trials' (a study stored
    # without the attribute is not held to it)
    clash = {k: (stored.get(k), v) for k, v in {**identity, "predictor": latency_name}.items()
             if stored.get(k) != v and (k != "predictor" or k in stored)}
    if clash:
        detail = ", ".join(f"{k} {old!r} (asked: {new!r})" for k, (old, new) in clash.items())
        raise StudyMismatchError(f"study {settings.name!r} already holds a search with {detail}; "
                                 "use another --study name to start a new one")
    return study


@dataclass(frozen=True)
class Rescore:
    """A stored study whose scores were computed on other evidence, re-scored under its name:
    ``changed`` maps each changed part of the evidence to (stored, now); a study stored before
    evidence was recorded has ``{"evidence": (None, "recorded now")}``."""

    study: str
    trials: int
    changed: dict[str, tuple[str | None, str | None]]

    def describe(self) -> str:
        return (f"study {self.study!r} was scored on other evidence ({describe_changes(self.changed)}); its "
                f"{self.trials} stored trials were re-scored, so resumed and new trials are compared on the same scores")


def describe_changes(changed: dict[str, tuple[str | None, str | None]]) -> str:
    """``changed`` (see :func:`evidence_changes`) as "part stored -> now, ..."."""
    return ", ".join(f"{key} {_short(old)} -> {_short(new)}" for key, (old, new) in changed.items())


def _short(value: str | None) -> str:
    return "none" if value is None else value[:12] if len(value) == 64 else value


def evidence_changes(stored: dict | None, current: dict) -> dict[str, tuple[str | None, str | None]]:
    """What differs between a study's stored evidence and the objective's current evidence."""
    if stored is None:
        return {"evidence": (None, "recorded now")}
    return {key: (stored.get(key), current.get(key)) for key in sorted({*stored, *current})
            if stored.get(key) != current.get(key)}


def stale_changes(study: optuna.Study, objective: Objective) -> dict[str, tuple[str | None, str | None]]:
    """What changed in the evidence ``objective`` rests on since ``study`` was scored (empty: its
    scores are current; an objective that names no evidence never makes a study stale). Only a
    search re-scores a study (:func:`start_study`); what only reads one (dashboard, verify,
    export) says so with this."""
    evidence = getattr(objective, "evidence", None)
    return {} if evidence is None else evidence_changes(study.user_attrs.get(EVIDENCE_ATTR), evidence)


def rescore_study(storage_url: str, study: optuna.Study, settings: SearchSettings, evaluator: Evaluator,
                  evidence: dict) -> optuna.Study:
    """The study recreated under its name with every stored trial evaluated again by
    ``evaluator`` (trial numbers, parameters and attributes kept; scores, latencies and the budget
    constraint new), and ``evidence`` recorded. Optuna cannot change a finished trial's values, so
    the study is replaced; a stop in between loses the stored trials, never mixes scores."""
    old = study.get_trials(deepcopy=False)
    configs = [config_of(t.params, settings.resolution, settings.space) for t in old]
    trials = []
    for trial, evaluation in zip(old, evaluator.evaluate(configs)):
        values = [evaluation.score, evaluation.latency_ms]
        finite = all(math.isfinite(v) for v in (evaluation.score, evaluation.latency_ms, evaluation.high_ms))
        fresh = optuna.trial.create_trial(
            state=TrialState.COMPLETE if finite else TrialState.FAIL, values=values if finite else None,
            params=trial.params, distributions=trial.distributions,
            user_attrs={**trial.user_attrs, **asdict(evaluation)},
            system_attrs={k: v for k, v in trial.system_attrs.items() if not k.startswith("constraints")},  # set anew
            constraints={CONSTRAINT: evaluation.high_ms - settings.budget_ms} if finite else None)
        fresh.datetime_start, fresh.datetime_complete = trial.datetime_start, trial.datetime_complete
        trials.append(fresh)
    attrs = {**study.user_attrs, EVIDENCE_ATTR: evidence}
    storage = open_storage(storage_url)
    optuna.delete_study(study_name=study.study_name, storage=storage)
    new = optuna.create_study(storage=storage, study_name=study.study_name, directions=list(DIRECTIONS))
    for key, value in attrs.items():
        new.set_user_attr(key, value)
    new.add_trials(trials)
    return new


def start_study(storage_url: str, settings: SearchSettings, evaluator: Evaluator,
                on_rescore: Callable[[Rescore], None] | None = None) -> optuna.Study:
    """:func:`check_models`, then :func:`open_study`: nothing is stored for a search that cannot
    run. A stored study scored on other evidence than the objective's now is re-scored
    (:func:`rescore_study`) and ``on_rescore`` told so."""
    check_models(evaluator, settings)
    evidence = getattr(evaluator.objective, "evidence", None)
    study = open_study(storage_url, settings, evaluator.latency.name, evaluator.objective.label, evidence)
    changed = stale_changes(study, evaluator.objective)
    if not changed:
        return study
    if not study.trials:  # nothing scored yet
        study.set_user_attr(EVIDENCE_ATTR, evidence)
        return study
    study = rescore_study(storage_url, study, settings, evaluator, evidence)
    if on_rescore is not None:
        on_rescore(Rescore(study.study_name, len(study.trials), changed))
    return study


def load_study(storage_url: str, name: str) -> optuna.Study:
    """An existing study; the error lists the stored ones."""
    storage = open_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        raise UserError(f"unknown study {name!r} in {storage_url}; stored studies: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=storage)


def evaluations(study: optuna.Study) -> list[tuple[FrozenTrial, Evaluation]]:
    return [(t, Evaluation.from_attrs(t.user_attrs))
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


class _Mirror:
    """The in-memory working study and its two-way sync with the persistent one."""

    def __init__(self, persistent: optuna.Study, sampler: optuna.samplers.BaseSampler, evaluator: Evaluator):
        self.persistent, self.evaluator = persistent, evaluator
        self.working = optuna.create_study(directions=list(DIRECTIONS), sampler=sampler)
        self.tag = uuid.uuid4().hex
        self._seen: set[int] = set()
        self.arch_ids: set[str] = set()  # of every trial in the working study
        self.pull()

    def pull(self) -> None:
        fresh = [t for t in self.persistent.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.number not in self._seen and t.user_attrs.get("worker") != self.tag]
        self._seen.update(t.number for t in fresh)
        self.arch_ids.update(t.user_attrs["arch_id"] for t in fresh)
        if fresh:
            self.working.add_trials(fresh)
        for trial in fresh:
            self.evaluator.remember(Evaluation.from_attrs(trial.user_attrs))

    def push(self, numbers: set[int]) -> None:
        self.persistent.add_trials([t for t in self.working.get_trials(deepcopy=False) if t.number in numbers])


def run_batches(study: optuna.Study, settings: SearchSettings, evaluator: Evaluator, n_trials: int, *,
                worker: int = 0, seed_presets: bool = False, on_batch: Callable[[int], None] | None = None) -> None:
    """Add ``n_trials`` trials to ``study`` (see module docstring for the batching and the sync);
    ``seed_presets``: start with the published models (for the first worker of a new study)."""
    mirror = _Mirror(study, make_sampler(settings.sampler, settings.seed + worker), evaluator)
    if seed_presets:
        for params in seed_params(settings.resolution, settings.space, settings.resolutions).values():
            mirror.working.enqueue_trial(params)
    done = 0
    while done < n_trials:
        size = min(settings.batch_size, n_trials - done)
        trials = [mirror.working.ask() for _ in range(size)]
        for trial in trials:
            suggest(trial, settings.space, every_family=settings.sampler in RECOMBINES_SHARED_PARAMS,
                    resolutions=settings.resolutions)
        configs = [config_of(t.params, settings.resolution, settings.space) for t in trials]
        ids = [arch_id(c) for c in configs]
        fresh = [key not in mirror.arch_ids and key not in ids[:i] for i, key in enumerate(ids)]
        mirror.arch_ids.update(ids)
        for trial, config, evaluation, is_new in zip(trials, configs, evaluator.evaluate(configs), fresh):
            attrs = {**asdict(evaluation), SPACE_PARAM: config.space, "family": family_of(config.space)}
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr("duplicate", not is_new)
            trial.set_user_attr("worker", mirror.tag)
            if not all(math.isfinite(v) for v in (evaluation.score, evaluation.latency_ms, evaluation.high_ms)):
                mirror.working.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_constraint(CONSTRAINT, evaluation.high_ms - settings.budget_ms)
            mirror.working.tell(trial, [evaluation.score, evaluation.latency_ms])
        mirror.push({t.number for t in trials})
        mirror.pull()
        done += size
        if on_batch is not None:
            on_batch(size)


def feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def worker_shares(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials split as evenly as possible over ``workers``."""
    base, extra = divmod(max(remaining, 0), workers)
    return [base + (i < extra) for i in range(workers)]
