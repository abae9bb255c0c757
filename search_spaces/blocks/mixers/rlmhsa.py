"""FMViT's shared-projection attention (BN, K = V = W X, Q = X, softmax attention), the mixer of
its RLMHSA, optionally at reduced resolution: op-table rows and registration (the module is
:class:`search_spaces.blocks.mixers.modules.SharedProjectionAttention`)."""

from __future__ import annotations

from search_spaces import optable as ops
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec, Rows
from search_spaces.blocks.optable import Rep, pointwise_rows, reduced


def shared_projection_rows(stage: str, name: str, c: int, heads: int, out_proj: bool, h: int, w: int,
                           rep: Rep) -> Rows:
    """Shared-projection attention (BN, K = V = W X, Q = X) without its residual."""
    rows = (ops.norm(stage, ops.join_name(name, "norm"), (c, h, w)),) + pointwise_rows(stage, ops.join_name(name, "kv"), c, c, h, w, rep)
    rows += ops.attention(stage, ops.join_name(name, "sdpa"), heads, h * w, h * w, c // heads)
    if out_proj:
        rows += pointwise_rows(stage, ops.join_name(name, "proj"), c, c, h, w, rep)
    return rows


def rlmhsa_mixer_rows(stage: str, c: int, h: int, w: int, knobs: MixerKnobs) -> Rows:
    """The inference form over all C channels, inside a depthwise reduction at stride > 1."""
    if knobs.stride == 1:
        return shared_projection_rows(stage, "attention", c, knobs.heads, False, h, w, None)
    return reduced(stage, c, h, w, knobs.stride, knobs.kernel,
                   lambda hr, wr: shared_projection_rows(stage, "attention.mixer", c, knobs.heads, False, hr, wr, None))


SPEC = MixerSpec("rlmhsa", rlmhsa_mixer_rows)
