"""Which architectures to measure first on a new device: the calibration points of a transfer.

A transfer (:mod:`predictors.transfer`) is a linear model of the new device's log latency in the
sources' log latencies and the op-table extras. The points that pin a linear model down best for
predicting a population are those that minimise its average predictive variance over that
population (V-optimality): they spread along every direction of the design that varies in the
population (fast and slow architectures, attention-heavy and depthwise-heavy ones), without
spending points on rare corners. Picked greedily, each next point is the one that lowers the
summed predictive variance over the candidates most, given those already picked or measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from predictors.transfer import SourceModel, extras
from search_spaces.base import ArchConfig, KnobError

if TYPE_CHECKING:
    from explorer.measure.campaign import SampleRequest

#: random candidates considered per architecture to pick
POOL_FACTOR = 20
_EPS = 1e-12


def calibration_design(X: np.ndarray, sources: Mapping[str, SourceModel]) -> np.ndarray:
    """(n, 1 + sources + extras) design of the transfer: an intercept, each source's predicted
    log latency and the extras, standardised over the rows of ``X``."""
    if not sources:
        raise ValueError("choosing calibration points needs at least one source predictor")
    columns = [np.log(np.maximum(model.predict(X), _EPS)) for model in sources.values()]
    raw = np.column_stack([*columns, extras(X)])
    scale = raw.std(axis=0)
    return np.column_stack([np.ones(len(X)), (raw - raw.mean(axis=0)) / np.where(scale > _EPS, scale, 1.0)])


def choose_calibration_points(X: np.ndarray, sources: Mapping[str, SourceModel], n: int,
                              measured: np.ndarray | None = None, prior: float = 1.0) -> np.ndarray:
    """Indices of the ``n`` rows of candidate features ``X`` to measure (see module docstring).

    measured: feature rows already measured on the device (they count as picked).
    prior: ridge precision of the design, in units of one measured point; it keeps the first
    picks from chasing the most extreme candidate.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of architectures; got {n}")
    n = min(n, len(X))
    known = np.empty((0, X.shape[1])) if measured is None else np.atleast_2d(measured)
    design = calibration_design(np.vstack([X, known]), sources)
    candidates, done = design[: len(X)], design[len(X):]
    information = prior * np.eye(design.shape[1]) + done.T @ done
    population = candidates.T @ candidates
    picked: list[int] = []
    for _ in range(n):
        inverse = np.linalg.inv(information)
        projected = candidates @ inverse
        # reduction of sum_j var(x_j) by measuring x: (x' M^-1 S M^-1 x) / (1 + x' M^-1 x)
        gain = np.einsum("ij,jk,ik->i", projected, population, projected) / (
            1.0 + np.einsum("ij,ij->i", projected, candidates))
        gain[picked] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        information += np.outer(candidates[best], candidates[best])
    return np.asarray(picked)


def calibration_sampler(request: SampleRequest) -> list[ArchConfig]:
    """The ``calibrate`` strategy of measurement campaigns (``explorer.measure.campaign`` sampler
    interface): ``n`` of ``POOL_FACTOR * n`` random configs of the space (LowFormer by default),
    chosen for a transfer from the stored predictors of the richly measured devices, counting
    what the device has measured already."""
    from explorer.architectures import flat_space
    from predictors.features import OpFeaturizer
    from predictors.latency import TrainingDataError
    from predictors.store import estimator_params, load_training_set, transfer_sources

    if request.n is None or request.n < 1:
        raise KnobError("n", request.n, "a positive number of architectures for the calibrate strategy")
    with request.database.session() as session:
        sources = estimator_params("transfer", request.seed,
                                   sources=transfer_sources(session, exclude=request.device))["sources"]
        try:
            measured = load_training_set(session, request.device).configs
        except TrainingDataError:
            measured = ()
    known = set(measured)
    pool = [c for c in flat_space(request.space or "lowformer").sample(
        POOL_FACTOR * request.n, request.seed, resolution=request.resolution or 224) if c not in known]
    featurizer = OpFeaturizer()
    picked = choose_calibration_points(featurizer.transform(pool), sources, request.n,
                                       measured=featurizer.transform(measured) if measured else None)
    return [pool[i] for i in picked]
