"""Which architectures to measure first on a new device: the calibration points of a transfer.

A transfer (:mod:`predictors.transfer`) maps the sources' predicted log latencies and the op-table
extras to the new device, and calibrates its intervals and its choice among candidates on the
leave-one-out errors of its points. Points that represent the population serve both: every
architecture should have a measured one like it, in the space of the transfer's design (the
sources' latencies and the op mix, standardised). The picks minimise the summed distance of the
candidates to their nearest picked or already measured architecture (the k-medoids objective),
greedily: each next pick is the one that lowers that sum most. On the development host's
new-device benchmark (``benchmarks/new_device.py``) such picks score about as well as random ones
at k = 10 and better at k = 5, with intervals that cover what they claim; a V-optimal design of
the transfer's linear model, which this module used before, picked the edges of the design, whose
leave-one-out errors overstate a typical architecture's (its intervals covered 100 %), and scored
worse than random picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.distance import cdist

from predictors.transfer import SourceModel, extras
from search_spaces.base import ArchConfig, KnobError

if TYPE_CHECKING:
    from explorer.measure.campaign import SampleRequest

#: random candidates considered per architecture to pick
POOL_FACTOR = 20
_EPS = 1e-12


def calibration_design(X: np.ndarray, sources: Mapping[str, SourceModel]) -> np.ndarray:
    """(n, sources + extras) design of the transfer: each source's predicted log latency and the
    extras, standardised over the rows of ``X``."""
    if not sources:
        raise ValueError("choosing calibration points needs at least one source predictor")
    columns = [np.log(np.maximum(model.predict(X), _EPS)) for model in sources.values()]
    raw = np.column_stack([*columns, extras(X)])
    scale = raw.std(axis=0)
    return (raw - raw.mean(axis=0)) / np.where(scale > _EPS, scale, 1.0)


def choose_calibration_points(X: np.ndarray, sources: Mapping[str, SourceModel], n: int,
                              measured: np.ndarray | None = None, strata: Sequence[str] | None = None,
                              quotas: Mapping[str, int] | None = None) -> np.ndarray:
    """Indices of the ``n`` rows of candidate features ``X`` to measure (see module docstring).

    measured: feature rows already measured on the device (they count as picked).
    strata, quotas: each row's stratum (its family) and how many picks each stratum gets at most
    (:func:`family_quotas`); the medoid objective still runs over every candidate.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of architectures; got {n}")
    n = min(n, len(X))
    known = np.empty((0, X.shape[1])) if measured is None else np.atleast_2d(measured)
    design = calibration_design(np.vstack([X, known]), sources)
    candidates, done = design[: len(X)], design[len(X):]
    distance = cdist(candidates, candidates)
    # each candidate's distance to its closest picked or measured architecture
    nearest = cdist(candidates, done).min(axis=1) if len(done) else np.full(len(X), np.inf)
    left = None if quotas is None else dict(quotas)
    strata = None if strata is None else np.asarray(strata, dtype=object)
    picked: list[int] = []
    for _ in range(n):
        total = np.minimum(distance, nearest).sum(axis=1)  # the summed distance after picking each row
        total[picked] = np.inf
        if left is not None:
            total[~np.isin(strata, [stratum for stratum, count in left.items() if count > 0])] = np.inf
        if not np.isfinite(total).any():
            break
        best = int(np.argmin(total))
        picked.append(best)
        nearest = np.minimum(nearest, distance[best])
        if left is not None:
            left[strata[best]] -= 1
    return np.asarray(picked)


def family_quotas(n: int, families: Sequence[str], measured: Sequence[str] = ()) -> dict[str, int]:
    """How many of ``n`` new calibration points each family gets: the family with the fewest
    points so far (``measured``: the family of each point the device has) gets the next one. The
    transfer fits an offset per family (:class:`~predictors.transfer.TransferCalibrator`), which a
    family without a point cannot inform (``benchmarks/new_device.py``: the worst random draws
    leave a family out, and PyTorch eager runs MCGA much faster than the sources say)."""
    have = {family: sum(f == family for f in measured) for family in families}
    quotas = dict.fromkeys(families, 0)
    for _ in range(n):
        family = min(families, key=lambda f: have[f] + quotas[f])
        quotas[family] += 1
    return quotas


def calibration_sampler(request: SampleRequest) -> list[ArchConfig]:
    """The ``calibrate`` strategy of measurement campaigns (``explorer.measure.campaign`` sampler
    interface): ``n`` of ``POOL_FACTOR * n`` random configs of the space, or of every family in
    equal shares (:func:`family_quotas`) when no space is given, chosen for a transfer from the
    stored predictors of the richly measured devices, counting what the device has measured
    already."""
    from explorer.architectures import FAMILIES, family_of, flat_space
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
    spaces = (request.space,) if request.space else FAMILIES
    pool = [c for space in spaces for c in flat_space(space).sample(
        POOL_FACTOR * request.n, request.seed, resolution=request.resolution or 224) if c not in known]
    families = [family_of(c.space) for c in pool]
    quotas = family_quotas(request.n, spaces, [family_of(c.space) for c in measured]) if not request.space else None
    featurizer = OpFeaturizer()
    picked = choose_calibration_points(featurizer.transform(pool), sources, request.n,
                                       measured=featurizer.transform(measured) if measured else None,
                                       strata=families, quotas=quotas)
    return [pool[i] for i in picked]


#: per knob group, per backbone family, the config fields (dotted paths) whose values make the
#: group's label: architectures unlike each other in the way a search varies them
KNOB_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "attention": {"lowformer": ("stage3.attention", "stage4.attention"), "efficientvit": ("scales", "dim"),
                  "fmvit": ("head_dim", "multi_groups"), "mcga": ("projection", "group_tokens"),
                  "attention-stack": ("attention_stride", "compression")},
    "mlp": {"lowformer": ("stage3.mlp", "stage3.mlp_ratio", "stage4.mlp", "stage4.mlp_ratio"),
            "efficientvit": ("expand_ratio",), "fmvit": ("mlp_ratio",), "mcga": ("mlp_ratio", "token_mlp_ratio")},
    "fusion": {"lowformer": ("unfused",), "efficientvit": ("local_expand_ratio", "kernel"),
               "fmvit": ("fmb_cfbs", "out_proj"), "mcga": ("patch_embed", "kernels"), "toy-conv": ("depthwise",)},
    "depth": {family: ("depths",) for family in ("lowformer", "efficientvit", "fmvit", "mcga")}
    | {"attention-stack": ("layers",), "toy-conv": ("layers",)},
}
#: a depth pattern tells empty, single-block and deeper stages apart (exact depths would make
#: every random architecture a group of its own)
_DEPTH_CAP = 2


def _field(config: ArchConfig, path: str) -> object:
    value: object = config
    for name in path.split("."):
        value = getattr(value, name)
    return value


def knob_groups(configs: Sequence[ArchConfig]) -> dict[str, np.ndarray]:
    """Per knob group (``KNOB_FIELDS``: attention type, MLP, fusion, depth pattern), the label of
    each config: its family and the values of the group's fields (None where the family has none)."""
    from explorer.architectures import family_of

    out = {}
    for group, fields in KNOB_FIELDS.items():
        labels = []
        for config in configs:
            family = family_of(config.space)
            paths = fields.get(family)
            if paths is None:
                labels.append(None)
                continue
            values = [_field(config, path) for path in paths]
            if group == "depth":
                values = [tuple(min(int(d), _DEPTH_CAP) for d in value) if isinstance(value, tuple)
                          else min(int(value), _DEPTH_CAP) for value in values]
            labels.append(f"{family}: " + ", ".join(f"{p}={v}" for p, v in zip(paths, values)))
        out[group] = np.array(labels, dtype=object)
    return out


@dataclass(frozen=True)
class KnobHoldout:
    """Architectures whose value of one knob group no calibration point shares."""

    group: str  # attention, mlp, fusion or depth
    label: str  # the held-out value (family and fields)
    held: np.ndarray  # bool mask of the held-out rows


def knob_group_holdouts(configs: Sequence[ArchConfig], min_rest: int = 3) -> list[KnobHoldout]:
    """Leave-one-knob-group-out: for each knob group and each of its values, the rows with that
    value held out, the others left to calibrate on. Only values of a family that shows two or
    more (holding out a whole family is another question) and that leave ``min_rest`` rows."""
    from explorer.architectures import family_of

    families = np.array([family_of(c.space) for c in configs], dtype=object)
    out = []
    for group, labels in knob_groups(configs).items():
        for label in dict.fromkeys(l for l in labels if l is not None):
            held = labels == label
            family = families[held][0]
            if len(set(labels[families == family])) < 2 or (~held).sum() < min_rest:
                continue
            out.append(KnobHoldout(group, label, held))
    return out
