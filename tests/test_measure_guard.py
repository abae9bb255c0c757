"""The quiet-machine guard and the warm-up after every model switch.

The guard's logic is tested on fed load readings (the ``fed_load`` fixture): the machine that runs the
tests is shared, and its load at that moment says nothing about the code. One test burns a real
core, to check the readings of ``/proc/stat`` themselves; it runs in the suite's serial part.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from explorer.measure.protocol import (
    BUSY,
    CpuCounters,
    ProtocolSettings,
    cpu_counters,
    is_busy,
    measure,
    measure_once,
    other_load,
    wait_for_quiet,
)

FAST = ProtocolSettings(warmup=2, block_size=4, reference_block_size=2, min_samples=8, max_samples=8,
                        time_limit_s=5.0, remeasure=False, switch_warmup=3, quiet_window_s=0.3, quiet_wait_s=1.0)


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
def busy(fed_load):
    fed_load(1.0)


@pytest.mark.serial
def test_guard_engages_on_a_cpu_burner_and_releases_when_it_stops():
    """On the real ``/proc/stat``: needs a quiet host (the suite runs it serially)."""
    before = wait_for_quiet(ProtocolSettings(**{**FAST.to_dict(), "quiet_wait_s": 10.0}))
    if not before.quiet:
        pytest.skip(f"the host was busy before the test started (other processes used "
                    f"{before.load['other_cores']} cores for {before.waited_s} s): a burner cannot be told apart")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        seen: list[dict] = []
        waited = wait_for_quiet(FAST, on_wait=seen.append)
        assert not waited.quiet and waited.waited_s >= FAST.quiet_wait_s
        assert seen and all(load["other_cores"] > 0.5 for load in seen)
    finally:
        burner.kill()
        burner.wait()
    released = wait_for_quiet(ProtocolSettings(**{**FAST.to_dict(), "quiet_wait_s": 10.0}))
    assert released.quiet, f"the guard did not release after the burner stopped, or the host became busy: {released}"
    assert released.load["other_cores"] <= FAST.busy_cores


def test_a_measurement_taken_anyway_on_a_busy_machine_carries_the_flag_and_the_load(busy):
    result = measure(counting_timer([], "a"), FAST)
    assert BUSY in result.flags
    assert result.load_before["quiet_wait"]["quiet"] is False
    assert result.load_before["quiet_wait"]["load"]["other_cores"] > 0.5


def test_allow_busy_measures_at_once_and_still_flags(busy):
    started = time.monotonic()
    result = measure(counting_timer([], "a"), ProtocolSettings(**{**FAST.to_dict(), "allow_busy": True}))
    assert time.monotonic() - started < FAST.quiet_wait_s
    assert BUSY in result.flags


def test_a_quiet_machine_is_not_flagged(fed_load):
    fed_load(0.1)
    result = measure(counting_timer([], "a"), FAST)
    assert BUSY not in result.flags and result.load_before["quiet_wait"]["quiet"]
    assert result.load_during["other_cores"] == pytest.approx(0.1, abs=0.01)


def test_other_load_counts_other_processes_not_this_one():
    start = CpuCounters(wall=100.0, machine_busy=50.0, machine_steal=2.0, own=10.0)
    # in 2 s the machine was busy 3 core-seconds, 2 of them this process's: 0.5 cores of others
    end = CpuCounters(wall=102.0, machine_busy=53.0, machine_steal=2.2, own=12.0)
    assert other_load(start, end) == {"other_cores": 0.5, "steal_cores": 0.1, "seconds": 2.0}
    assert other_load(None, end)["other_cores"] is None and other_load(end, start)["other_cores"] is None


def test_the_real_counters_count_this_process_in_the_machine():
    """What makes the subtraction right on any host: this process's burnt CPU time is read, and
    the machine's busy time (``/proc/stat``, in 10 ms ticks) includes it."""
    start = cpu_counters()
    if start is None:
        pytest.skip("no /proc/stat on this system")
    burnt, deadline = time.process_time() + 0.3, time.monotonic() + 60
    while time.process_time() < burnt and time.monotonic() < deadline:
        pass  # 0.3 s of CPU, however long a busy host takes to give them
    end = cpu_counters()
    own = end.own - start.own
    assert own >= 0.25 and end.machine_busy - start.machine_busy >= own - 0.05


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
