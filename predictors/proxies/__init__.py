"""Accuracy scores for the search: size baselines, zero-cost proxies, a generated micro-task and
the ImageNet top-1 surrogate, each versioned and cached in the database.

Library entry points::

    from predictors.proxies import score_configs, available_objectives
    values = score_configs(db, configs, "naswot")          # float array, higher = better
    from predictors.calibration import default_objective  # the score with the best evidence
"""

from predictors.proxies.microtask import (
    GeneratedTask,
    ImageFolderTask,
    MicroTaskError,
    MicroTaskResult,
    MicroTaskSettings,
    microtask,
    scaled_config,
)
from predictors.proxies.registry import SCORES, ScoreSpec, UnknownObjectiveError, available_objectives, score_spec
from predictors.proxies.scoring import (
    NotCachedError,
    ScoreValue,
    ScoringOptions,
    cached_values,
    score_configs,
    score_values,
)
from predictors.proxies.size import SizeRankError, macs, params, size_rank
from predictors.proxies.zero_cost import ProxyError, default_scoring_resolution, grad_norm, naswot, synflow, zen

__all__ = [
    "SCORES",
    "GeneratedTask",
    "ImageFolderTask",
    "MicroTaskError",
    "MicroTaskResult",
    "MicroTaskSettings",
    "NotCachedError",
    "ProxyError",
    "ScoreSpec",
    "ScoreValue",
    "ScoringOptions",
    "SizeRankError",
    "UnknownObjectiveError",
    "available_objectives",
    "cached_values",
    "default_scoring_resolution",
    "grad_norm",
    "macs",
    "microtask",
    "naswot",
    "params",
    "scaled_config",
    "score_configs",
    "score_spec",
    "score_values",
    "size_rank",
    "synflow",
    "zen",
]
