"""Analytic op table of an MCGA config, mirroring ``network.py`` op by op.

Token-wise Linear layers are written as 1x1 convolutions over their token grid (same MACs and
params); the G group tokens form a G x 1 grid. Blocks are cached pure functions.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from search_spaces import optable as ops
from search_spaces.blocks.mixers.group_attention import group_attention_rows
from search_spaces.blocks.optable import CACHE_SIZE, token_linear
from search_spaces.mcga import rules
from search_spaces.optable import Block, OpRow, OpTable

if TYPE_CHECKING:
    from search_spaces.mcga.config import MCGAConfig


def strided_conv(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 h: int, w: int) -> OpRow:
    """A dense Conv2d with bias and explicit padding (``ops.conv`` assumes kernel // 2)."""
    ho, wo = (rules.conv_side(s, kernel, stride, padding) for s in (h, w))
    weights = kernel * kernel * c_in * c_out
    in_shape, out_shape = (c_in, h, w), (c_out, ho, wo)
    return OpRow(stage, name, ops.DENSE_CONV, in_shape, out_shape, weights * ho * wo, weights + c_out,
                 (math.prod(in_shape) + weights + c_out) * ops.BYTES_PER_ELEMENT,
                 math.prod(out_shape) * ops.BYTES_PER_ELEMENT)


@lru_cache(maxsize=CACHE_SIZE)
def patch_embed(stage_index: int, c_in: int, c_out: int, patch: str, h: int, w: int) -> tuple[Block, int, int]:
    stage = f"stage{stage_index}"
    kernel, stride, padding = rules.patch_geometry(stage_index, patch)
    conv = strided_conv(stage, "proj", c_in, c_out, kernel, stride, padding, h, w)
    _, ho, wo = conv.out_shape
    return Block((conv, ops.layer_norm(stage, "norm", conv.out_shape))), ho, wo


@lru_cache(maxsize=CACHE_SIZE)
def mcga_block(stage: str, d: int, heads: int, g: int, kernels: tuple[int, ...], projection: str,
               token_mlp_ratio: int, mlp_ratio: int, h: int, w: int) -> Block:
    shape, hidden = (d, h, w), mlp_ratio * d
    rows = [ops.layer_norm(stage, "attention_norm", shape),
            *group_attention_rows(stage, "attention", d, heads, g, kernels, projection, token_mlp_ratio, h, w),
            ops.add(stage, "attention_residual", shape),
            ops.layer_norm(stage, "mlp_norm", shape),
            token_linear(stage, "mlp.fc1", d, hidden, h, w),
            ops.activation(stage, "mlp.act", (hidden, h, w)),
            token_linear(stage, "mlp.fc2", hidden, d, h, w),
            ops.add(stage, "mlp_residual", shape)]
    return Block(rows)


@lru_cache(maxsize=CACHE_SIZE)
def head(d: int, h: int, w: int, hidden: int, num_classes: int) -> Block:
    rows = [ops.layer_norm("head", "norm", (d, h, w)), ops.pool("head", "pool", (d, h, w))]
    if hidden:
        rows += [ops.linear("head", "classifier.0", d, hidden, bias=True),
                 ops.activation("head", "classifier.1", (hidden,)),
                 ops.linear("head", "classifier.2", hidden, num_classes, bias=True)]
    else:
        rows.append(ops.linear("head", "classifier", d, num_classes, bias=True))
    return Block(rows)


def mcga_op_table(config: MCGAConfig) -> OpTable:
    h = w = config.resolution
    c_in = 3
    blocks: list[tuple[str, Block]] = []
    for i, (d, depth, heads) in enumerate(zip(config.dims, config.depths, config.heads), start=1):
        embed, h, w = patch_embed(i, c_in, d, config.patch_embed, h, w)
        blocks.append((f"stage{i}.0", embed))
        block = mcga_block(f"stage{i}", d, heads, config.group_tokens, config.kernels, config.projection,
                           config.token_mlp_ratio, config.mlp_ratio, h, w)
        blocks += [(f"stage{i}.{j}", block) for j in range(1, depth + 1)]
        c_in = d
    blocks.append(("head", head(config.dims[3], h, w, config.classifier_hidden, config.num_classes)))
    return OpTable(blocks=blocks)
