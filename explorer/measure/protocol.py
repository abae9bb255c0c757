"""The measuring protocol: pure Python + numpy, so that a device without the tool (a Raspberry Pi
with only numpy and onnxruntime) runs exactly this code (the bundle's runner embeds this file).

One measurement (see docs/measuring-on-noisy-machines.md):
- a **quiet-machine guard** first: other processes' CPU time is read from ``/proc/stat``; while
  they use more than ``busy_cores`` cores the measurement waits (up to ``quiet_wait_s``), and
  load during the timing itself means one more try after a quiet spell; what is measured anyway
  carries the ``busy`` flag with the load figures (``allow_busy`` measures at once, flagged);
- the caller makes the inputs beforehand; ``warmup`` untimed runs first;
- timed runs in blocks, each target block followed by a block of a fixed reference model
  (A B A B ...) for drift detection and, where a device's repeats show it helps, normalisation;
  after every switch between the two models ``switch_warmup`` untimed runs come first, since the
  first runs after a switch are 1.7-2.2x slower (cold caches and thread pools);
- adaptive stopping: after ``min_samples``, stop as soon as the 95 % confidence interval of the
  median is within +-``target_rel_ci`` of the median, or at ``max_samples`` or ``time_limit_s``;
- flags: ``high-spread`` (coefficient of variation above ``cv_threshold``) and ``drift`` (the
  target's block medians trend, or the reference's block medians move, by more than
  ``drift_threshold``); a flagged measurement is repeated once, unless it ran out of time, and
  the better of the two kept (flag ``remeasured``); ``time-limit`` marks a result whose CI is
  wider than the target because the time ran out.

A timer is a function of no arguments that runs the model once and returns milliseconds; CPU
backends wrap a call with ``time.perf_counter`` (:func:`perf_timer`), CUDA uses CUDA events.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata

import numpy as np

Timer = Callable[[], float]

HIGH_SPREAD = "high-spread"
DRIFT = "drift"
REMEASURED = "remeasured"
TIME_LIMIT = "time-limit"
BUSY = "busy"
#: Load windows shorter than this are not judged: CPU time is counted in 10 ms ticks, so one stray
#: tick in a millisecond-long window would read as many cores.
MIN_LOAD_WINDOW_S = 0.2


@dataclass(frozen=True)
class ProtocolSettings:
    """How long and how precisely to measure one architecture.

    The defaults measure a typical LowFormer at batch 1 in a few seconds on a laptop CPU.
    """

    warmup: int = 5
    block_size: int = 10
    reference_block_size: int = 5
    min_samples: int = 20
    max_samples: int = 200
    target_rel_ci: float = 0.02
    time_limit_s: float = 3.0
    confidence: float = 0.95
    cv_threshold: float = 0.15
    drift_threshold: float = 0.10
    remeasure: bool = True
    switch_warmup: int = 3
    busy_cores: float = 0.3
    quiet_wait_s: float = 600.0
    quiet_window_s: float = 0.5
    allow_busy: bool = False

    def __post_init__(self) -> None:
        for name in ("block_size", "reference_block_size", "min_samples", "max_samples"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup", "switch_warmup"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        for name in ("busy_cores", "quiet_wait_s", "quiet_window_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if 0 < self.quiet_window_s < MIN_LOAD_WINDOW_S:
            raise ValueError(f"quiet_window_s must be 0 (no wait) or >= {MIN_LOAD_WINDOW_S}, got {self.quiet_window_s!r}")
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be >= min_samples ({self.min_samples})")
        if not 0 < self.target_rel_ci < 1:
            raise ValueError(f"target_rel_ci must be in (0, 1), got {self.target_rel_ci!r}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence!r}")
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0, got {self.time_limit_s!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Stats:
    """Summary of a sample array (milliseconds)."""

    n: int
    median: float
    mean: float
    std: float
    p5: float
    p95: float
    cv: float
    ci_low: float
    ci_high: float

    @property
    def rel_ci_half_width(self) -> float:
        """Half the CI width relative to the median (0.02 means +-2 %)."""
        return (self.ci_high - self.ci_low) / 2 / self.median if self.median > 0 else math.inf

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProtocolResult:
    """Everything one measurement produced: raw samples per block, statistics, flags, load."""

    samples: tuple[float, ...]
    block_medians: tuple[float, ...]
    stats: Stats
    reference_samples: tuple[float, ...] = ()
    reference_block_medians: tuple[float, ...] = ()
    reference_stats: Stats | None = None
    flags: tuple[str, ...] = ()
    warmup: int = 0
    load_before: dict = field(default_factory=dict)
    load_after: dict = field(default_factory=dict)
    load_during: dict = field(default_factory=dict)

    @property
    def relative_to_reference(self) -> float | None:
        if self.reference_stats is None or self.reference_stats.median <= 0:
            return None
        return self.stats.median / self.reference_stats.median

    def to_dict(self) -> dict:
        out = asdict(self)
        out["relative_to_reference"] = self.relative_to_reference
        return out


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the sorted sample bracketing the median with at least
    ``confidence`` coverage, distribution-free: with B ~ Binomial(n, 1/2),
    P(x[lo] <= median <= x[hi]) = 1 - 2 P(B <= lo). Symmetric and as narrow as that allows;
    the whole range when n is too small for the coverage."""
    if n < 1:
        raise ValueError("need at least one sample")
    tail = (1.0 - confidence) / 2
    log_half_n = n * math.log(0.5)
    cdf, lo = 0.0, -1
    for i in range(n // 2 + 1):
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
        if cdf > tail:
            break
        lo = i
    if lo < 0:
        return 0, n - 1
    return lo, n - 1 - lo


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median (order statistics)."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    lo, hi = median_ci_ranks(len(ordered), confidence)
    return float(ordered[lo]), float(ordered[hi])


def summarize(samples: Sequence[float], confidence: float = 0.95) -> Stats:
    """Median, mean, std, p5, p95, coefficient of variation and CI of the median."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples to summarize")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    low, high = median_ci(values, confidence)
    return Stats(n=int(values.size), median=float(np.median(values)), mean=mean, std=std,
                 p5=float(np.percentile(values, 5)), p95=float(np.percentile(values, 95)),
                 cv=std / mean if mean > 0 else 0.0, ci_low=low, ci_high=high)


def trend(block_medians: Sequence[float]) -> float:
    """Relative change over the run of a least-squares line through the block medians
    (+0.1: the last block is fitted 10 % slower than the first); 0 with fewer than 3 blocks."""
    y = np.asarray(block_medians, dtype=np.float64)
    if y.size < 3 or np.median(y) <= 0:
        return 0.0
    x = np.arange(y.size, dtype=np.float64)
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * (y.size - 1) / np.median(y))


def movement(block_medians: Sequence[float]) -> float:
    """(max - min) / median of the block medians: how far the reference moved."""
    y = np.asarray(block_medians, dtype=np.float64)
    if y.size < 2 or np.median(y) <= 0:
        return 0.0
    return float((y.max() - y.min()) / np.median(y))


def quality_flags(stats: Stats, block_medians: Sequence[float], reference_block_medians: Sequence[float],
                  settings: ProtocolSettings) -> tuple[str, ...]:
    flags = []
    if stats.cv > settings.cv_threshold:
        flags.append(HIGH_SPREAD)
    if (abs(trend(block_medians)) > settings.drift_threshold
            or movement(reference_block_medians) > 2 * settings.drift_threshold):
        flags.append(DRIFT)
    return tuple(flags)


def precise_enough(samples: Sequence[float], settings: ProtocolSettings) -> bool:
    return (len(samples) >= settings.min_samples
            and summarize(samples, settings.confidence).rel_ci_half_width <= settings.target_rel_ci)


def _block(timer: Timer, size: int) -> list[float]:
    return [timer() for _ in range(size)]


def _untimed(timer: Timer, runs: int) -> None:
    for _ in range(runs):
        timer()


def measure_once(target: Timer, settings: ProtocolSettings, reference: Timer | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> ProtocolResult:
    """One adaptive measurement of ``target`` (interleaved with ``reference`` if given)."""
    load_before = load_snapshot()
    cpu_start = cpu_counters()
    for _ in range(settings.warmup):
        target()
    if reference is not None:
        for _ in range(settings.warmup):
            reference()
    samples: list[float] = []
    blocks: list[float] = []
    ref_samples: list[float] = []
    ref_blocks: list[float] = []
    deadline = clock() + settings.time_limit_s
    timed_out = False
    while True:
        size = min(settings.block_size, settings.max_samples - len(samples))
        if reference is not None:
            _untimed(target, settings.switch_warmup)
        block = _block(target, size)
        samples.extend(block)
        blocks.append(float(np.median(block)))
        if reference is not None:
            _untimed(reference, settings.switch_warmup)
            ref_block = _block(reference, settings.reference_block_size)
            ref_samples.extend(ref_block)
            ref_blocks.append(float(np.median(ref_block)))
        if len(samples) >= settings.max_samples or precise_enough(samples, settings):
            break
        if clock() >= deadline and len(samples) >= settings.min_samples:
            timed_out = True
            break
    load_during = other_load(cpu_start, cpu_counters())
    stats = summarize(samples, settings.confidence)
    flags = quality_flags(stats, blocks, ref_blocks, settings)
    if timed_out and stats.rel_ci_half_width > settings.target_rel_ci:
        flags += (TIME_LIMIT,)
    if is_busy(load_during, settings):
        flags += (BUSY,)
    return ProtocolResult(
        samples=tuple(samples), block_medians=tuple(blocks), stats=stats,
        reference_samples=tuple(ref_samples), reference_block_medians=tuple(ref_blocks),
        reference_stats=summarize(ref_samples, settings.confidence) if ref_samples else None,
        flags=flags, warmup=settings.warmup, load_before=load_before, load_after=load_snapshot(),
        load_during=load_during)


def measure(target: Timer, settings: ProtocolSettings = ProtocolSettings(), reference: Timer | None = None,
            *, clock: Callable[[], float] = time.monotonic,
            on_wait: Callable[[dict], None] | None = None) -> ProtocolResult:
    """Wait for a quiet machine (:func:`wait_for_quiet`), then :func:`measure_once`. A first
    attempt that other processes disturbed is repeated after the next quiet spell; one flagged
    for spread or drift is repeated once; the attempt with fewer flags (then the narrower CI) is
    kept and marked ``remeasured``. An attempt that ran out of time is not repeated for spread:
    the machine is too slow for a second one to do better within the budget."""
    waited = wait_for_quiet(settings, on_wait=on_wait)
    first = measure_once(target, settings, reference, clock=clock)
    if BUSY in first.flags and not settings.allow_busy and wait_for_quiet(settings, on_wait=on_wait).quiet:
        second = measure_once(target, settings, reference, clock=clock)
        first = second if BUSY not in second.flags else first
        first = replace(first, flags=first.flags + (REMEASURED,))
    elif (settings.remeasure and TIME_LIMIT not in first.flags and BUSY not in first.flags
          and {HIGH_SPREAD, DRIFT} & set(first.flags)):
        second = measure_once(target, settings, reference, clock=clock)
        best = min((first, second), key=lambda r: (len(r.flags), r.stats.rel_ci_half_width))
        first = replace(best, flags=best.flags + (REMEASURED,))
    if not waited.quiet and BUSY not in first.flags:
        first = replace(first, flags=first.flags + (BUSY,))
    return replace(first, load_before={**first.load_before, "quiet_wait": waited.to_dict()})


@dataclass(frozen=True)
class CpuCounters:
    """Cumulative CPU seconds of the whole machine (busy and stolen) and of this process."""

    wall: float
    machine_busy: float
    machine_steal: float
    own: float


def cpu_counters() -> CpuCounters | None:
    """A snapshot of ``/proc/stat`` and this process's CPU time; None where there is no
    ``/proc/stat`` (not Linux): the guard then relies on nothing and says so."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    ticks = [int(v) for v in fields[1:]]
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    steal = ticks[7] if len(ticks) > 7 else 0
    times = os.times()
    return CpuCounters(time.monotonic(), (user + nice + system + irq + softirq) / hz, steal / hz,
                       times.user + times.system)


def other_load(start: CpuCounters | None, end: CpuCounters | None) -> dict:
    """Cores used by other processes (and stolen by the hypervisor) between two snapshots."""
    if start is None or end is None or end.wall <= start.wall:
        return {"other_cores": None, "steal_cores": None, "seconds": None}
    wall = end.wall - start.wall
    others = (end.machine_busy - start.machine_busy) - (end.own - start.own)
    return {"other_cores": round(max(others, 0.0) / wall, 3),
            "steal_cores": round((end.machine_steal - start.machine_steal) / wall, 3),
            "seconds": round(wall, 3)}


def is_busy(load: dict, settings: ProtocolSettings) -> bool:
    return (load.get("other_cores") is not None and (load.get("seconds") or 0.0) >= MIN_LOAD_WINDOW_S
            and load["other_cores"] > settings.busy_cores)


@dataclass(frozen=True)
class QuietWait:
    """What :func:`wait_for_quiet` saw: whether the machine was quiet in the end, how long it
    waited and the last load figures."""

    quiet: bool
    waited_s: float
    load: dict

    def to_dict(self) -> dict:
        return asdict(self)


def wait_for_quiet(settings: ProtocolSettings, *, on_wait: Callable[[dict], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> QuietWait:
    """Poll other processes' CPU use in windows of ``settings.quiet_window_s`` until one window
    is quiet or ``settings.quiet_wait_s`` has passed. ``on_wait`` sees the load of every busy
    window, numbered from 1 in each wait (:func:`wait_notice` says that the measurement waits).
    With ``allow_busy`` it returns after one window; a window of 0 s turns the wait off (load
    during timing is still recorded)."""
    if settings.quiet_window_s <= 0:
        return QuietWait(True, 0.0, {"other_cores": None, "steal_cores": None, "seconds": 0.0})
    start = time.monotonic()
    window = 0
    while True:
        before = cpu_counters()
        sleep(settings.quiet_window_s)
        load = other_load(before, cpu_counters())
        waited = time.monotonic() - start
        if not is_busy(load, settings) or settings.allow_busy:
            return QuietWait(not is_busy(load, settings), round(waited, 2), load)
        if waited >= settings.quiet_wait_s:
            return QuietWait(False, round(waited, 2), load)
        window += 1
        if on_wait is not None:
            on_wait({**load, "waited_s": round(waited, 1), "limit_s": settings.quiet_wait_s,
                     "busy_cores": settings.busy_cores, "window": window})


def wait_notice(say: Callable[[str], None]) -> Callable[[dict], None]:
    """An ``on_wait`` that says through ``say`` (a line on stderr), at the first busy window of
    each wait, that the measurement waits and for how long at most: a progress display is not
    drawn when output is piped, and a silent wait of minutes looks like a hang."""
    def notice(load: dict) -> None:
        if load.get("window") == 1:
            say(f"waiting for a quiet machine: other processes use {load['other_cores']:.2f} cores (more than "
                f"--busy-cores {load['busy_cores']:g}); measuring anyway, flagged busy, after {load['limit_s']:g} s "
                "at most (--quiet-wait SECONDS to change that, --allow-busy not to wait)")
    return notice


def perf_timer(run: Callable[[], object]) -> Timer:
    """A timer around a synchronous call, in milliseconds of wall time."""
    def timer() -> float:
        start = time.perf_counter()
        run()
        return (time.perf_counter() - start) * 1e3
    return timer


def _cpu_mhz() -> float | None:
    """Current CPU frequency (mean over cores) where the OS exposes it."""
    cpufreq = "/sys/devices/system/cpu/cpu{}/cpufreq/scaling_cur_freq"
    values = []
    for cpu in range(os.cpu_count() or 1):
        try:
            with open(cpufreq.format(cpu)) as handle:
                values.append(int(handle.read()) / 1000)
        except (OSError, ValueError):
            break
    if not values:
        try:
            with open("/proc/cpuinfo") as handle:
                values = [float(line.split(":")[1]) for line in handle if line.startswith("cpu MHz")]
        except (OSError, ValueError, IndexError):
            values = []
    return round(sum(values) / len(values), 1) if values else None


def load_snapshot() -> dict:
    """What can be read cheaply about the machine's load right now."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"loadavg": load, "cpu_mhz": _cpu_mhz(), "time": time.time()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_fingerprint(packages: Sequence[str] = ("numpy", "onnxruntime", "torch")) -> dict:
    """CPU model, cores, OS, Python and the versions of the runtimes that matter."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "hostname": platform.node(),
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }
