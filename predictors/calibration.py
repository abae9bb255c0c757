"""How well each accuracy score ranks known results on this space, and which score the search
uses by default.

For every score and every result set (``published:imagenet``, ``imported:<dataset>``,
``micro-task:<task>``) the report gives Kendall's tau-b, Spearman's rho, and the partial
correlations given #params (does the score know anything that size does not?), the cost per
architecture, and the surrogate's leave-one-out figures. On the sets the surrogate is fitted on,
its leave-one-out predictions are used, never in-sample ones.

Default objective (:func:`default_objective`), the rule:

1. Evidence is the largest set of real training results (imported or published) with at least
   ``MIN_EVIDENCE`` architectures; micro-task sets count only when no real set is that large,
   and without any such set the default is ``params``, the baseline zero-cost proxies rarely beat.
2. Candidates are the scores a search can afford per trial (not the micro-task) that have a value
   for every architecture of the evidence set. Zero-cost proxies count only once computed (the
   report computes them; ``default_objective`` reads the cache and stays fast).
3. A score that is not a size baseline qualifies only if its partial Kendall tau given #params is
   at least ``MIN_PARTIAL_TAU``: it must add something beyond size.
4. Within size: a score that is not a size baseline qualifies only if it orders the pairs of
   results whose MACs differ by less than ``WITHIN_SIZE_RATIO`` (the comparisons a search makes
   all the time: one or two knobs at about the same compute) at least as well as the best size
   baseline does (:func:`within_size_pairs`).
5. Downward: the surrogate qualifies only if, fitted without the k results of fewest MACs
   (k = 1..5, :meth:`~predictors.surrogate.AccuracySurrogate.leave_smallest_out`), its ~90 %
   intervals cover at least ``MIN_DOWNWARD_COVERAGE`` of them: the search's shortlists sit below
   most of the evidence.
6. The winner has the highest Kendall tau; scores within ``TAU_TIE`` of the best tie, and the
   cheapest of them wins. The surrogate competes with its mean (leave-one-out predictions on the
   results it is fitted on); when it wins, the default is its **pessimistic** bound
   (``surrogate-pessimistic``), so that a shape nobody has trained is not rewarded for being
   unexplored. The optimistic bound is what ``--explore`` asks for, never a default.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from explorer.db import Database
from explorer.errors import UserError
from predictors.proxies.microtask import MicroTaskError
from predictors.proxies.registry import SCORES, SIZE, SURROGATE, SURROGATE_STATISTIC, ScoreSpec, score_spec
from predictors.proxies.scoring import (
    NotCachedError,
    ScoreValue,
    ScoringOptions,
    cached_values,
    score_values,
    surrogate_details,
)
from predictors.proxies.size import SizeRankError, params
from predictors.proxies.zero_cost import ProxyError
from predictors.results import (
    IMPORTED,
    MICRO_TASK,
    PUBLISHED,
    NotEnoughResultsError,
    known_results,
    load_surrogate,
    mean_by_architecture,
    surrogate_training_results,
)
from search_spaces.base import ArchConfig, arch_id

MIN_EVIDENCE = 5
MIN_PARTIAL_TAU = 0.1
TAU_TIE = 0.05
FALLBACK_OBJECTIVE = "params"
#: pairs of results whose MACs differ by less than this factor count as "within size"
WITHIN_SIZE_RATIO = 1.3
#: the least coverage of the surrogate's intervals on its leave-the-smallest-k-out results
MIN_DOWNWARD_COVERAGE = 0.8
#: the surrogate's score that ranks (its mean) and the one a search uses when it wins
SURROGATE_RANKING, SURROGATE_DEFAULT = "surrogate", "surrogate-pessimistic"


@dataclass(frozen=True)
class Evidence:
    """One score against one result set."""

    score: str
    label: str
    result_set: str
    n: int
    kendall_tau: float | None
    kendall_p: float | None
    spearman: float | None
    partial_tau_params: float | None
    partial_spearman_params: float | None
    seconds_per_arch: float | None
    within_size_pairs: int = 0  # pairs of results whose MACs differ by less than WITHIN_SIZE_RATIO
    within_size_ordered: float | None = None  # the fraction of them the score orders correctly


@dataclass(frozen=True)
class CalibrationReport:
    result_sets: dict[str, int]  # name -> architectures
    evidence: list[Evidence]
    surrogate: dict | None  # leave-one-out figures, coefficients, per-architecture LOO predictions
    costs: dict[str, float | None]  # score -> median seconds per architecture on this machine
    default: str
    default_reason: str
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def partial_kendall(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float | None:
    """Kendall's partial tau of x and y given z."""
    txy, txz, tyz = (stats.kendalltau(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    denominator = math.sqrt(max(0.0, (1 - txz**2) * (1 - tyz**2)))
    return _finite((txy - txz * tyz) / denominator) if denominator > 1e-6 else None


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float | None:
    """Pearson correlation of the ranks of x and y after regressing out the ranks of z."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    residuals = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    if min(np.std(r) for r in residuals) < 1e-12:
        return None
    return _finite(float(np.corrcoef(*residuals)[0, 1]))


def within_size_pairs(values: np.ndarray, top1: np.ndarray, macs: np.ndarray,
                      ratio: float = WITHIN_SIZE_RATIO) -> tuple[int, float | None]:
    """Pairs of results whose MACs differ by less than ``ratio`` and whose top-1 differ: how many,
    and the fraction the score orders as their top-1 does (a tie of the score counts half)."""
    i, j = np.triu_indices(len(top1), k=1)
    near = (np.maximum(macs[i], macs[j]) < ratio * np.minimum(macs[i], macs[j])) & (top1[i] != top1[j])
    i, j = i[near], j[near]
    if not len(i):
        return 0, None
    agree = np.sign(values[i] - values[j]) * np.sign(top1[i] - top1[j])
    return int(len(i)), float(np.mean((agree > 0) + 0.5 * (agree == 0)))


def _correlations(spec: ScoreSpec, result_set: str, values: np.ndarray, top1: np.ndarray, sizes: np.ndarray,
                  macs: np.ndarray, seconds: list[float]) -> Evidence:
    keep = np.isfinite(values)
    x, y, z = values[keep], top1[keep], sizes[keep]
    n = int(keep.sum())
    cost = statistics.median(seconds) if seconds else None
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Evidence(spec.name, spec.label, result_set, n, None, None, None, None, None, cost)
    kendall = stats.kendalltau(x, y)
    partial = spec.name != "params"
    return Evidence(
        spec.name, spec.label, result_set, n, _finite(kendall.statistic), _finite(kendall.pvalue),
        _finite(stats.spearmanr(x, y).statistic),
        partial_kendall(x, y, z) if partial else None, partial_spearman(x, y, z) if partial else None, cost,
        *within_size_pairs(x, y, macs[keep]))


UNDEFINED = (ProxyError, SizeRankError, MicroTaskError)


def _one_or_none(db: Database, config: ArchConfig, objective: str, options: ScoringOptions) -> ScoreValue | None:
    try:
        return score_values(db, [config], objective, options)[0]
    except UNDEFINED:
        return None


def _score_set(db: Database, spec: ScoreSpec, configs: Sequence[ArchConfig], ids: Sequence[str],
               surrogate_loo: dict[str, dict[str, float]], options: ScoringOptions, compute: bool,
               progress: bool) -> tuple[np.ndarray, list[float]]:
    """Values (NaN where unavailable) and per-architecture seconds of one score on one set."""
    if spec.kind == SURROGATE:
        try:
            values = score_values(db, configs, spec.name, options)
        except NotEnoughResultsError:
            return np.full(len(configs), np.nan), []
        statistic = SURROGATE_STATISTIC[spec.name]
        merged = [surrogate_loo[i][statistic] if i in surrogate_loo else v.value for i, v in zip(ids, values)]
        return np.array(merged), [v.seconds for v in values]
    if spec.kind == SIZE or (compute and not spec.expensive):
        try:
            values = score_values(db, configs, spec.name, options, progress=progress)
        except UNDEFINED:  # some architecture (e.g. another space) has no such score: skip only it
            values = [_one_or_none(db, config, spec.name, options) for config in configs]
    else:
        values = cached_values(db, configs, spec.name, options)
    return (np.array([np.nan if v is None else v.value for v in values]),
            [v.seconds for v in values if v is not None])


def _choose_default(sets: dict[str, int], evidence: list[Evidence], downward_coverage: float | None) -> tuple[str, str]:
    def eligible(kinds: tuple[str, ...]) -> list[str]:
        return [s for s, n in sets.items() if s.split(":", 1)[0] in kinds and n >= MIN_EVIDENCE]

    real = sorted(eligible((IMPORTED, PUBLISHED)), key=lambda s: (-sets[s], not s.startswith(IMPORTED)))
    chosen = real or sorted(eligible((MICRO_TASK,)), key=lambda s: -sets[s])
    if not chosen:
        return FALLBACK_OBJECTIVE, (f"no result set has {MIN_EVIDENCE} or more architectures; "
                                    f"'{FALLBACK_OBJECTIVE}' is the baseline zero-cost proxies rarely beat")
    target = chosen[0]
    rows = [e for e in evidence if e.result_set == target and e.n == sets[target] and e.kendall_tau is not None
            and not SCORES[e.score].expensive
            and (SCORES[e.score].kind != SURROGATE or e.score == SURROGATE_RANKING)
            and (SCORES[e.score].kind == SIZE or (e.partial_tau_params or 0.0) >= MIN_PARTIAL_TAU)]
    size_within = max((e.within_size_ordered for e in rows if SCORES[e.score].kind == SIZE
                       and e.within_size_ordered is not None), default=None)
    notes = []
    if size_within is not None:
        beaten = [e for e in rows if SCORES[e.score].kind != SIZE
                  and (e.within_size_ordered is None or e.within_size_ordered < size_within)]
        notes += [f"{e.score} orders fewer within-size pairs than size does "
                  f"({e.within_size_ordered or 0:.2f} < {size_within:.2f})" for e in beaten]
        rows = [e for e in rows if e not in beaten]
    if downward_coverage is not None and downward_coverage < MIN_DOWNWARD_COVERAGE:
        notes.append(f"the surrogate's intervals cover {downward_coverage:.0%} of the results left out from the "
                     f"smallest up (< {MIN_DOWNWARD_COVERAGE:.0%})")
        rows = [e for e in rows if e.score != SURROGATE_RANKING]
    excluded = f"; excluded: {'; '.join(notes)}" if notes else ""
    if not rows:
        return FALLBACK_OBJECTIVE, f"no affordable score has a rank correlation on {target}{excluded}"
    best = max(e.kendall_tau for e in rows)
    winner = min((e for e in rows if e.kendall_tau >= best - TAU_TIE), key=lambda e: SCORES[e.score].cost_rank)
    within = "" if winner.within_size_ordered is None else (
        f"; orders {winner.within_size_ordered:.0%} of {winner.within_size_pairs} within-size pairs"
        + ("" if size_within is None else f" (best size baseline {size_within:.0%})"))
    reason = (f"highest Kendall tau on {target} (n={sets[target]}): {winner.kendall_tau:.2f} "
              f"(best {best:.2f}; ties within {TAU_TIE} go to the cheapest; non-size scores need "
              f"partial tau given #params >= {MIN_PARTIAL_TAU}){within}{excluded}")
    if winner.score == SURROGATE_RANKING:
        return SURROGATE_DEFAULT, (f"the surrogate's leave-one-out mean has the {reason}; the search uses its "
                                   "pessimistic 5 % quantile so that unexplored shapes are not rewarded")
    return winner.score, reason


def _findings(sets: dict[str, int], evidence: list[Evidence]) -> list[str]:
    out = []
    by_set = defaultdict(dict)
    for e in evidence:
        by_set[e.result_set][e.score] = e
    for name, rows in by_set.items():
        base = rows.get("params")
        if base is not None and base.kendall_tau is not None and base.kendall_tau >= 0.9:
            out.append(f"{name} (n={base.n}): #params alone ranks this set at Kendall tau {base.kendall_tau:+.2f}; "
                       "it cannot show a score adding anything beyond size.")
        for e in rows.values():
            if SCORES[e.score].kind == SIZE or e.kendall_tau is None or e.n < MIN_EVIDENCE:
                continue
            if e.partial_tau_params is None or e.partial_tau_params < MIN_PARTIAL_TAU:
                partial = "undefined" if e.partial_tau_params is None else f"{e.partial_tau_params:+.2f}"
                out.append(f"{name} (n={e.n}): {e.score} adds nothing measurable beyond #params "
                           f"(partial Kendall tau given #params {partial}).")
            if base is not None and base.kendall_tau is not None and e.kendall_tau < base.kendall_tau - TAU_TIE:
                out.append(f"{name} (n={e.n}): {e.score} ranks worse than #params "
                           f"(Kendall tau {e.kendall_tau:+.2f} vs {base.kendall_tau:+.2f}).")
        if 0 < sets[name] < 10:
            out.append(f"{name}: only {sets[name]} architectures; at this size a Kendall tau needs p < 0.05 "
                       "(column kendall_p) before it means anything.")
    return out


def calibration_report(db: Database, options: ScoringOptions | None = None, compute: bool = True,
                       progress: bool = False) -> CalibrationReport:
    """Every score against every result set (see module doc). ``compute``: compute missing
    zero-cost proxies (cached afterwards); micro-tasks are never trained here, only read."""
    options = options or ScoringOptions()
    grouped = defaultdict(list)
    for result in known_results(db):
        grouped[result.result_set].append(result)
    try:
        surrogate = load_surrogate(db)
        _, _, train_ids = mean_by_architecture(surrogate_training_results(db))
        loo = surrogate.loo_distribution()
        surrogate_loo = {i: {k: float(v[n]) for k, v in loo.items()} for n, i in enumerate(train_ids)}
    except NotEnoughResultsError:
        surrogate, surrogate_loo = None, {}
    sets, evidence, seconds = {}, [], defaultdict(list)
    for name, results in grouped.items():
        configs, top1, ids = mean_by_architecture(results)
        sets[name] = len(ids)
        sizes = np.array([params(c) for c in configs])
        macs = np.array([float(c.op_table().macs) for c in configs])
        for spec in SCORES.values():
            if name.startswith(MICRO_TASK) and spec.kind == "micro-task":
                continue  # the micro-task against its own results
            values, cost = _score_set(db, spec, configs, ids, surrogate_loo, options, compute, progress)
            seconds[spec.name] += cost
            evidence.append(_correlations(spec, name, values, np.array(top1), sizes, macs, cost))
    summary, downward = None, None
    if surrogate is not None:
        smallest = surrogate.leave_smallest_out()
        held = [r for row in smallest.values() for r in row["results"]]
        downward = float(np.mean([r["interval_90"][0] <= r["top1"] <= r["interval_90"][1] for r in held]))
        summary = {"label": SCORES["surrogate"].label, "variant": surrogate.variant,
                   "features": list(surrogate.features), "loo": surrogate.loo_metrics(),
                   "variants_loo": surrogate.selection_,
                   "leave_one_family_out": surrogate.leave_one_family_out(),
                   "leave_smallest_out": {str(k): v for k, v in smallest.items()},
                   "leave_smallest_out_coverage": downward,
                   "loo_predictions": [{"arch_id": i, "name": name, "top1": float(t), "surrogate_loo": v["mean"],
                                        "mean": v["mean"], "interval_90": [v["low"], v["high"]]}
                                       for (i, v), name, t in zip(surrogate_loo.items(), surrogate.labels_,
                                                                  surrogate.targets_)]}
    costs = {name: (statistics.median(values) if values else None) for name, values in seconds.items()}
    default, reason = _choose_default(sets, evidence, downward)
    return CalibrationReport(sets, evidence, summary, costs, default, reason, _findings(sets, evidence))


def default_objective(db: Database | None, options: ScoringOptions | None = None) -> str:
    """The search's default accuracy objective by the rule of the module doc (reads cached
    proxies only, so it is fast); ``params`` without a database."""
    if db is None:
        return FALLBACK_OBJECTIVE
    return calibration_report(db, options, compute=False).default


def score_architecture(db: Database | None, config: ArchConfig, objectives: Sequence[str] | None = None,
                       options: ScoringOptions | None = None, name: str | None = None) -> dict:
    """Scores of one architecture as a JSON-ready dict: ``arch_id``, one key per score (None
    where unavailable, e.g. a micro-task that is not cached and not requested), ``default``
    (name and value of the default objective) and ``details`` (label, cost, cache state and,
    for the surrogate, its uncertainty and extrapolation flags)."""
    options = options or ScoringOptions()
    default = default_objective(db)
    wanted = list(dict.fromkeys(objectives or SCORES))
    if default not in wanted:
        wanted.append(default)
    out: dict = {"arch_id": arch_id(config), "name": name, "resolution": config.resolution}
    details: dict[str, dict] = {}
    for objective in wanted:
        spec = score_spec(objective)
        entry = {"label": spec.label, "version": spec.version}
        try:
            value = score_values(db, [config], objective, options)[0]
            out[objective] = value.value
            entry.update(seconds=value.seconds, cached=value.cached, scoring_resolution=value.resolution)
        except NotCachedError:
            out[objective] = None
            entry["unavailable"] = "not cached; request it explicitly (it trains a network)"
        except (UserError, SizeRankError, MicroTaskError, ProxyError) as err:
            out[objective] = None
            entry["unavailable"] = str(err)
        if spec.kind == SURROGATE and out[objective] is not None:
            entry.update(surrogate_details(load_surrogate(db), config))
        details[objective] = entry
    out["default"] = {"name": default, "value": out[default], "label": SCORES[default].label}
    out["details"] = details
    return out
