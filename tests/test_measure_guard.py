"""The quiet-machine guard and the warm-up after every model switch."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from explorer.measure.protocol import (
    BUSY,
    ProtocolSettings,
    cpu_counters,
    is_busy,
    measure,
    measure_once,
    other_load,
    wait_for_quiet,
)

FAST = ProtocolSettings(warmup=2, block_size=4, reference_block_size=2, min_samples=8, max_samples=8,
                        time_limit_s=5.0, remeasure=False, switch_warmup=3, quiet_window_s=0.3, quiet_wait_s=3.0)


def counting_timer(log: list[str], name: str, ms: float = 1.0):
    def timer() -> float:
        log.append(name)
        return ms
    return timer


def test_every_switch_between_models_is_followed_by_untimed_runs():
    log: list[str] = []
    result = measure_once(counting_timer(log, "a"), FAST, counting_timer(log, "b"))
    assert len(result.samples) == 8 and len(result.reference_samples) == 4
    # warm-ups (2 + 2), then per block: 3 untimed + 4 timed target, 3 untimed + 2 timed reference
    assert log == ["a"] * 2 + ["b"] * 2 + (["a"] * 7 + ["b"] * 5) * 2


def test_without_a_reference_there_is_no_switch():
    log: list[str] = []
    measure_once(counting_timer(log, "a"), FAST)
    assert log == ["a"] * (2 + 8)


@pytest.fixture
def burner():
    """A process that keeps one core busy until the test ends."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    yield process
    process.kill()
    process.wait()


def test_guard_engages_on_a_cpu_burner_and_releases_when_it_stops(burner):
    seen: list[dict] = []
    waited = wait_for_quiet(FAST, on_wait=seen.append)
    assert not waited.quiet and waited.waited_s >= FAST.quiet_wait_s
    assert seen and all(load["other_cores"] > 0.5 for load in seen)
    burner.kill()
    burner.wait()
    released = wait_for_quiet(FAST)
    assert released.quiet and released.load["other_cores"] <= FAST.busy_cores


def test_a_measurement_taken_anyway_on_a_busy_machine_carries_the_flag_and_the_load(burner):
    result = measure(counting_timer([], "a"), FAST)
    assert BUSY in result.flags
    assert result.load_before["quiet_wait"]["quiet"] is False
    assert result.load_before["quiet_wait"]["load"]["other_cores"] > 0.5


def test_allow_busy_measures_at_once_and_still_flags(burner):
    started = time.monotonic()
    result = measure(counting_timer([], "a"), ProtocolSettings(**{**FAST.to_dict(), "allow_busy": True}))
    assert time.monotonic() - started < FAST.quiet_wait_s
    assert BUSY in result.flags


def test_a_quiet_machine_is_not_flagged():
    result = measure(counting_timer([], "a"), FAST)
    assert BUSY not in result.flags and result.load_before["quiet_wait"]["quiet"]


def test_other_load_counts_other_processes_not_this_one():
    start = cpu_counters()
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        pass  # this process burns a core: it is not "other" load
    load = other_load(start, cpu_counters())
    assert load["other_cores"] < 0.3 and load["seconds"] >= 0.4


def test_guard_settings_are_validated():
    with pytest.raises(ValueError, match="switch_warmup"):
        ProtocolSettings(switch_warmup=-1)
    with pytest.raises(ValueError, match="quiet_wait_s"):
        ProtocolSettings(quiet_wait_s=-5)
    with pytest.raises(ValueError, match="quiet_window_s"):
        ProtocolSettings(quiet_window_s=0.05)  # too short to read a load from 10 ms ticks


def test_a_millisecond_window_is_not_judged():
    """One stray 10 ms tick of another process in a 1 ms window would read as 10 cores."""
    settings = ProtocolSettings()
    assert not is_busy({"other_cores": 10.0, "steal_cores": 0.0, "seconds": 0.001}, settings)
    assert is_busy({"other_cores": 1.0, "steal_cores": 0.0, "seconds": 0.5}, settings)
