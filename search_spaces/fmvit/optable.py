"""Analytic op table of an FMViT config (either form), mirroring ``network.py`` op by op.

In the training form every conv is its parallel branches (conv + BN each, summed), so the
table shows what a training step runs; the inference form has single convs with bias.
Blocks are cached pure functions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from search_spaces import optable as ops
from search_spaces.blocks.mixers.rlmhsa import shared_projection_rows
from search_spaces.blocks.optable import CACHE_SIZE, Rep, Rows, avg_pool, conv_rows, pointwise_rows
from search_spaces.fmvit import rules
from search_spaces.optable import Block, OpTable

if TYPE_CHECKING:
    from search_spaces.fmvit.config import FMViTConfig


@lru_cache(maxsize=CACHE_SIZE)
def stem(c1: int, c3: int, resolution: int, rep: Rep) -> tuple[Block, int, int]:
    stage = "stage0"
    asym = tuple((kh, kw, 1) for kh, kw in rules.STEM_ASYMMETRIC)
    a, h, w = conv_rows(stage, "conv", 3, c1, 3, 2, resolution, resolution, branches=asym, rep=rep)
    b, h, w = conv_rows(stage, "depth_conv", c1, c1, 3, 2, h, w, groups=c1, branches=((1, 1, c1),), rep=rep)
    c = pointwise_rows(stage, "point_conv", c1, c3, h, w, rep)
    acts = tuple(ops.activation(stage, f"act.{i}", shape) for i, shape in
                 enumerate((a[0].out_shape, b[0].out_shape, (c3, h, w))))
    return Block(a + acts[:1] + b + acts[1:2] + c + acts[2:]), h, w


@lru_cache(maxsize=CACHE_SIZE)
def patch_embed(stage: str, c_in: int, c_out: int, stride: int, h: int, w: int, rep: Rep) -> tuple[Block, int, int]:
    rows: Rows = ()
    if stride == 2:
        ho, wo = rules.pooled_side(h), rules.pooled_side(w)
        rows = (avg_pool(stage, "pool", (c_in, h, w), (c_in, ho, wo)),)
        h, w = ho, wo
    return Block(rows + pointwise_rows(stage, "conv", c_in, c_out, h, w, rep)), h, w


def conv_mlp_rows(stage: str, name: str, c: int, ratio: int, h: int, w: int, rep: Rep) -> Rows:
    hidden = ratio * c
    rows: Rows = (ops.norm(stage, ops.join_name(name, "norm"), (c, h, w)),) if rep is not None else ()
    rows += pointwise_rows(stage, ops.join_name(name, "fc1"), c, hidden, h, w, rep)
    rows += (ops.activation(stage, ops.join_name(name, "act"), (hidden, h, w)),)
    rows += conv_rows(stage, ops.join_name(name, "depth_conv"), hidden, hidden, 3, 1, h, w, groups=hidden, identity=True,
                      rep=rep)[0]
    return rows + pointwise_rows(stage, ops.join_name(name, "fc2"), hidden, c, h, w, rep)


@lru_cache(maxsize=CACHE_SIZE)
def cfb(stage: str, c: int, ratio: int, h: int, w: int, rep: Rep) -> Block:
    shape = (c, h, w)
    rows = conv_rows(stage, "depth_conv", c, c, 3, 1, h, w, groups=c, branches=((1, 1, c),), identity=True,
                     rep=rep)[0]
    rows += (ops.activation(stage, "act", shape),)
    rows += pointwise_rows(stage, "point_conv", c, c, h, w, rep)
    rows += (ops.add(stage, "mixer_residual", shape),)
    return Block(rows + conv_mlp_rows(stage, "mlp", c, ratio, h, w, rep) + (ops.add(stage, "mlp_residual", shape),))


def rlmhsa_rows(stage: str, name: str, c: int, head_dim: int, out_proj: bool, h: int, w: int, rep: Rep) -> Rows:
    rows = shared_projection_rows(stage, name, c, rules.rlmhsa_heads(c, head_dim), out_proj, h, w, rep)
    return rows + (ops.add(stage, ops.join_name(name, "residual"), (c, h, w)),)


@lru_cache(maxsize=CACHE_SIZE)
def fmb(stage: str, c_in: int, f: int, cfbs: int, ratio: int, head_dim: int, out_proj: bool, h: int, w: int,
        rep: Rep) -> Block:
    out = rules.fmb_width(f, cfbs)
    rows = pointwise_rows(stage, "embed", c_in, f, h, w, rep)
    for i in range(cfbs):
        rows += tuple(r._replace(name=f"blocks.{i}.{r.name}") for r in cfb(stage, f, ratio, h, w, rep).rows)
    rows += rlmhsa_rows(stage, "attention", f, head_dim, out_proj, h, w, rep)
    rows += conv_mlp_rows(stage, "mlp", out, ratio, h, w, rep)
    return Block(rows + (ops.add(stage, "mlp_residual", (out, h, w)),))


@lru_cache(maxsize=CACHE_SIZE)
def head(c: int, h: int, w: int, num_classes: int, train: bool) -> Block:
    rows = (ops.norm("head", "norm", (c, h, w)),) if train else ()
    return Block(rows + (ops.pool("head", "pool", (c, h, w)), ops.linear("head", "classifier", c, num_classes, True)))


def fmvit_op_table(config: FMViTConfig) -> OpTable:
    rep = config.multi_groups if config.form == "train" else None
    c1, c3 = config.stem_widths
    stem_block, h, w = stem(c1, c3, config.resolution, rep)
    blocks: list[tuple[str, Block]] = [("stem", stem_block)]
    c_in = c3
    for i in range(4):
        stage = f"stage{i + 1}"
        a, b = config.embed_widths[i], config.block_widths[i]
        for j, (ci, co, stride) in enumerate(((c_in, a, 1 if i == 0 else 2), (a, b, 1))):
            if stride == 2 or ci != co:
                embed, h, w = patch_embed(stage, ci, co, stride, h, w, rep)
                blocks.append((f"{stage}.{j}", embed))
        block = cfb(stage, b, config.mlp_ratio, h, w, rep)
        blocks += [(f"{stage}.{2 + j}", block) for j in range(config.depths[i])]
        c_in = b
        if i > 0:
            f = config.fm_widths[i - 1]
            blocks.append((f"{stage}.{2 + config.depths[i]}",
                           fmb(stage, b, f, config.fmb_cfbs, config.mlp_ratio, config.head_dim, config.out_proj,
                               h, w, rep)))
            c_in = rules.fmb_width(f, config.fmb_cfbs)
    blocks.append(("head", head(c_in, h, w, config.num_classes, rep is not None)))
    return OpTable(blocks=blocks)
