"""Analytic op table of a LowFormer config, mirroring ``network.py`` op by op.

Blocks are produced by cached pure functions keyed on their hyper-parameters: the identical
blocks of a stage, and the many configs of a search that share blocks, reuse the same rows.
"""

from __future__ import annotations

from functools import lru_cache

from search_spaces import optable as ops
from search_spaces.lowformer import rules
from search_spaces.lowformer.config import LowFormerConfig, TransformerStage
from search_spaces.optable import Block, OpRow, OpTable

Rows = tuple[OpRow, ...]
CACHE_SIZE = 1 << 16


def conv_layer(stage: str, name: str, c_in: int, c_out: int, kernel: int, stride: int, h: int, w: int,
                groups: int = 1, bias: bool = False, norm: bool = True, act: bool = True) -> tuple[Rows, int, int]:
    rows = ops.conv_layer(stage, name, c_in, c_out, kernel, stride, h, w, groups, bias, norm, act)
    _, ho, wo = rows[0].out_shape
    return rows, ho, wo


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


def _upsampling(stage: str, name: str, c_in: int, c_out: int, stride: int, h: int, w: int, groups: int) -> OpRow:
    kernel, tstride, padding = rules.transposed_geometry(stride)
    return ops.conv_transpose(stage, name, c_in, c_out, kernel, tstride, padding, h, w, groups=groups)


def _lowtention(stage: str, c: int, h: int, w: int, heads: int, dim: int, stride: int, kernel: int,
                unfused: bool) -> Rows:
    inner = heads * dim
    reduce = ops.conv(stage, "attention.conv_proj.conv", c, c, kernel, stride, h, w, groups=c)
    _, hr, wr = reduce.out_shape
    rows = [reduce, ops.norm(stage, "attention.conv_proj.norm", reduce.out_shape),
            ops.conv(stage, "attention.pwise", c, 3 * inner, 1, 1, hr, wr)]
    rows += ops.attention(stage, "attention.sdpa", heads, hr * wr, hr * wr, dim)
    if unfused:
        rows.append(ops.conv(stage, "attention.o_proj", inner, c, 1, 1, hr, wr, bias=True))
        rows.append(_upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c))
    else:
        rows.append(_upsampling(stage, "attention.upsampling", inner, c, stride, hr, wr, groups=1))
    return tuple(rows)


def _mhsa(stage: str, c: int, h: int, w: int, heads: int, dim: int, stride: int, kernel: int) -> Rows:
    inner = heads * dim
    rows: list[OpRow] = []
    hr, wr = h, w
    if stride > 1:
        reduce = ops.conv(stage, "attention.reduction.conv", c, c, kernel, stride, h, w, groups=c)
        _, hr, wr = reduce.out_shape
        rows += [reduce, ops.norm(stage, "attention.reduction.norm", reduce.out_shape)]
    rows += [ops.conv(stage, f"attention.{p}", c, inner, 1, 1, hr, wr) for p in "qkv"]
    rows += ops.attention(stage, "attention.sdpa", heads, hr * wr, hr * wr, dim)
    rows.append(ops.conv(stage, "attention.o", inner, c, 1, 1, hr, wr, bias=True))
    if stride > 1:
        rows.append(_upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c))
    return tuple(rows)


def lite_mla_rows(stage: str, name: str, c: int, heads: int, dim: int, scales: tuple[int, ...], h: int, w: int,
                  quadratic: bool = True) -> Rows:
    """LiteMLA (``modules.LiteMLA``): qkv, one aggregation branch per scale, linear attention
    (or the N x N form at few tokens when ``quadratic``), projection + BN."""
    total, tokens = 3 * heads * dim, h * w
    groups = (1 + len(scales)) * heads
    rows = [ops.conv(stage, ops.join_name(name, "qkv.conv"), c, total, 1, 1, h, w)]
    for i, k in enumerate(scales):
        rows += [ops.conv(stage, ops.join_name(name, f"aggreg.{i}.0"), total, total, k, 1, h, w, groups=total),
                 ops.conv(stage, ops.join_name(name, f"aggreg.{i}.1"), total, total, 1, 1, h, w, groups=3 * heads)]
    rows += [ops.activation(stage, ops.join_name(name, "relu_q"), (groups, dim, tokens)),
             ops.activation(stage, ops.join_name(name, "relu_k"), (groups, dim, tokens))]
    if quadratic and rules.quadratic_attention(tokens, dim):
        rows += [ops.matmul(stage, ops.join_name(name, "scores"), groups, tokens, dim, tokens),
                 ops.matmul(stage, ops.join_name(name, "out"), groups, dim, tokens, tokens)]
    else:
        rows += [ops.matmul(stage, ops.join_name(name, "vk"), groups, dim + 1, tokens, dim),
                 ops.matmul(stage, ops.join_name(name, "out"), groups, dim + 1, dim, tokens)]
    proj, _, _ = conv_layer(stage, ops.join_name(name, "proj"), groups * dim, c, 1, 1, h, w, act=False)
    return tuple(rows) + proj


def _reduced(stage: str, c: int, h: int, w: int, stride: int, kernel: int, mixer) -> Rows:
    """``modules.ReducedResolution``: ``mixer(h, w)`` rows between a depthwise reduction and upsampling."""
    reduce = ops.conv(stage, "attention.reduction.conv", c, c, kernel, stride, h, w, groups=c)
    _, hr, wr = reduce.out_shape
    return ((reduce, ops.norm(stage, "attention.reduction.norm", reduce.out_shape)) + mixer(hr, wr)
            + (_upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c),))


def _rlmhsa(stage: str, c: int, h: int, w: int, heads: int, stride: int, kernel: int) -> Rows:
    from search_spaces.fmvit.optable import shared_projection_rows  # that module builds on this one

    if stride == 1:
        return shared_projection_rows(stage, "attention", c, heads, False, h, w, None)
    return _reduced(stage, c, h, w, stride, kernel,
                    lambda hr, wr: shared_projection_rows(stage, "attention.mixer", c, heads, False, hr, wr, None))


def _group_attention(stage: str, c: int, h: int, w: int, heads: int, group_tokens: int) -> Rows:
    from search_spaces.mcga.optable import attention_rows  # that module builds on this one

    return attention_rows(stage, "attention.attention", c, heads, group_tokens, rules.GROUP_ATTENTION_KERNELS,
                          "fusion", rules.GROUP_ATTENTION_TOKEN_RATIO, h, w)


@lru_cache(maxsize=CACHE_SIZE)
def attention_block(stage: str, c: int, h: int, w: int, kind: str, heads: int, dim: int, stride: int,
                    kernel: int, prenorm: bool, unfused: bool, scales: tuple[int, ...] = (),
                    group_tokens: int = 0) -> Block:
    """The residual token mixer of a LowFormer block (keyed on what changes its ops only)."""
    shape = (c, h, w)
    rows: list[OpRow] = [ops.norm(stage, "attention_norm", shape)] if prenorm else []
    if kind == "lowtention":
        rows += _lowtention(stage, c, h, w, heads, dim, stride, kernel, unfused)
    elif kind == "mhsa":
        rows += _mhsa(stage, c, h, w, heads, dim, stride, kernel)
    elif kind == "relu-linear":
        rows += lite_mla_rows(stage, "attention", c, heads, dim, (kernel,), h, w, quadratic=False)
    elif kind == "relu-linear-ms":
        rows += lite_mla_rows(stage, "attention", c, heads, dim, scales, h, w)
    elif kind == "rlmhsa":
        rows += _rlmhsa(stage, c, h, w, heads, stride, kernel)
    else:
        rows += _group_attention(stage, c, h, w, heads, group_tokens)
    rows.append(ops.add(stage, "attention_residual", shape))
    return Block(rows)


@lru_cache(maxsize=CACHE_SIZE)
def mlp_block(stage: str, c: int, h: int, w: int, ratio: int) -> Block:
    shape, hidden = (c, h, w), c * ratio
    return Block((
        ops.norm(stage, "mlp_norm", shape),
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


def lowformer_block(stage: str, c: int, h: int, w: int, cfg: TransformerStage, fused_local: bool,
                    expansion: int, unfused: bool) -> tuple[tuple[str, Block], ...]:
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


@lru_cache(maxsize=CACHE_SIZE)
def head(c_in: int, h: int, w: int, widths: tuple[int, ...], num_classes: int) -> Block:
    w0, w1 = widths
    conv, _, _ = conv_layer("head", "conv", c_in, w0, 1, 1, h, w)
    return Block(conv + (
        ops.pool("head", "pool", (w0, h, w)),
        ops.linear("head", "fc", w0, w1, bias=False),
        ops.norm("head", "fc_norm", (w1,)),
        ops.activation("head", "fc_act", (w1,)),
        ops.linear("head", "classifier", w1, num_classes, bias=True),
    ))


@lru_cache(maxsize=CACHE_SIZE)
def stem(c0: int, resolution: int) -> tuple[Block, int, int]:
    rows, h, w = conv_layer("stage0", "", 3, c0, 3, 2, resolution, resolution)
    return Block(rows), h, w


Parts = tuple[tuple[str, Block], ...]  # (name suffix, block) of one repeated unit
BlockRun = tuple[str, int, Parts, int]  # (name prefix, first index or -1 if unindexed, unit, repeats)


def lowformer_block_runs(config: LowFormerConfig) -> list[BlockRun]:
    """The table as runs of a repeated unit (a conv block, or the attention, MLP and local parts
    of a LowFormer block), in execution order: feature code iterates each distinct block once
    with its count instead of naming hundreds of blocks."""
    widths, depths, unfused = config.widths, config.depths, config.unfused
    c0 = widths[0]
    stem_block, h, w = stem(c0, config.resolution)
    stem_mid = rules.expanded(c0, config.stem_expansion)
    runs: list[BlockRun] = [
        ("stage0.stem", -1, (("", stem_block),), 1),
        ("stage0", 0, (("", conv_block("stage0", c0, c0, 1, stem_mid, h, w, unfused, True)),), depths[0]),
    ]
    for i in (1, 2, 3, 4):
        stage = f"stage{i}"
        c_in, c = widths[i - 1], widths[i]
        down_mid = rules.expanded(c_in, config.downsample_expansion)
        runs.append((stage, 0, (("", conv_block(stage, c_in, c, 2, down_mid, h, w, unfused, False)),), 1))
        h, w = rules.stride2_side(h), rules.stride2_side(w)
        if i <= 2:
            mid = rules.expanded(c, config.block_expansion)
            runs.append((stage, 1, (("", conv_block(stage, c, c, 1, mid, h, w, unfused, True)),), depths[i] - 1))
        else:
            parts = lowformer_block(stage, c, h, w, config.stage(i), config.local_fused(c),
                                    config.block_expansion, unfused)
            runs.append((stage, 1, parts, depths[i]))
    runs.append(("head", -1, (("", head(widths[4], h, w, config.head_widths, config.num_classes)),), 1))
    return [run for run in runs if run[3] > 0]


def lowformer_op_table(config: LowFormerConfig) -> OpTable:
    blocks = []
    for prefix, first, parts, repeats in lowformer_block_runs(config):
        for k in range(repeats):
            name = prefix if first < 0 else f"{prefix}.{first + k}"
            blocks += [(f"{name}.{suffix}" if suffix else name, block) for suffix, block in parts]
    return OpTable(blocks=blocks)
