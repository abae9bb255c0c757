"""The analytic op table: one row per op, computed from a config without building a module.

MACs follow the convention of the LowFormer paper (docs: "MAC counting convention"): convolutions
per output pixel, transposed convolutions per *input* pixel, linear layers in*out, attention
matmuls, and nothing for biases, norms, activations, softmax, pooling or residual adds. Params
count everything (biases and norm affines included), so the totals equal the module's.

Rows are plain tuples and blocks are built by cached pure functions, because predictors compute
features for many thousands of configs per second from these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import math

import numpy as np

BYTES_PER_ELEMENT = 4  # float32

DENSE_CONV = "dense_conv"
DEPTHWISE_CONV = "depthwise_conv"
GROUPED_CONV = "grouped_conv"
TRANSPOSED_CONV = "transposed_conv"
POINTWISE = "pointwise"  # 1x1 convolutions and linear layers
ATTENTION_MATMUL = "attention_matmul"
SOFTMAX = "softmax"
NORM = "norm"  # BatchNorm: an affine map at inference, folded into the convolution before it
LAYER_NORM = "layer_norm"  # LayerNorm, GroupNorm: statistics computed at inference, a kernel of its own
ACTIVATION = "activation"
ADD = "add"
POOL = "pool"

OP_CLASSES: tuple[str, ...] = (
    DENSE_CONV,
    DEPTHWISE_CONV,
    GROUPED_CONV,
    TRANSPOSED_CONV,
    POINTWISE,
    ATTENTION_MATMUL,
    SOFTMAX,
    NORM,
    LAYER_NORM,
    ACTIVATION,
    ADD,
    POOL,
)
OP_CLASS_INDEX = {name: i for i, name in enumerate(OP_CLASSES)}

Shape = tuple[int, ...]


class OpRow(NamedTuple):
    stage: str
    name: str
    op_class: str
    in_shape: Shape
    out_shape: Shape
    macs: int
    params: int
    bytes_read: int
    bytes_written: int


_make_row = OpRow._make  # positional construction from a tuple: cheaper than keywords on this hot path

_numel = math.prod


def _row(stage: str, name: str, op_class: str, in_shape: Shape, out_shape: Shape, macs: int,
         params: int, extra_read: int = 0) -> OpRow:
    read = (_numel(in_shape) + params + extra_read) * BYTES_PER_ELEMENT
    return _make_row((stage, name, op_class, in_shape, out_shape, macs, params, read,
                      _numel(out_shape) * BYTES_PER_ELEMENT))


def join_name(prefix: str, name: str) -> str:
    """``prefix.name``, or ``name`` alone at the top level."""
    return f"{prefix}.{name}" if prefix else name


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, h: int, w: int,
         groups: int = 1, bias: bool = False) -> OpRow:
    """A Conv2d with padding kernel//2."""
    ho, wo = conv_out(h, kernel, stride, kernel // 2), conv_out(w, kernel, stride, kernel // 2)
    weights = kernel * kernel * (c_in // groups) * c_out
    if groups == 1:
        op_class = POINTWISE if kernel == 1 else DENSE_CONV
    elif groups == c_in:
        op_class = DEPTHWISE_CONV
    else:
        op_class = GROUPED_CONV
    return _row(stage, name, op_class, (c_in, h, w), (c_out, ho, wo), weights * ho * wo,
                weights + (c_out if bias else 0))


def conv_layer(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, h: int, w: int,
               groups: int = 1, bias: bool = False, has_norm: bool = True, has_act: bool = True) -> tuple[OpRow, ...]:
    """Rows of a ``ConvLayer``: conv, optional BatchNorm, optional activation; names relative to ``name``."""
    prefix = f"{name}." if name else ""
    first = conv(stage, f"{prefix}conv", c_in, c_out, kernel, stride, h, w, groups, bias)
    rows = [first]
    if has_norm:
        rows.append(norm(stage, f"{prefix}norm", first.out_shape))
    if has_act:
        rows.append(activation(stage, f"{prefix}act", first.out_shape))
    return tuple(rows)


def conv_transpose(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int,
                   padding: int, h: int, w: int, groups: int = 1, bias: bool = True) -> OpRow:
    ho, wo = (h - 1) * stride - 2 * padding + kernel, (w - 1) * stride - 2 * padding + kernel
    weights = kernel * kernel * c_in * (c_out // groups)
    return _row(stage, name, TRANSPOSED_CONV, (c_in, h, w), (c_out, ho, wo), weights * h * w,
                weights + (c_out if bias else 0))


def linear(stage: str, name: str, n_in: int, n_out: int, bias: bool) -> OpRow:
    return _row(stage, name, POINTWISE, (n_in,), (n_out,), n_in * n_out,
                n_in * n_out + (n_out if bias else 0))


def norm(stage: str, name: str, shape: Shape) -> OpRow:
    """BatchNorm: an affine pair per channel (first axis)."""
    return _row(stage, name, NORM, shape, shape, 0, 2 * shape[0])


def layer_norm(stage: str, name: str, shape: Shape) -> OpRow:
    """LayerNorm or GroupNorm(1, C) over the channels (first axis), an affine pair per channel."""
    return _row(stage, name, LAYER_NORM, shape, shape, 0, 2 * shape[0])


def activation(stage: str, name: str, shape: Shape) -> OpRow:
    return _row(stage, name, ACTIVATION, shape, shape, 0, 0)


def add(stage: str, name: str, shape: Shape) -> OpRow:
    return _row(stage, name, ADD, shape, shape, 0, 0, extra_read=_numel(shape))


def pool(stage: str, name: str, shape: Shape) -> OpRow:
    return _row(stage, name, POOL, shape, (shape[0],), 0, 0)


def attention(stage: str, name: str, heads: int, q_tokens: int, kv_tokens: int, head_dim: int,
              value_dim: int | None = None) -> tuple[OpRow, ...]:
    """softmax(q kᵀ) v for ``heads`` heads: two matmuls and the softmax between them."""
    value_dim = head_dim if value_dim is None else value_dim
    q, k, v = (heads, q_tokens, head_dim), (heads, kv_tokens, head_dim), (heads, kv_tokens, value_dim)
    scores = (heads, q_tokens, kv_tokens)
    out = (heads, q_tokens, value_dim)
    return (
        _row(stage, f"{name}.qk", ATTENTION_MATMUL, q, scores, heads * q_tokens * kv_tokens * head_dim,
             0, extra_read=_numel(k)),
        _row(stage, f"{name}.softmax", SOFTMAX, scores, scores, 0, 0),
        _row(stage, f"{name}.av", ATTENTION_MATMUL, scores, out,
             heads * q_tokens * kv_tokens * value_dim, 0, extra_read=_numel(v)),
    )


def matmul(stage: str, name: str, batch: int, m: int, k: int, n: int) -> OpRow:
    """A batched (m x k) @ (k x n) matmul, as in linear attention."""
    return _row(stage, name, ATTENTION_MATMUL, (batch, m, k), (batch, m, n), batch * m * k * n, 0,
                extra_read=batch * k * n)


class Block:
    """Rows of one block with their aggregates computed once.

    Block functions are cached on the block's hyper-parameters and return a ``Block`` whose row
    names are relative to the block; a table places blocks under prefixes. Aggregating a table is
    then a sum over a few blocks instead of a pass over hundreds of rows.
    """

    __slots__ = ("rows", "macs", "params", "matrix")

    def __init__(self, rows: Iterable[OpRow]):
        self.rows: tuple[OpRow, ...] = tuple(rows)
        cells = [[0, 0, 0, 0] for _ in OP_CLASSES]
        for r in self.rows:
            cell = cells[OP_CLASS_INDEX[r.op_class]]
            cell[0] += r.macs
            cell[1] += r.params
            cell[2] += r.bytes_read + r.bytes_written
            cell[3] += 1
        self.macs = sum(cell[0] for cell in cells)
        self.params = sum(cell[1] for cell in cells)
        matrix = np.array(cells, dtype=np.float64)
        matrix.flags.writeable = False
        self.matrix = matrix


#: (name suffix, block) of one repeated unit
Parts = tuple[tuple[str, Block], ...]
#: (name prefix, first index or -1 if unindexed, unit, repeats): a table as runs of a repeated
#: unit, so that feature code visits each distinct block once with its count
BlockRun = tuple[str, int, Parts, int]


class OpTable:
    """An immutable table of ops: blocks under name prefixes, rows materialised on demand."""

    __slots__ = ("blocks", "_rows")

    def __init__(self, rows: Iterable[OpRow] = (), *, blocks: Sequence[tuple[str, Block]] = ()):
        self.blocks: tuple[tuple[str, Block], ...] = tuple(blocks) + ((("", Block(rows)),) if rows else ())
        self._rows: tuple[OpRow, ...] | None = None

    @property
    def rows(self) -> tuple[OpRow, ...]:
        if self._rows is None:
            self._rows = tuple(
                row if not prefix else row._replace(name=f"{prefix}.{row.name}")
                for prefix, block in self.blocks
                for row in block.rows
            )
        return self._rows

    def __len__(self) -> int:
        return sum(len(block.rows) for _, block in self.blocks)

    def __iter__(self):
        return iter(self.rows)

    @property
    def macs(self) -> int:
        return sum(block.macs for _, block in self.blocks)

    @property
    def params(self) -> int:
        return sum(block.params for _, block in self.blocks)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.stage for _, b in self.blocks for r in b.rows))

    def by_stage(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            agg = out.setdefault(r.stage, {"macs": 0, "params": 0, "ops": 0})
            agg["macs"] += r.macs
            agg["params"] += r.params
            agg["ops"] += 1
        return out

    def by_class(self) -> dict[str, dict[str, int]]:
        """Per op class: MACs, params, bytes moved and op count (every class present, zeros too)."""
        mat = self.class_matrix()
        return {c: {"macs": int(m[0]), "params": int(m[1]), "bytes": int(m[2]), "ops": int(m[3])}
                for c, m in zip(OP_CLASSES, mat)}

    def class_matrix(self) -> np.ndarray:
        """(len(OP_CLASSES), 4) array of MACs, params, bytes and op count per class."""
        out = np.zeros((len(OP_CLASSES), 4))
        for _, block in self.blocks:
            out += block.matrix
        return out

    def to_records(self) -> list[dict]:
        return [r._asdict() for r in self.rows]


def concat(parts: Sequence[Sequence[OpRow]]) -> OpTable:
    """A table from plain row sequences (spaces without cached blocks)."""
    rows: list[OpRow] = []
    for part in parts:
        rows.extend(part)
    return OpTable(rows)
