"""Op-table rows of the shared building blocks, mirroring :mod:`search_spaces.blocks.modules`.

Blocks that repeat within a network and across the configs of a search are cached pure functions
keyed on their hyper-parameters, so they share their rows.
"""

from __future__ import annotations

import math
from functools import lru_cache

from search_spaces import optable as ops
from search_spaces.blocks import rules
from search_spaces.optable import Block, OpRow

Rows = tuple[OpRow, ...]
Rep = tuple[int, ...] | None
CACHE_SIZE = 1 << 16


def conv_layer(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, h: int, w: int,
                groups: int = 1, bias: bool = False, norm: bool = True, act: bool = True) -> tuple[Rows, int, int]:
    rows = ops.conv_layer(stage, name, c_in, c_out, kernel, stride, h, w, groups, bias, norm, act)
    _, ho, wo = rows[0].out_shape
    return rows, ho, wo


def mbconv_rows(stage: str, name: str, c_in: int, c_out: int, stride: int, mid: int, kernel: int,
                variant: str, h: int, w: int) -> tuple[Rows, int, int]:
    bias, norm = rules.MBCONV_VARIANTS[variant]
    a, h1, w1 = conv_layer(stage, ops.join_name(name, "inverted_conv"), c_in, mid, 1, 1, h, w, bias=bias, norm=norm)
    b, h2, w2 = conv_layer(stage, ops.join_name(name, "depth_conv"), mid, mid, kernel, stride, h1, w1, groups=mid,
                           bias=bias, norm=norm)
    c, h3, w3 = conv_layer(stage, ops.join_name(name, "point_conv"), mid, c_out, 1, 1, h2, w2, act=False)
    return a + b + c, h3, w3


def avg_pool(stage: str, name: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> OpRow:
    """A local average pool (``ops.pool`` is the global one)."""
    return OpRow(stage, name, ops.POOL, in_shape, out_shape, 0, 0, math.prod(in_shape) * ops.BYTES_PER_ELEMENT,
                 math.prod(out_shape) * ops.BYTES_PER_ELEMENT)


def upsampling(stage: str, name: str, c_in: int, c_out: int, stride: int, h: int, w: int, groups: int) -> OpRow:
    kernel, tstride, padding = rules.transposed_geometry(stride)
    return ops.conv_transpose(stage, name, c_in, c_out, kernel, tstride, padding, h, w, groups=groups)


def reduced(stage: str, c: int, h: int, w: int, stride: int, kernel: int, mixer) -> Rows:
    """``ReducedResolution``: ``mixer(h, w)`` rows between a depthwise reduction and upsampling."""
    reduce = ops.conv(stage, "attention.reduction.conv", c, c, kernel, stride, h, w, groups=c)
    _, hr, wr = reduce.out_shape
    return ((reduce, ops.norm(stage, "attention.reduction.norm", reduce.out_shape)) + mixer(hr, wr)
            + (upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c),))


@lru_cache(maxsize=CACHE_SIZE)
def head(c_in: int, h: int, w: int, widths: tuple[int, ...], num_classes: int) -> Block:
    w0, w1 = widths
    conv, _, _ = conv_layer("head", "conv", c_in, w0, 1, 1, h, w)
    return Block(conv + (
        ops.pool("head", "pool", (w0, h, w)),
        ops.linear("head", "fc", w0, w1, bias=False),
        ops.layer_norm("head", "fc_norm", (w1,)),
        ops.activation("head", "fc_act", (w1,)),
        ops.linear("head", "classifier", w1, num_classes, bias=True),
    ))


@lru_cache(maxsize=CACHE_SIZE)
def stem(c0: int, resolution: int) -> tuple[Block, int, int]:
    rows, h, w = conv_layer("stage0", "", 3, c0, 3, 2, resolution, resolution)
    return Block(rows), h, w


def branch_conv(stage: str, name: str, c_in: int, c_out: int, kernel: tuple[int, int], stride: int, h: int,
                w: int, groups: int) -> OpRow:
    """A conv with "same" padding and a possibly non-square kernel, without bias."""
    kh, kw = kernel
    if kh == kw:
        return ops.conv(stage, name, c_in, c_out, kh, stride, h, w, groups)
    square = ops.conv(stage, name, c_in, c_out, max(kh, kw), stride, h, w, groups)
    weights = kh * kw * (c_in // groups) * c_out
    _, ho, wo = square.out_shape
    return square._replace(macs=weights * ho * wo, params=weights,
                           bytes_read=square.bytes_read - (square.params - weights) * ops.BYTES_PER_ELEMENT)


def conv_rows(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, h: int, w: int,
              groups: int = 1, branches: tuple[tuple[int, int, int], ...] = (), identity: bool = False,
              rep: Rep = None) -> tuple[Rows, int, int]:
    """``make_conv`` of modules.py: one conv with bias, or the train-time branches summed."""
    if rep is None:
        row = ops.conv(stage, name, c_in, c_out, kernel, stride, h, w, groups, bias=True)
        return (row,), row.out_shape[1], row.out_shape[2]
    rows: list[OpRow] = []
    specs = ((kernel, kernel, groups),) + branches
    for i, (kh, kw, g) in enumerate(specs):
        row = branch_conv(stage, ops.join_name(name, f"branches.{i}.conv"), c_in, c_out, (kh, kw), stride, h, w, g)
        rows += [row, ops.norm(stage, ops.join_name(name, f"branches.{i}.bn"), row.out_shape)]
    out = rows[0].out_shape
    if identity:
        rows.append(ops.norm(stage, ops.join_name(name, "identity"), out))
    rows += [ops.add(stage, ops.join_name(name, f"sum.{i}"), out) for i in range(len(specs) + identity - 1)]
    return tuple(rows), out[1], out[2]


def pointwise_rows(stage: str, name: str, c_in: int, c_out: int, h: int, w: int, rep: Rep) -> Rows:
    branches = () if rep is None else tuple((1, 1, g) for g in rules.pointwise_groups(c_in, c_out, rep))
    return conv_rows(stage, name, c_in, c_out, 1, 1, h, w, branches=branches, rep=rep)[0]


def token_linear(stage: str, name: str, n_in: int, n_out: int, h: int, w: int = 1) -> OpRow:
    return ops.conv(stage, name, n_in, n_out, 1, 1, h, w, bias=True)
