"""Derivation rules of the LowFormer reference, shared by the config, the builder and the op table.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""

#: token mixers that keep the full width C (no channel compression) and split it into heads
FULL_WIDTH_ATTENTION = ("rlmhsa", "group-attention")


def divisor_heads(channels, head_dim):
    """The most heads, at most C // head_dim, that split C into equal heads."""
    target = max(1, channels // head_dim)
    return next(h for h in range(target, 0, -1) if channels % h == 0)


def heads_and_dim(channels, attention, compression, head_dim):
    """(heads, head width): the reference's floor(C*m/30) heads of floor(floor(C/heads)*m);
    ``relu-linear-ms`` has EfficientViT's C // dim heads of ``head_dim``; ``rlmhsa`` and
    ``group-attention`` split all C channels (compression does not apply)."""
    if attention in FULL_WIDTH_ATTENTION:
        heads = divisor_heads(channels, head_dim)
        return heads, channels // heads
    if attention == "relu-linear-ms":
        return max(1, channels // head_dim), head_dim
    heads = max(1, int(channels * compression) // head_dim)
    if attention == "relu-linear":
        return heads, head_dim
    return heads, int((channels // heads) * compression)


def local_fused(channels, fusion_threshold, unfused):
    return channels < fusion_threshold and not unfused


def attention_prenorm(attention, mlp):
    """GroupNorm before the attention: present only with the MLP (a reference quirk), and never
    for LiteMLA, whose normalisation sits after its projection, nor RLMHSA, which has its own BN."""
    return mlp and attention in ("lowtention", "mhsa", "group-attention")


def reduced_side(size, stride):
    """Side after a depthwise conv with odd kernel, padding k//2 and the given stride."""
    return (size - 1) // stride + 1
