"""Active learning: measure next the architectures the latency model is least sure about.

The model is refitted on the device's current measurements every time (a stored predictor may be
older than them). Its uncertainty is the spread of the bootstrap members' log predictions, the
part of the interval that more data can shrink. Candidates are picked greedily: the most
uncertain first, then each next one discounted by its closeness (in standardised log-feature
space) to those already picked, so that one batch does not spend every measurement on the same
corner of the space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from predictors.features import OpFeaturizer
from predictors.latency import LatencyRegressor, TrainingDataError
from search_spaces.base import ArchConfig, KnobError

if TYPE_CHECKING:
    from explorer.measure.campaign import SampleRequest

#: a strategy needs this many measured architectures before the model's doubts mean anything
MIN_MEASURED = 10
#: random candidates scored per architecture to pick
POOL_FACTOR = 20


def uncertainty_model(n_measured: int, seed: int = 0) -> LatencyRegressor:
    """The ensemble used to rank candidates: ridge on few points, boosted trees on many."""
    kind = "ridge" if n_measured < 40 else "xgboost"
    return LatencyRegressor(kind=kind, n_members=5, random_state=seed)





def select_uncertain(model: LatencyRegressor, X: np.ndarray, n: int, diversity: float = 0.5) -> np.ndarray:
    """Indices of ``n`` rows of ``X`` to measure next (see module docstring).

    diversity: radius of the closeness discount, as a fraction of the median distance between
    candidates; 0 picks purely by uncertainty.
    """
    n = min(n, len(X))
    spread = model.log_spread(X)
    Z = np.log1p(np.maximum(X, 0.0))
    std = Z.std(axis=0)
    Z = (Z - Z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    rng = np.random.default_rng(0)
    sample = Z[rng.choice(len(Z), size=min(len(Z), 200), replace=False)]
    typical = np.median(np.linalg.norm(sample[:, None] - sample[None], axis=-1)) or 1.0
    radius = diversity * typical
    discount = np.ones(len(X))
    picked: list[int] = []
    for _ in range(n):
        priority = spread * discount
        priority[picked] = -np.inf
        best = int(np.argmax(priority))
        picked.append(best)
        if radius > 0:
            distance = np.linalg.norm(Z - Z[best], axis=1)
            discount *= 1.0 - np.exp(-((distance / radius) ** 2))
    return np.asarray(picked)


def pick_uncertain(measured: Sequence[ArchConfig], latency_ms: np.ndarray, candidates: Sequence[ArchConfig],
                   n: int, seed: int = 0) -> list[ArchConfig]:
    """The ``n`` candidates to measure next, given what is measured so far."""
    if len(measured) < MIN_MEASURED:
        raise TrainingDataError(
            f"the uncertainty strategy needs at least {MIN_MEASURED} measured architectures on the device "
            f"(it has {len(measured)}); start with `--sampler random --n {MIN_MEASURED}`")
    featurizer = OpFeaturizer()
    model = uncertainty_model(len(measured), seed).fit(featurizer.transform(measured), latency_ms)
    return [candidates[i] for i in select_uncertain(model, featurizer.transform(candidates), n)]


def uncertainty_sampler(request: SampleRequest) -> list[ArchConfig]:
    """The ``uncertainty`` strategy for measurement campaigns (``explorer.measure.campaign``
    sampler interface: a ``SampleRequest`` with ``n``, ``seed``, ``resolution``, ``database``,
    ``device``, ``space``): ``n`` of ``POOL_FACTOR * n`` random configs of the space (LowFormer
    by default)."""
    from explorer.architectures import flat_space
    from predictors.store import load_training_set

    if request.n is None or request.n < 1:
        raise KnobError("n", request.n, "a positive number of architectures for the uncertainty strategy")
    with request.database.session() as session:
        try:
            data = load_training_set(session, request.device)
        except TrainingDataError:
            measured, latency = (), np.array([])
        else:
            measured, latency = data.configs, data.latency_ms
    pool = flat_space(request.space or "lowformer").sample(POOL_FACTOR * request.n, request.seed,
                                                          resolution=request.resolution or 224)
    known = set(measured)
    pool = [c for c in pool if c not in known]
    return pick_uncertain(measured, latency, pool, request.n, request.seed)
