"""The measuring protocol on synthetic, seeded sample arrays and fake timers (no models), on a
host the guard reads as quiet (whatever else runs beside the tests)."""

from __future__ import annotations

import ast
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from explorer.measure import protocol
from explorer.measure.protocol import (
    DRIFT,
    HIGH_SPREAD,
    REMEASURED,
    TIME_LIMIT,
    ProtocolSettings,
    measure,
    median_ci,
    median_ci_ranks,
    quality_flags,
    summarize,
    trend,
)

pytestmark = pytest.mark.usefixtures("quiet_host")


def lognormal(n: int, seed: int = 0, median: float = 10.0, sigma: float = 0.1) -> np.ndarray:
    return median * np.exp(np.random.default_rng(seed).normal(0.0, sigma, n))


def test_protocol_needs_only_numpy_and_the_standard_library():
    """The bundle's runner embeds this file on devices that only have numpy and onnxruntime."""
    tree = ast.parse(Path(protocol.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "math", "os", "platform", "time", "collections", "dataclasses",
                        "importlib", "numpy"}


@pytest.mark.parametrize("n, ranks", [(10, (1, 8)), (20, (5, 14)), (100, (39, 60))])
def test_median_ci_ranks_match_the_binomial_tables(n, ranks):
    assert median_ci_ranks(n, 0.95) == ranks


def test_median_ci_of_too_few_samples_is_the_whole_range():
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(2000):
        low, high = median_ci(rng.exponential(1.0, 40))
        hits += low <= np.log(2) <= high
    assert 0.93 <= hits / 2000 <= 0.99


def test_ci_shrinks_with_more_samples():
    widths = [summarize(lognormal(n)).rel_ci_half_width for n in (20, 80, 320, 1280)]
    assert all(a > b for a, b in itertools.pairwise(widths))


def test_summarize_statistics():
    samples = lognormal(500, seed=3)
    stats = summarize(samples)
    assert stats.n == 500
    assert stats.median == pytest.approx(np.median(samples))
    assert stats.mean == pytest.approx(samples.mean())
    assert stats.std == pytest.approx(samples.std(ddof=1))
    assert stats.p5 == pytest.approx(np.percentile(samples, 5))
    assert stats.p95 == pytest.approx(np.percentile(samples, 95))
    assert stats.cv == pytest.approx(stats.std / stats.mean)
    assert stats.ci_low < stats.median < stats.ci_high
    with pytest.raises(ValueError):
        summarize([])


def test_trend_detects_a_slowing_series_and_ignores_noise():
    noise = lognormal(8, seed=4, sigma=0.03)
    slowing = noise * np.linspace(1.0, 1.3, 8)
    assert abs(trend(noise)) < 0.05
    assert trend(slowing) == pytest.approx(0.3, abs=0.06)
    assert trend([1.0, 2.0]) == 0.0


def test_quality_flags():
    settings = ProtocolSettings()
    calm = summarize(lognormal(200, sigma=0.02))
    flat = [10.0, 10.1, 9.9, 10.0]
    assert quality_flags(calm, flat, flat, settings) == ()
    assert quality_flags(summarize(lognormal(200, sigma=0.5)), flat, flat, settings) == (HIGH_SPREAD,)
    assert quality_flags(calm, [10.0, 11.0, 12.0, 13.0], flat, settings) == (DRIFT,)
    assert quality_flags(calm, flat, [5.0, 5.0, 7.0, 5.0], settings) == (DRIFT,)


class FakeClock:
    """A clock that advances by the milliseconds each fake timer reports."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def timer(self, values):
        iterator = iter(values)

        def run() -> float:
            value = float(next(iterator))
            self.now += value / 1e3
            return value
        return run


def test_precise_measurement_stops_at_min_samples():
    clock = FakeClock()
    settings = ProtocolSettings(warmup=2, block_size=10, min_samples=20, max_samples=200)
    result = measure(clock.timer(lognormal(10_000, sigma=0.01)), settings, clock=clock)
    assert result.stats.n == 20 and len(result.samples) == 20 and len(result.block_medians) == 2
    assert result.warmup == 2 and result.flags == ()
    assert result.stats.rel_ci_half_width <= settings.target_rel_ci
    assert result.relative_to_reference is None


def test_noisy_measurement_runs_until_precise_or_max_samples():
    clock = FakeClock()
    settings = ProtocolSettings(max_samples=200, time_limit_s=1e6, remeasure=False)
    result = measure(clock.timer(lognormal(10_000, sigma=0.12)), settings, clock=clock)
    assert 20 < result.stats.n <= 200
    assert result.stats.n == 200 or result.stats.rel_ci_half_width <= 0.02


def test_time_limit_stops_and_is_flagged():
    clock = FakeClock()
    settings = ProtocolSettings(time_limit_s=0.5, max_samples=10_000, remeasure=False)
    result = measure(clock.timer(lognormal(10_000, median=100.0, sigma=0.3)), settings, clock=clock)
    assert result.stats.n == 20  # 0.5 s of 100 ms runs, but never fewer than min_samples
    assert TIME_LIMIT in result.flags


def test_reference_is_interleaved_and_latency_stored_relative_to_it():
    clock = FakeClock()
    calls = []
    target = clock.timer(lognormal(10_000, median=20.0, sigma=0.01))
    reference = clock.timer(lognormal(10_000, seed=9, median=10.0, sigma=0.01))
    settings = ProtocolSettings(warmup=0, block_size=10, reference_block_size=5)
    result = measure(lambda: calls.append("A") or target(), settings, lambda: calls.append("B") or reference(),
                     clock=clock)
    # every block starts with 3 untimed runs after the switch from the other model
    assert "".join(calls) == ("A" * (3 + 10) + "B" * (3 + 5)) * 2
    assert len(result.reference_samples) == 10 and len(result.reference_block_medians) == 2
    assert result.relative_to_reference == pytest.approx(2.0, rel=0.02)


def test_drift_is_flagged_and_measured_again_once():
    clock = FakeClock()
    settings = ProtocolSettings(warmup=5, min_samples=40, target_rel_ci=0.5)
    slowing = lognormal(45, sigma=0.005) * np.linspace(1.0, 1.5, 45)  # warm-ups + 40 timed runs
    calm = lognormal(10_000, seed=5, sigma=0.005)
    result = measure(clock.timer(np.concatenate([slowing, calm])), settings, clock=clock)
    assert REMEASURED in result.flags and DRIFT not in result.flags
    once = measure(clock.timer(slowing), replace(settings, remeasure=False), clock=clock)
    assert DRIFT in once.flags


@pytest.mark.parametrize("knobs", [dict(min_samples=0), dict(max_samples=5, min_samples=10),
                                   dict(target_rel_ci=0.0), dict(time_limit_s=0), dict(warmup=-1)])
def test_bad_settings_name_the_setting(knobs):
    with pytest.raises(ValueError, match=next(iter(knobs)).split("_")[0]):
        ProtocolSettings(**knobs)


def test_load_and_host_fingerprint_are_plain_json():
    import json

    snapshot = protocol.load_snapshot()
    host = protocol.host_fingerprint()
    json.dumps([snapshot, host])
    assert host["cores"] and host["versions"]["numpy"] == np.__version__
    assert snapshot["loadavg"] is None or len(snapshot["loadavg"]) == 3


def test_a_flagged_attempt_that_ran_out_of_time_is_not_repeated():
    clock = FakeClock()
    settings = ProtocolSettings(time_limit_s=0.5, max_samples=10_000)
    result = measure(clock.timer(lognormal(10_000, median=100.0, sigma=0.5)), settings, clock=clock)
    assert HIGH_SPREAD in result.flags and TIME_LIMIT in result.flags and REMEASURED not in result.flags
    assert result.stats.n == 20
