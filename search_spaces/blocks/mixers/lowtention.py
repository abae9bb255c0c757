"""LowFormer's conv attention (``Lowtention``): depthwise reduction, compressed QKV, softmax
attention, fused transposed-conv upsampling; its op-table rows and registration (the module is
:class:`search_spaces.blocks.mixers.modules.Lowtention`)."""

from __future__ import annotations

from search_spaces import optable as ops
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec, Rows
from search_spaces.blocks.optable import upsampling


def lowtention_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    heads, dim, stride, kernel, unfused = knobs.heads, knobs.dim, knobs.stride, knobs.kernel, knobs.unfused
    inner = heads * dim
    reduce = ops.conv(stage, "attention.conv_proj.conv", c, c, kernel, stride, h, w, groups=c)
    _, hr, wr = reduce.out_shape
    rows = [reduce, ops.norm(stage, "attention.conv_proj.norm", reduce.out_shape),
            ops.conv(stage, "attention.pwise", c, 3 * inner, 1, 1, hr, wr)]
    rows += ops.attention(stage, "attention.sdpa", heads, hr * wr, hr * wr, dim)
    if unfused:
        rows.append(ops.conv(stage, "attention.o_proj", inner, c, 1, 1, hr, wr, bias=True))
        rows.append(upsampling(stage, "attention.upsampling", c, c, stride, hr, wr, groups=c))
    else:
        rows.append(upsampling(stage, "attention.upsampling", inner, c, stride, hr, wr, groups=1))
    return tuple(rows)


SPEC = MixerSpec("lowtention", lowtention_rows)
