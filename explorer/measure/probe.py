"""Which intra-op thread count gives repeatable latencies on this host, measured.

A few random architectures are measured in several passes at each candidate thread count (passes
interleaved, so a change of the machine's state hits every count alike). Repeatability is the
share of repeat pairs (two passes of one architecture at one count) that agree within +-10 %,
then the median pairwise deviation; the most repeatable count becomes the device's default.
On a 2-vCPU cloud host one thread is far more repeatable than two
(docs/measuring-on-noisy-machines.md); a dedicated board may well differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np

from explorer.architectures import flat_space, resolve
from explorer.db import Database, bind_host, resolve_device
from explorer.measure.campaign import REFERENCE, Job, LocalTransport
from explorer.measure.protocol import ProtocolSettings, host_fingerprint
from search_spaces.base import KnobError, arch_id


@dataclass(frozen=True)
class ThreadRepeatability:
    threads: int
    pairs: int
    within_10pct: float
    within_5pct: float
    median_pair_deviation: float
    p90_pair_deviation: float
    median_ms: dict[str, list[float]]
    busy: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProbeReport:
    device: str
    best_threads: int
    results: tuple[ThreadRepeatability, ...]
    architectures: int
    passes: int
    created_at: str

    def to_dict(self) -> dict:
        return {"device": self.device, "best_threads": self.best_threads, "architectures": self.architectures,
                "passes": self.passes, "created_at": self.created_at,
                "results": [r.to_dict() for r in self.results]}


def pair_deviations(medians: Sequence[float]) -> list[float]:
    """|a / b - 1| for every pair of repeats, with the faster one as b (symmetric)."""
    return [max(a, b) / min(a, b) - 1.0 for a, b in itertools.combinations(medians, 2) if min(a, b) > 0]


def repeatability(threads: int, medians: dict[str, list[float]], busy: int = 0) -> ThreadRepeatability:
    deviations = np.asarray([d for values in medians.values() for d in pair_deviations(values)])
    if deviations.size == 0:
        return ThreadRepeatability(threads, 0, 0.0, 0.0, float("inf"), float("inf"), medians, busy)
    return ThreadRepeatability(threads, int(deviations.size), float(np.mean(deviations <= 0.10)),
                               float(np.mean(deviations <= 0.05)), float(np.median(deviations)),
                               float(np.percentile(deviations, 90)), medians, busy)


def best_thread_count(results: Sequence[ThreadRepeatability]) -> int:
    """Most pairs within +-10 %, then the smaller median deviation, then fewer threads."""
    return min(results, key=lambda r: (-r.within_10pct, r.median_pair_deviation, r.threads)).threads


def probe_threads(database: Database, device: str = "local", *, threads: Sequence[int] = (1, 2), n: int = 6,
                  passes: int = 3, space: str = "lowformer", seed: int = 7,
                  protocol: ProtocolSettings = ProtocolSettings(), store: bool = True,
                  on_step: Callable[[str], None] | None = None) -> ProbeReport:
    """Measure ``n`` random architectures ``passes`` times at each thread count on this host and
    (with ``store``) save the most repeatable count as the device's default with the figures."""
    if n < 2 or passes < 2:
        raise KnobError("n/passes", (n, passes), "at least 2 architectures and 2 passes")
    if not threads or any(not isinstance(t, int) or t < 1 for t in threads):
        raise KnobError("threads", threads, "positive integers, e.g. 1,2")
    with database.session() as session:
        profile = resolve_device(session, device)
        name, backend = profile.name, profile.backend
        LocalTransport().check(profile, backend)
    configs = flat_space(space).sample(n, seed)
    medians: dict[int, dict[str, list[float]]] = {t: {arch_id(c): [] for c in configs} for t in threads}
    busy = dict.fromkeys(threads, 0)
    transport = LocalTransport()
    for number, count in itertools.product(range(passes), threads):
        if on_step is not None:
            on_step(f"pass {number + 1}/{passes}, {count} thread(s)")
        jobs = [Job(c, backend, 1, count, purpose="probe") for c in configs]
        for outcome in transport.run(jobs, protocol, resolve(*REFERENCE)):
            if outcome.status == "ok":
                medians[count][outcome.job.arch_id].append(outcome.result.stats.median)
                busy[count] += "busy" in outcome.result.flags
    results = tuple(repeatability(t, medians[t], busy[t]) for t in threads)
    report = ProbeReport(name, best_thread_count(results), results, n, passes,
                         datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if store:
        with database.session() as session:
            profile = resolve_device(session, name)
            bind_host(profile, host_fingerprint())
            profile.default_threads = report.best_threads
            profile.probe = report.to_dict()
    return report
