"""Derivation rules of the LowFormer reference, shared by the config, the builder and the op table.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""


def expanded(channels, expansion):
    """Hidden width of an (fused) MBConv: relative to its input channels, as in the reference."""
    return int(round(channels * expansion))


def heads_and_dim(channels, attention, compression, head_dim):
    """(heads, head width): the reference's floor(C*m/30) heads of floor(floor(C/heads)*m)."""
    heads = max(1, int(channels * compression) // head_dim)
    if attention == "relu-linear":
        return heads, head_dim
    return heads, int((channels // heads) * compression)


def transposed_geometry(stride):
    """(kernel, stride, padding) of the transposed conv that undoes a stride-s reduction."""
    return {1: (3, 1, 1), 2: (4, 2, 1), 4: (8, 4, 2)}[stride]


def local_fused(channels, fusion_threshold, unfused):
    return channels < fusion_threshold and not unfused


def attention_prenorm(attention, mlp):
    """GroupNorm before the attention: present only with the MLP (a reference quirk), and never
    for LiteMLA, whose normalisation sits after its projection."""
    return mlp and attention in ("lowtention", "mhsa")


def reduced_side(size, stride):
    """Side after a depthwise conv with odd kernel, padding k//2 and the given stride."""
    return (size - 1) // stride + 1


def stride2_side(size):
    """Side after a 3x3 stride-2 conv with padding 1."""
    return (size - 1) // 2 + 1
