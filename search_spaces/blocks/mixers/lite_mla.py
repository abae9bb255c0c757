"""EfficientViT's multi-scale ReLU linear attention (``LiteMLA``) and LowFormer's single-scale
ablation of it: op-table rows and the two registrations (the module is
:class:`search_spaces.blocks.mixers.modules.LiteMLA`)."""

from __future__ import annotations

from search_spaces import optable as ops
from search_spaces.blocks import rules
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec, Rows
from search_spaces.blocks.optable import conv_layer

#: the aggregation kernels of EfficientViT-B
DEFAULT_SCALES = (5,)


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


def relu_linear_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    """LowFormer's ablation: one aggregation branch of the reducing kernel, never the N x N form."""
    return lite_mla_rows(stage, "attention", c, knobs.heads, knobs.dim, (knobs.kernel,), h, w, quadratic=False)


def multi_scale_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    return lite_mla_rows(stage, "attention", c, knobs.heads, knobs.dim, knobs.scales, h, w)


RELU_LINEAR = MixerSpec("relu-linear", relu_linear_rows, full_resolution=True)
RELU_LINEAR_MS = MixerSpec("relu-linear-ms", multi_scale_rows, full_resolution=True, knob=("scales", DEFAULT_SCALES))
