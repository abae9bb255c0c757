"""Accuracy scores: exact size baselines, deterministic zero-cost proxies, caching and versions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sqlalchemy import func, select

from explorer.architectures import resolve
from explorer.db import ProxyScore, open_database
from predictors.proxies import (
    SCORES,
    NotCachedError,
    ProxyError,
    ScoringOptions,
    UnknownObjectiveError,
    available_objectives,
    default_scoring_resolution,
    grad_norm,
    macs,
    naswot,
    params,
    score_configs,
    score_values,
    size_rank,
    synflow,
    zen,
)
from predictors.proxies.scoring import torch_threads
from predictors.proxies.size import SizeRankError

SMALL = ScoringOptions(resolution=32)


@pytest.fixture(autouse=True)
def one_thread():
    """As the scoring layer does: OpenMP threads on a busy CI machine slow these passes down."""
    with torch_threads(1):
        yield


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "scores.db")


@pytest.fixture(scope="module")
def b0():
    return resolve("lowformer-b0")


def test_size_baselines_are_the_published_counts():
    b1 = resolve("lowformer-b1")
    assert params(b1) == 17_936_312
    assert macs(b1) == pytest.approx(1410.98e6, abs=0.01e6)
    assert macs(b1.with_resolution(256)) > macs(b1)


def test_size_rank_orders_by_size_and_is_bounded():
    small, large = resolve("lowformer-b0"), resolve("lowformer-b3")
    assert 0 <= size_rank(small) < size_rank(large) <= 2
    assert size_rank(small) == size_rank(resolve("lowformer-b0"))


def test_size_rank_places_every_family_in_one_population():
    scores = {name: size_rank(resolve(name)) for name in ("efficientvit-b0", "mcga-paper", "fmvit-t", "fmvit-l")}
    assert all(0 <= v <= 2 for v in scores.values())
    assert scores["fmvit-t"] < scores["fmvit-l"]
    assert scores["efficientvit-b0"] < size_rank(resolve("lowformer-b3"))


def test_size_rank_reference_population_is_cached_on_disk_under_the_spaces_sources(tmp_path, monkeypatch):
    import explorer.architectures
    from predictors.proxies import size

    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path))
    cached = tmp_path / "cache" / "size-rank"
    size._reference_counts.cache_clear()
    computed = size._reference_counts(96)
    [stored] = cached.glob("*.json")
    spaces = explorer.architectures.FLAT_SPACES
    with monkeypatch.context() as patch:  # no sampler at hand: what comes back is read from the file
        patch.setattr(explorer.architectures, "FLAT_SPACES", {})
        size._reference_counts.cache_clear()
        assert all(np.array_equal(a, b) for a, b in zip(computed, size._reference_counts(96)))
    assert explorer.architectures.FLAT_SPACES is spaces
    stored.write_text("{not json")  # a damaged file is computed again and replaced
    size._reference_counts.cache_clear()
    assert all(np.array_equal(a, b) for a, b in zip(computed, size._reference_counts(96)))
    monkeypatch.setattr("predictors.disk_cache.source_digest", lambda directory: "changed sources")
    size._reference_counts.cache_clear()
    size._reference_counts(96)
    assert len(list(cached.glob("*.json"))) == 2  # changed spaces' code: another key, computed anew
    size._reference_counts.cache_clear()


def test_size_rank_names_the_alternatives_outside_the_design_spaces():
    toy = resolve("toy-conv-1")
    with pytest.raises(SizeRankError, match="'params' or 'macs'"):
        size_rank(toy)


@pytest.mark.parametrize("proxy", [synflow, grad_norm, naswot, zen])
def test_zero_cost_proxies_are_deterministic_and_seeded(proxy, b0):
    first = proxy(b0, 32, seed=0)
    assert np.isfinite(first)
    assert proxy(b0, 32, seed=0) == first
    assert proxy(b0, 32, seed=1) != first


def test_default_scoring_resolution_scales_and_keeps_the_minimum():
    b1 = resolve("lowformer-b1")
    assert default_scoring_resolution(b1) == 64
    assert default_scoring_resolution(b1.with_resolution(256)) == 72
    assert default_scoring_resolution(b1.with_resolution(64)) == 32
    assert default_scoring_resolution(resolve("attention-stack-mhsa", 8)) == 8  # never above its own


def test_naswot_says_why_it_is_undefined_without_activations():
    with pytest.raises(ProxyError, match="needs activation units"):
        naswot(resolve("attention-stack-mhsa", 8), 8)


def test_second_call_reads_the_cache(db, b0):
    first = score_values(db, [b0], "naswot", SMALL)[0]
    second = score_values(db, [b0], "naswot", SMALL)[0]
    assert (first.cached, second.cached) == (False, True)
    assert second.value == first.value and second.resolution == 32
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProxyScore)) == 1


def test_duplicates_in_one_call_are_computed_once(db, b0):
    values = score_configs(db, [b0, b0], "zen", SMALL)
    assert values[0] == values[1]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProxyScore)) == 1


def test_a_version_bump_recomputes(db, b0, monkeypatch):
    score_values(db, [b0], "grad-norm", SMALL)
    monkeypatch.setitem(SCORES, "grad-norm", dataclasses.replace(SCORES["grad-norm"], version="99"))
    again = score_values(db, [b0], "grad-norm", SMALL)[0]
    assert not again.cached
    with db.session() as session:
        versions = set(session.scalars(select(ProxyScore.version)))
    assert len(versions) == 2 and any(v.startswith("99-") for v in versions)


def test_seed_and_resolution_are_part_of_the_cache_key(db, b0):
    score_values(db, [b0], "naswot", SMALL)
    assert not score_values(db, [b0], "naswot", dataclasses.replace(SMALL, seed=1))[0].cached
    assert not score_values(db, [b0], "naswot", dataclasses.replace(SMALL, resolution=40))[0].cached


def test_cheap_scores_need_no_database(b0):
    assert score_configs(None, [b0], "params")[0] == 14_100_472


def test_micro_task_is_used_only_when_cached_or_requested(db, b0):
    with pytest.raises(NotCachedError, match="microtask"):
        score_configs(db, [b0], "microtask")


def test_unknown_objective_lists_the_allowed_ones(b0):
    with pytest.raises(UnknownObjectiveError, match="allowed: default, params"):
        score_configs(None, [b0], "accuracy")
    assert set(available_objectives()) >= {"params", "macs", "size-rank", "synflow", "grad-norm", "naswot",
                                            "zen", "microtask", "surrogate"}


def test_no_proxy_is_labelled_an_accuracy():
    for spec in SCORES.values():
        assert "accuracy" not in spec.label.lower()
        if spec.name.startswith("surrogate"):
            assert spec.label.startswith("surrogate top-1 (predicted")
    assert "pessimistic" in SCORES["surrogate-pessimistic"].label
    assert "optimistic" in SCORES["surrogate-optimistic"].label
