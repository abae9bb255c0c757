"""Plain multi-head self-attention with 1x1 q, k, v, o projections, optionally at reduced
resolution (the study's "convlow"); its op-table rows and registration (the module is
:class:`search_spaces.blocks.mixers.modules.MultiHeadSelfAttention`)."""

from __future__ import annotations

from search_spaces import optable as ops
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec, Rows
from search_spaces.blocks.optable import upsampling
from search_spaces.optable import OpRow


def mhsa_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    heads, dim, stride, kernel = knobs.heads, knobs.dim, knobs.stride, knobs.kernel
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
        rows.append(upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c))
    return tuple(rows)


SPEC = MixerSpec("mhsa", mhsa_rows)
