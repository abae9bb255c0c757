"""Latency features of an architecture, computed from its analytic op table only.

Every feature is a sum over op rows (the per-stage mean output side and channels of the
convolutions are sums divided at the end), so the features of a config are the sum of the
features of the blocks its op table is made of:
one feature vector per distinct block, cached by identity, and one sparse matrix product per
batch (:class:`OpFeaturizer`). :func:`table_features` is the plain row-by-row reference; both
give identical vectors.

Stages are taken from the rows' ``stage`` names in order of appearance (not from space-specific
config attributes), so any space with an op table gets the same feature layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

from search_spaces.base import ArchConfig
from search_spaces.optable import (
    DENSE_CONV,
    DEPTHWISE_CONV,
    GROUPED_CONV,
    OP_CLASS_INDEX,
    OP_CLASSES,
    POINTWISE,
    SOFTMAX,
    TRANSPOSED_CONV,
    Block,
    BlockRun,
    OpRow,
    OpTable,
)

#: Stored with every model; bump whenever the layout or meaning of a feature changes.
FEATURE_VERSION = "optable-v2"

#: Stage slots; stages after the last slot are folded into it.
MAX_STAGES = 6

CLASS_QUANTITIES = ("macs", "params", "bytes", "ops")
STAGE_SUMS = ("macs", "bytes", "ops", "convs")
#: mean output side and channels of the stage's convolutions (sums divided by ``convs``)
STAGE_MEANS = ("resolution", "channels")
_CONV_CLASSES = frozenset({DENSE_CONV, DEPTHWISE_CONV, GROUPED_CONV, TRANSPOSED_CONV, POINTWISE})

FEATURE_NAMES: tuple[str, ...] = (
    *(f"{c}.{q}" for c in OP_CLASSES for q in CLASS_QUANTITIES),
    *(f"total.{q}" for q in CLASS_QUANTITIES),
    "attention.score_elements",
    "attention.query_tokens",
    *(f"stage{s}.{q}" for s in range(MAX_STAGES) for q in STAGE_SUMS + STAGE_MEANS),
    "input.resolution",
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
N_FEATURES = len(FEATURE_NAMES)

_TOTAL = FEATURE_INDEX["total.macs"]
_SCORES = FEATURE_INDEX["attention.score_elements"]
_TOKENS = FEATURE_INDEX["attention.query_tokens"]
_STAGE0 = FEATURE_INDEX["stage0.macs"]
_STAGE_WIDTH = len(STAGE_SUMS) + len(STAGE_MEANS)
_CONVS = np.array([FEATURE_INDEX[f"stage{s}.convs"] for s in range(MAX_STAGES)])
_MEANS = np.array([[FEATURE_INDEX[f"stage{s}.{q}"] for q in STAGE_MEANS] for s in range(MAX_STAGES)])
_RESOLUTION = FEATURE_INDEX["input.resolution"]


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _add_row(vec: np.ndarray, row: OpRow, slot: int) -> None:
    """Add one row's contributions to the sums in ``vec`` (stage means still undivided)."""
    moved = row.bytes_read + row.bytes_written
    base = OP_CLASS_INDEX[row.op_class] * len(CLASS_QUANTITIES)
    for offset in (base, _TOTAL):
        vec[offset] += row.macs
        vec[offset + 1] += row.params
        vec[offset + 2] += moved
        vec[offset + 3] += 1
    if row.op_class == SOFTMAX:
        vec[_SCORES] += _numel(row.in_shape)
        vec[_TOKENS] += row.in_shape[1]
    stage = _STAGE0 + slot * _STAGE_WIDTH
    vec[stage] += row.macs
    vec[stage + 1] += moved
    vec[stage + 2] += 1
    if row.op_class in _CONV_CLASSES and len(row.out_shape) == 3:
        vec[stage + 3] += 1
        vec[stage + 4] += row.out_shape[1]
        vec[stage + 5] += row.out_shape[0]


def _finish(sums: np.ndarray, resolutions: Sequence[int]) -> np.ndarray:
    """Divide the stage shape sums by the stage's convolution count; set the input resolution."""
    convs = sums[:, _CONVS]
    for k in range(len(STAGE_MEANS)):
        cols = _MEANS[:, k]
        sums[:, cols] = np.divide(sums[:, cols], convs, out=np.zeros_like(convs), where=convs > 0)
    sums[:, _RESOLUTION] = resolutions
    return sums


def _slot(slots: dict[str, int], stage: str) -> int:
    slot = slots.get(stage)
    if slot is None:
        slot = slots[stage] = min(len(slots), MAX_STAGES - 1)
    return slot


def table_features(table: OpTable, resolution: int) -> np.ndarray:
    """The feature vector of one op table (the reference path, row by row)."""
    vec = np.zeros(N_FEATURES)
    slots: dict[str, int] = {}
    for row in table.rows:
        _add_row(vec, row, _slot(slots, row.stage))
    return _finish(vec[None], [resolution])[0]


def block_runs(config: ArchConfig) -> list[BlockRun]:
    """The config's op table as runs of distinct blocks with their repeats.

    Uses ``config.op_block_runs()`` where a space offers it (no op table, no row names: the fast
    path), else counts the blocks of ``config.op_table()``. Features are sums, so only the first
    appearance of each stage matters for the order.
    """
    op_block_runs = getattr(config, "op_block_runs", None)
    if op_block_runs is not None:
        return op_block_runs()
    runs: dict[int, list] = {}
    for _, block in config.op_table().blocks:
        run = runs.get(id(block))
        if run is None:
            runs[id(block)] = [block, 1]
        else:
            run[1] += 1
    return [("", -1, (("", block),), count) for block, count in runs.values()]


#: (block, its stage names in order, {placement: vector row}, its only stage or None)
_Record = tuple[Block, tuple[str, ...], dict, "str | None"]


class OpFeaturizer:
    """Batched features with two per-instance caches (see module docstring).

    Block vectors: op tables are made of ``Block`` objects that the spaces build with cached
    functions, so an equal block is the same object in every config that has it. The cache maps
    ``id(block)`` to the block itself (kept alive, so that its id cannot be reused by another
    object), its stage names and, per placement of those stages in the stage slots, its row in a
    growing matrix of block vectors.

    Config rows: a search proposes the same architecture again and again (mutations of a
    population, re-ranked candidate pools), so finished feature rows are kept per config (configs
    are frozen, hashable values) and a config seen before costs one dictionary lookup.

    Each cache is emptied when it holds its ``max_*`` entries, which bounds memory over a long
    search.
    """

    version = FEATURE_VERSION
    names = FEATURE_NAMES

    def __init__(self, max_blocks: int = 200_000, max_configs: int = 100_000) -> None:
        self.max_blocks = max_blocks
        self.max_configs = max_configs
        self._clear_blocks()
        self._clear_configs()

    def _clear_configs(self) -> None:
        self._config_rows: dict[ArchConfig, int] = {}
        self._rows = np.zeros((0, N_FEATURES))  # capacity; the first len(self._config_rows) are filled

    def _clear_blocks(self) -> None:
        self._blocks: dict[int, _Record] = {}
        self._vectors: list[np.ndarray] = []
        self._matrix = np.zeros((0, N_FEATURES))

    def _register(self, block: Block) -> _Record:
        stages = tuple(dict.fromkeys(r.stage for r in block.rows))
        record = (block, stages, {}, stages[0] if len(stages) == 1 else None)
        self._blocks[id(block)] = record
        return record

    def _vector(self, record: _Record, placed: int | tuple[int, ...]) -> int:
        """Row index of the block's vector with its stages at these slots."""
        block, stages, placements, _ = record
        slot_of = dict(zip(stages, placed if isinstance(placed, tuple) else (placed,)))
        vec = np.zeros(N_FEATURES)
        for row in block.rows:
            _add_row(vec, row, slot_of[row.stage])
        index = placements[placed] = len(self._vectors)
        self._vectors.append(vec)
        return index

    def transform(self, configs: Iterable[ArchConfig]) -> np.ndarray:
        """(n_configs, N_FEATURES) float64 matrix."""
        distinct, inverse = self.transform_distinct(configs)
        return distinct[inverse]

    def transform_distinct(self, configs: Iterable[ArchConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the distinct configs and, per config, the index of its row: a model then runs
        once per distinct architecture (``distinct[inverse]`` is ``transform(configs)``)."""
        configs = list(configs)
        if len(self._config_rows) + len(configs) > self.max_configs:
            self._clear_configs()
        known, new, rows = self._config_rows, [], []
        filled = len(known)
        for config in configs:
            n = len(known)
            row = known.setdefault(config, n)  # one hash of the (frozen, unhashed) config, not two
            if row == n:
                new.append(config)
            rows.append(row)
        if new:
            if len(known) > len(self._rows):  # grow geometrically: one copy per doubling, not per batch
                grown = np.empty((max(len(known), 2 * len(self._rows)), N_FEATURES))
                grown[:filled] = self._rows[:filled]
                self._rows = grown
            self._rows[filled:len(known)] = self._compute(new)
        unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        return self._rows[unique], inverse

    def _compute(self, configs: list[ArchConfig]) -> np.ndarray:
        """Feature rows of configs not seen before, as sums of cached block vectors."""
        if len(self._vectors) >= self.max_blocks:
            self._clear_blocks()
        blocks, last = self._blocks, MAX_STAGES - 1
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for config in configs:
            slots: dict[str, int] = {}
            for _, _, parts, count in block_runs(config):
                for _, block in parts:
                    record = blocks.get(id(block))
                    if record is None or record[0] is not block:
                        record = self._register(block)
                    stage = record[3]
                    if stage is not None:
                        placed = slots.get(stage)
                        if placed is None:
                            placed = slots[stage] = min(len(slots), last)
                    else:
                        placed = tuple(_slot(slots, stage) for stage in record[1])
                    index = record[2].get(placed)
                    indices.append(self._vector(record, placed) if index is None else index)
                    counts.append(count)
            indptr.append(len(indices))
        if len(self._vectors) > len(self._matrix):
            self._matrix = np.vstack([self._matrix, *self._vectors[len(self._matrix):]])
        runs = sparse.csr_matrix((np.asarray(counts, dtype=float), np.asarray(indices, dtype=np.int64),
                                  np.asarray(indptr)), shape=(len(configs), len(self._matrix)))
        return _finish(np.asarray(runs @ self._matrix), [config.resolution for config in configs])


def config_features(config: ArchConfig) -> np.ndarray:
    """The feature vector of one config through its full op table (no cache)."""
    return table_features(config.op_table(), config.resolution)
