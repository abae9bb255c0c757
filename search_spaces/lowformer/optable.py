"""Analytic op table of a LowFormer config, mirroring ``network.py`` op by op.

Blocks are produced by cached pure functions keyed on their hyper-parameters: the identical
blocks of a stage, and the many configs of a search that share blocks, reuse the same rows. The
attention's rows come from its mixer in :data:`search_spaces.blocks.mixers.MIXERS`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from search_spaces import optable as ops
from search_spaces.blocks import rules
from search_spaces.blocks.mixers import MIXERS, MixerKnobs
from search_spaces.blocks.optable import CACHE_SIZE, Rows, conv_layer, head, stem
from search_spaces.lowformer.rules import local_fused
from search_spaces.optable import Block, BlockRun, OpRow, OpTable, Parts

if TYPE_CHECKING:
    from search_spaces.lowformer.config import LowFormerConfig, TransformerStage


def _conv_block_rows(stage: str, c_in: int, c_out: int, stride: int, mid: int, h: int, w: int,
                     unfused: bool, residual: bool, local: bool) -> Rows:
    """Fused MBConv (``local``: with the redundant bias) or MBConv (``local``: bias, no BN)."""
    if unfused:
        a, h1, w1 = conv_layer(stage, "inverted_conv", c_in, mid, 1, 1, h, w, bias=local, norm=False)
        b, h2, w2 = conv_layer(stage, "depth_conv", mid, mid, 3, stride, h1, w1, groups=mid,
                                bias=local, norm=False)
        c, h3, w3 = conv_layer(stage, "point_conv", mid, c_out, 1, 1, h2, w2, act=False)
        rows = a + b + c
    else:
        a, h1, w1 = conv_layer(stage, "spatial_conv", c_in, mid, 3, stride, h, w, bias=local)
        b, h3, w3 = conv_layer(stage, "point_conv", mid, c_out, 1, 1, h1, w1, act=False)
        rows = a + b
    if residual:
        rows += (ops.add(stage, "residual", (c_out, h3, w3)),)
    return rows


@lru_cache(maxsize=CACHE_SIZE)
def attention_block(stage: str, c: int, h: int, w: int, kind: str, heads: int, dim: int, stride: int,
                    kernel: int, prenorm: bool, unfused: bool, scales: tuple[int, ...] = (),
                    group_tokens: int = 0) -> Block:
    """The residual token mixer of a LowFormer block (keyed on what changes its ops only)."""
    shape = (c, h, w)
    rows: list[OpRow] = [ops.layer_norm(stage, "attention_norm", shape)] if prenorm else []
    rows += MIXERS[kind].rows(stage, c, h, w, MixerKnobs(heads, dim, stride, kernel, unfused, scales, group_tokens))
    rows.append(ops.add(stage, "attention_residual", shape))
    return Block(rows)


@lru_cache(maxsize=CACHE_SIZE)
def mlp_block(stage: str, c: int, h: int, w: int, ratio: int) -> Block:
    shape, hidden = (c, h, w), c * ratio
    return Block((
        ops.layer_norm(stage, "mlp_norm", shape),
        ops.conv(stage, "mlp.fc1", c, hidden, 1, 1, h, w, bias=True),
        ops.activation(stage, "mlp.act", (hidden, h, w)),
        ops.conv(stage, "mlp.fc2", hidden, c, 1, 1, h, w, bias=True),
        ops.add(stage, "mlp_residual", shape),
    ))


@lru_cache(maxsize=CACHE_SIZE)
def conv_block(stage: str, c_in: int, c_out: int, stride: int, mid: int, h: int, w: int, unfused: bool,
               residual: bool, local: bool = False) -> Block:
    """A stem, stage or downsampling block: fused MBConv, or MBConv when ``unfused``; ``local``:
    the LowFormer block's local module (fused with the redundant bias, or MBConv with bias, no BN)."""
    return Block(_conv_block_rows(stage, c_in, c_out, stride, mid, h, w, unfused, residual, local))


@lru_cache(maxsize=CACHE_SIZE)
def lowformer_block(stage: str, c: int, h: int, w: int, cfg: TransformerStage, fused_local: bool,
                    expansion: int, unfused: bool) -> Parts:
    """(suffix, block) parts of one LowFormer block: attention, MLP and local module."""
    parts = []
    if cfg.has_attention:
        heads, dim = cfg.heads_and_dim(c)
        parts.append(("", attention_block(stage, c, h, w, cfg.attention, heads, dim, cfg.attention_stride,
                                          cfg.attention_kernel, cfg.attention_prenorm, unfused,
                                          cfg.scales if cfg.attention == "relu-linear-ms" else (),
                                          cfg.group_tokens if cfg.attention == "group-attention" else 0)))
    if cfg.mlp:
        parts.append(("", mlp_block(stage, c, h, w, cfg.mlp_ratio)))
    parts.append(("local", conv_block(stage, c, c, 1, rules.expanded(c, expansion), h, w, not fused_local,
                                      True, True)))
    return tuple(parts)




_STAGES = ("stage0", "stage1", "stage2", "stage3", "stage4")


def lowformer_block_runs(config: LowFormerConfig) -> list[BlockRun]:
    """The table as runs of a repeated unit (a conv block, or the attention, MLP and local parts
    of a LowFormer block), in execution order: feature code iterates each distinct block once
    with its count instead of naming hundreds of blocks. (On the hot path of batched prediction:
    keep it lean.)"""
    widths, depths, unfused = config.widths, config.depths, config.unfused
    c0 = widths[0]
    stem_block, h, w = stem(c0, config.resolution)
    runs: list[BlockRun] = [("stage0.stem", -1, (("", stem_block),), 1)]
    if depths[0]:
        mid = rules.expanded(c0, config.stem_expansion)
        runs.append(("stage0", 0, (("", conv_block("stage0", c0, c0, 1, mid, h, w, unfused, True)),), depths[0]))
    down_expansion, block_expansion = config.downsample_expansion, config.block_expansion
    for i in (1, 2, 3, 4):
        stage, c_in, c = _STAGES[i], widths[i - 1], widths[i]
        down = conv_block(stage, c_in, c, 2, rules.expanded(c_in, down_expansion), h, w, unfused, False)
        runs.append((stage, 0, (("", down),), 1))
        h, w = rules.stride2_side(h), rules.stride2_side(w)
        if i <= 2:
            if depths[i] > 1:
                mid = rules.expanded(c, block_expansion)
                runs.append((stage, 1, (("", conv_block(stage, c, c, 1, mid, h, w, unfused, True)),), depths[i] - 1))
        elif depths[i]:
            parts = lowformer_block(stage, c, h, w, config.stage3 if i == 3 else config.stage4,
                                    local_fused(c, config.fusion_threshold, unfused), block_expansion, unfused)
            runs.append((stage, 1, parts, depths[i]))
    runs.append(("head", -1, (("", head(widths[4], h, w, config.head_widths, config.num_classes)),), 1))
    return runs


def lowformer_op_table(config: LowFormerConfig) -> OpTable:
    blocks = []
    for prefix, first, parts, repeats in lowformer_block_runs(config):
        for k in range(repeats):
            name = prefix if first < 0 else f"{prefix}.{first + k}"
            blocks += [(f"{name}.{suffix}" if suffix else name, block) for suffix, block in parts]
    return OpTable(blocks=blocks)
