"""MCGA's group attention: depthwise local queries cross-attend to G learned group tokens mixed by
a token MLP; op-table rows and registration (the modules are
:class:`search_spaces.blocks.mixers.modules.MCGAAttention` and its NCHW form ``GroupAttention``).

Token-wise Linear layers are written as 1x1 convolutions over their token grid (same MACs and
params); the G group tokens form a G x 1 grid.
"""

from __future__ import annotations

from search_spaces import optable as ops
from search_spaces.blocks import rules
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec, Rows
from search_spaces.blocks.optable import token_linear

#: G of MCGA
DEFAULT_GROUP_TOKENS = 8


def group_attention_rows(stage: str, name: str, d: int, heads: int, g: int, kernels: tuple[int, ...],
                         projection: str, token_mlp_ratio: int, h: int, w: int) -> Rows:
    """MCGA attention on an h x w grid of d channels, without its residual."""
    tokens, head_dim, shape = h * w, d // heads, (d, h, w)
    rows = []
    for i, k in enumerate(kernels):
        rows.append(ops.conv(stage, f"{name}.local.{i}", d, d, k, 1, h, w, groups=d, bias=True))
        if rules.query_projection(projection):
            rows.append(token_linear(stage, f"{name}.query_proj.{i}", d, d, h, w))
    group_query = token_linear(stage, f"{name}.q", d, d, g)
    rows.append(group_query._replace(params=group_query.params + g * d))  # + its input, the learned tokens
    rows += [token_linear(stage, f"{name}.{p}", d, d, h, w) for p in "kv"]
    rows += ops.attention(stage, f"{name}.group", heads, g, tokens, head_dim)
    rows.append(ops.layer_norm(stage, f"{name}.group_norm", (d, g)))
    if token_mlp_ratio:
        hidden = token_mlp_ratio * g
        rows += [token_linear(stage, f"{name}.token_mixer.fc1", g, hidden, d),
                 ops.activation(stage, f"{name}.token_mixer.act", (hidden, d)),
                 token_linear(stage, f"{name}.token_mixer.fc2", hidden, g, d)]
    else:
        rows.append(token_linear(stage, f"{name}.token_mixer.fc", g, g, d))
    rows.append(ops.add(stage, f"{name}.token_mixer.residual", (d, g)))
    for i in range(len(kernels)):
        rows += [token_linear(stage, f"{name}.cross_{p}.{i}", d, d, g) for p in "kv"]
        rows += ops.attention(stage, f"{name}.cross.{i}", heads, tokens, g, head_dim)
        if rules.fusion_projection(projection):
            rows.append(token_linear(stage, f"{name}.fusion.{i}", d, d, h, w))
    rows += [ops.add(stage, f"{name}.sum.{i}", shape) for i in range(1, len(kernels))]
    return tuple(rows)


def lowformer_group_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    """``GroupAttention``: the paper's kernel pair, fusion projections and token-MLP ratio."""
    return group_attention_rows(stage, "attention.attention", c, knobs.heads, knobs.group_tokens,
                                rules.GROUP_ATTENTION_KERNELS, "fusion", rules.GROUP_ATTENTION_TOKEN_RATIO, h, w)


SPEC = MixerSpec("group-attention", lowformer_group_rows, full_resolution=True,
                 knob=("group_tokens", DEFAULT_GROUP_TOKENS))
