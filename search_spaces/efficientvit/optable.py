"""Analytic op tables of the EfficientViT spaces, mirroring ``network.py`` op by op.

The stem conv, ``ConvLayer`` and MBConv rows, the classification head and LiteMLA are shared
blocks (:mod:`search_spaces.blocks`). Blocks are produced by cached pure functions keyed on their hyper-parameters, so identical
blocks within a network and across the configs of a search share their rows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from search_spaces import optable as ops
from search_spaces.blocks.mixers.lite_mla import lite_mla_rows
from search_spaces.blocks.optable import CACHE_SIZE, avg_pool, conv_layer, mbconv_rows, stem
from search_spaces.blocks.optable import head as cls_head
from search_spaces.efficientvit import rules
from search_spaces.optable import Block, OpTable

if TYPE_CHECKING:
    from search_spaces.efficientvit.config import EfficientViTConfig, EfficientViTSeedConfig


@lru_cache(maxsize=CACHE_SIZE)
def mbconv(stage: str, c_in: int, c_out: int, stride: int, mid: int, kernel: int, variant: str, h: int, w: int,
           residual: bool) -> Block:
    rows, ho, wo = mbconv_rows(stage, "", c_in, c_out, stride, mid, kernel, variant, h, w)
    if residual:
        rows += (ops.add(stage, "residual", (c_out, ho, wo)),)
    return Block(rows)


@lru_cache(maxsize=CACHE_SIZE)
def dsconv(stage: str, c: int, h: int, w: int) -> Block:
    a, _, _ = conv_layer(stage, "depth_conv", c, c, 3, 1, h, w, groups=c)
    b, _, _ = conv_layer(stage, "point_conv", c, c, 1, 1, h, w, act=False)
    return Block(a + b + (ops.add(stage, "residual", (c, h, w)),))


@lru_cache(maxsize=CACHE_SIZE)
def efficientvit_block(stage: str, c: int, heads: int, dim: int, scales: tuple[int, ...], mid: int,
                       kernel: int, h: int, w: int) -> Block:
    shape = (c, h, w)
    local, _, _ = mbconv_rows(stage, "local_module.main", c, c, 1, mid, kernel, "local", h, w)
    return Block(lite_mla_rows(stage, "context_module.main", c, heads, dim, scales, h, w)
                 + (ops.add(stage, "context_module.residual", shape),)
                 + local + (ops.add(stage, "local_module.residual", shape),))


def efficientvit_op_table(config: EfficientViTConfig) -> OpTable:
    widths, depths, kernel, ratio = config.widths, config.depths, config.kernel, config.expand_ratio
    stem_block, h, w = stem(widths[0], config.resolution)
    blocks: list[tuple[str, Block]] = [("stage0.stem", stem_block)]
    blocks += [(f"stage0.{j}", dsconv("stage0", widths[0], h, w)) for j in range(1, depths[0] + 1)]
    for i in (1, 2, 3, 4):
        stage, c_in, c = f"stage{i}", widths[i - 1], widths[i]
        variant = "full" if i <= 2 else "local"
        blocks.append((f"{stage}.0", mbconv(stage, c_in, c, 2, rules.hidden_width(c_in, ratio), kernel, variant,
                                            h, w, False)))
        h, w = rules.downsampled_side(h), rules.downsampled_side(w)
        if i <= 2:
            block = mbconv(stage, c, c, 1, rules.hidden_width(c, ratio), kernel, "full", h, w, True)
            blocks += [(f"{stage}.{j}", block) for j in range(1, depths[i])]
        else:
            block = efficientvit_block(stage, c, config.heads(i), config.dim, config.scales,
                                       rules.hidden_width(c, config.local_expand_ratio), kernel, h, w)
            blocks += [(f"{stage}.{j}", block) for j in range(1, depths[i] + 1)]
    blocks.append(("head", cls_head(widths[4], h, w, config.head_widths, config.num_classes)))
    return OpTable(blocks=blocks)


@lru_cache(maxsize=CACHE_SIZE)
def seed_downsample(stage: str, c_in: int, c_out: int, mid: int, kernel: int, h: int, w: int) -> Block:
    main, ho, wo = mbconv_rows(stage, "main", c_in, c_out, 2, mid, kernel, "full", h, w)
    shortcut, _, _ = conv_layer(stage, "shortcut", c_in, c_out, 1, 1, ho, wo, act=False)
    pool = avg_pool(stage, "pool", (c_in, h, w), (c_in, ho, wo))
    return Block(main + (pool,) + shortcut + (ops.add(stage, "residual", (c_out, ho, wo)),))


@lru_cache(maxsize=CACHE_SIZE)
def seed_attention_block(stage: str, c: int, heads: int, kernel: int, h: int, w: int) -> Block:
    dim, tokens, inner = rules.SEED_KEY_DIM, h * w, heads * rules.SEED_KEY_DIM
    mid, shape = rules.SEED_EXPANSION * c, (c, h, w)
    rows = [
        ops.layer_norm(stage, "attention_norm", shape),
        ops.conv(stage, "attention.qkv", c, 3 * inner, 1, 1, h, w, bias=True),
        ops.activation(stage, "attention.relu_q", (heads, tokens, dim)),
        ops.activation(stage, "attention.relu_k", (heads, tokens, dim)),
        ops.matmul(stage, "attention.kv", heads, dim, tokens, dim),
        ops.matmul(stage, "attention.numerator", heads, tokens, dim, dim),
        ops.matmul(stage, "attention.denominator", heads, tokens, dim, 1),
        ops.conv(stage, "attention.proj", inner, c, 1, 1, h, w, bias=True),
        ops.add(stage, "attention_residual", shape),
        ops.layer_norm(stage, "ffn_norm", shape),
    ]
    a, _, _ = conv_layer(stage, "ffn.inverted_conv", c, mid, 1, 1, h, w, bias=True, norm=False)
    b, _, _ = conv_layer(stage, "ffn.depth_conv", mid, mid, kernel, 1, h, w, groups=mid, bias=True, norm=False)
    d, _, _ = conv_layer(stage, "ffn.point_conv", mid, c, 1, 1, h, w, bias=True, norm=False, act=False)
    return Block(tuple(rows) + a + b + d + (ops.add(stage, "ffn_residual", shape),))


@lru_cache(maxsize=CACHE_SIZE)
def seed_head(c_in: int, h: int, w: int, widths: tuple[int, ...], num_classes: int) -> Block:
    w0, w1 = widths
    conv, _, _ = conv_layer("head", "conv", c_in, w0, 1, 1, h, w)
    return Block(conv + (
        ops.pool("head", "pool", (w0, h, w)),
        ops.linear("head", "fc", w0, w1, bias=True),
        ops.activation("head", "fc_act", (w1,)),
        ops.linear("head", "classifier", w1, num_classes, bias=True),
    ))


def seed_op_table(config: EfficientViTSeedConfig) -> OpTable:
    widths, kernel = config.widths, config.kernel
    stem_block, h, w = stem(widths[0], config.resolution)
    blocks: list[tuple[str, Block]] = [("stage0.stem", stem_block)]
    for i, depth in zip((1, 2, 3, 4), config.depths):
        stage, c_in, c = f"stage{i}", widths[i - 1], widths[i]
        mid = rules.seed_mid(c_in, c, config.expansion_basis)
        blocks.append((f"{stage}.0", seed_downsample(stage, c_in, c, mid, kernel, h, w)))
        h, w = rules.downsampled_side(h), rules.downsampled_side(w)
        if i <= 2:
            block = mbconv(stage, c, c, 1, rules.SEED_EXPANSION * c, kernel, "full", h, w, True)
            blocks += [(f"{stage}.{j}", block) for j in range(1, depth)]
        else:
            block = seed_attention_block(stage, c, rules.seed_heads(c, config.attention_ratio), kernel, h, w)
            blocks += [(f"{stage}.{j}", block) for j in range(1, depth + 1)]
    blocks.append(("head", seed_head(widths[4], h, w, config.head_widths, config.num_classes)))
    return OpTable(blocks=blocks)
