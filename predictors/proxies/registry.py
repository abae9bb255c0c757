"""The accuracy scores by name: what each is, its version, how it is labelled and what it costs.

Every score is oriented so that higher means "predicted more accurate". Labels say what a value
is, because only imported and published results are accuracies; proxies are not.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.errors import UserError
from predictors.proxies.microtask import MICROTASK_VERSION
from predictors.proxies.size import SIZE_RANK_VERSION
from predictors.proxies.zero_cost import ZERO_COST_VERSIONS
from predictors.surrogate import SURROGATE_VERSION

SIZE, ZERO_COST, MICRO_TASK, SURROGATE = "size", "zero-cost", "micro-task", "surrogate"


@dataclass(frozen=True)
class ScoreSpec:
    """name: the objective name; kind: size | zero-cost | micro-task | surrogate; version: bumped
    whenever the computation changes (part of the cache key); expensive: trains a network, so a
    search uses it only when cached or explicitly requested; cost_rank: cheapest first, the
    tie-breaker of :func:`predictors.calibration.default_objective`."""

    name: str
    kind: str
    version: str
    label: str
    expensive: bool
    cost_rank: int

    @property
    def cached(self) -> bool:
        """Stored in ``proxy_scores``: everything that builds a network. Size scores and the
        surrogate take microseconds from the op table, faster than a database round trip."""
        return self.kind in (ZERO_COST, MICRO_TASK)


SCORES: dict[str, ScoreSpec] = {spec.name: spec for spec in (
    ScoreSpec("params", SIZE, "1", "size baseline: #params", False, 0),
    ScoreSpec("macs", SIZE, "1", "size baseline: MACs", False, 1),
    ScoreSpec("size-rank", SIZE, SIZE_RANK_VERSION, "size baseline: rank sum of #params and MACs (0-2)", False, 2),
    ScoreSpec("surrogate", SURROGATE, SURROGATE_VERSION, "surrogate top-1 (predicted mean), ImageNet %", False, 3),
    ScoreSpec("surrogate-pessimistic", SURROGATE, SURROGATE_VERSION,
              "surrogate top-1 (predicted, pessimistic 5 % quantile), ImageNet %", False, 4),
    ScoreSpec("surrogate-optimistic", SURROGATE, SURROGATE_VERSION,
              "surrogate top-1 (predicted, optimistic 95 % quantile: exploration), ImageNet %", False, 5),
    ScoreSpec("naswot", ZERO_COST, ZERO_COST_VERSIONS["naswot"], "zero-cost proxy: NASWOT log|K|", False, 6),
    ScoreSpec("zen", ZERO_COST, ZERO_COST_VERSIONS["zen"], "zero-cost proxy: zen-score", False, 7),
    ScoreSpec("grad-norm", ZERO_COST, ZERO_COST_VERSIONS["grad-norm"], "zero-cost proxy: grad-norm", False, 8),
    ScoreSpec("synflow", ZERO_COST, ZERO_COST_VERSIONS["synflow"], "zero-cost proxy: synflow (log)", False, 9),
    ScoreSpec("microtask", MICRO_TASK, MICROTASK_VERSION,
              "micro-task held-out top-1 % (generated task, not ImageNet)", True, 10),
)}
#: which statistic of the surrogate's predictive distribution each surrogate score is
SURROGATE_STATISTIC = {"surrogate": "mean", "surrogate-pessimistic": "low", "surrogate-optimistic": "high"}


class UnknownObjectiveError(UserError, KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown accuracy objective {self.name!r}; allowed: default, {', '.join(SCORES)}"


def available_objectives() -> tuple[str, ...]:
    """Names accepted by :func:`predictors.proxies.score_configs` (besides ``default``)."""
    return tuple(SCORES)


def score_spec(name: str) -> ScoreSpec:
    try:
        return SCORES[name]
    except KeyError:
        raise UnknownObjectiveError(name) from None
