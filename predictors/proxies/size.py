"""Size baselines: ``params``, ``macs`` and ``size-rank``, all read from the analytic op table.

They are the bar every other accuracy score must clear: on public benchmarks, zero-cost proxies
computed on synthetic inputs rarely rank trained networks better than the parameter count.
No model is built, so each costs microseconds (``size-rank`` once its reference population is
computed or read from the cache).

``size-rank`` is the rank sum of params and MACs, made computable for one architecture on its own:
each count is placed in a fixed reference population (``REFERENCE_SIZE`` configs, an equal share
drawn by each backbone family's sampler with ``REFERENCE_SEED``, at the architecture's resolution)
as a mid-rank fraction in [0, 1], and the two fractions are added, giving a value in [0, 2]. One
population for all families keeps the scores comparable across them. It changes only if the
reference population does (bump ``SIZE_RANK_VERSION`` then).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from search_spaces.base import ArchConfig

REFERENCE_SIZE = 512
REFERENCE_SEED = 0
SIZE_RANK_VERSION = f"2+ref=family-samplers-n{REFERENCE_SIZE}-s{REFERENCE_SEED}"


class SizeRankError(ValueError):
    """``size-rank`` was asked for a space without a reference population."""


def params(config: ArchConfig) -> float:
    """Parameter count of the architecture (exact, from the op table)."""
    return float(config.op_table().params)


def macs(config: ArchConfig) -> float:
    """Multiply-accumulates at the config's own resolution (paper convention)."""
    return float(config.op_table().macs)


@lru_cache(maxsize=8)
def _reference_counts(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted params and MACs of the reference population at ``resolution`` (pure, memoised in
    the process and on disk: its 512 op tables take about 0.7 s per resolution, paid by every
    search start that ranks published results at four resolutions). The disk key names the
    design spaces' sources, so a changed sampler or op table computes them again."""
    import json

    import search_spaces
    from explorer.architectures import FAMILIES, FLAT_SPACES
    from predictors.disk_cache import cache_path, read_text, source_digest, write_text

    key = f"{SIZE_RANK_VERSION}|{resolution}|{source_digest(Path(search_spaces.__file__).parent)}"
    path = cache_path("size-rank", hashlib.sha256(key.encode()).hexdigest()[:32])
    try:
        stored = json.loads(read_text(path) or "null")
        return np.array(stored["params"], dtype=float), np.array(stored["macs"], dtype=float)
    except (ValueError, KeyError, TypeError):  # absent or damaged: compute
        pass
    share = REFERENCE_SIZE // len(FAMILIES)
    tables = [c.op_table() for family in FAMILIES
              for c in FLAT_SPACES[family].sample(share, REFERENCE_SEED, resolution=resolution)]
    counts = (np.sort([float(t.params) for t in tables]), np.sort([float(t.macs) for t in tables]))
    write_text(path, json.dumps({"params": counts[0].tolist(), "macs": counts[1].tolist()}))
    return counts


def _mid_rank(sorted_values: np.ndarray, value: float) -> float:
    below = np.searchsorted(sorted_values, value, side="left")
    not_above = np.searchsorted(sorted_values, value, side="right")
    return float((below + not_above) / (2 * len(sorted_values)))


def size_rank(config: ArchConfig) -> float:
    """Mid-rank fraction of params plus that of MACs in the reference population, in [0, 2]."""
    from explorer.architectures import FLAT_SPACES

    if config.space not in FLAT_SPACES:
        raise SizeRankError(
            f"size-rank has a reference population only for the spaces {', '.join(FLAT_SPACES)}, not "
            f"{config.space!r}; use 'params' or 'macs' instead")
    ref_params, ref_macs = _reference_counts(config.resolution)
    table = config.op_table()
    return _mid_rank(ref_params, float(table.params)) + _mid_rank(ref_macs, float(table.macs))
