"""Two-objective hypervolume (score up, latency down) for dashboards and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hypervolume(scores: Sequence[float], latencies: Sequence[float], ref_score: float, ref_latency: float) -> float:
    """Area dominated by the points and bounded by (``ref_score``, ``ref_latency``): points with a
    lower score or a higher latency than the reference add nothing."""
    points = [(lat, s) for s, lat in zip(scores, latencies) if s > ref_score and lat < ref_latency]
    area, best = 0.0, ref_score
    for latency, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            area += (score - best) * (ref_latency - latency)
            best = score
    return area


def hypervolume_history(scores: Sequence[float], latencies: Sequence[float], ref_score: float,
                        ref_latency: float) -> np.ndarray:
    """Hypervolume after each point, in order (recomputed on the current front only)."""
    history = np.zeros(len(scores))
    front: list[tuple[float, float]] = []
    current = 0.0
    for i, (score, latency) in enumerate(zip(scores, latencies)):
        if score > ref_score and latency < ref_latency and not any(
                s >= score and lat <= latency for s, lat in front):
            front = [(s, lat) for s, lat in front if not (score >= s and latency <= lat)] + [(score, latency)]
            current = hypervolume([s for s, _ in front], [lat for _, lat in front], ref_score, ref_latency)
        history[i] = current
    return history
