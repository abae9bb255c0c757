"""Derivation rules of the LowFormer reference, shared by the config, the builder and the op table.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""


#: (bias, BatchNorm) of the first two convs of each MBConv variant; the last conv always has BN
MBCONV_VARIANTS = {"full": (False, True), "local": (True, False), "plain": (False, False)}

#: MCGA's group attention as a LowFormer token mixer: the paper's kernel pair and token-MLP ratio
GROUP_ATTENTION_KERNELS = (3, 5)
GROUP_ATTENTION_TOKEN_RATIO = 4

#: token mixers that keep the full width C (no channel compression) and split it into heads
FULL_WIDTH_ATTENTION = ("rlmhsa", "group-attention")


def expanded(channels, expansion):
    """Hidden width of an (fused) MBConv: relative to its input channels, as in the reference."""
    return int(round(channels * expansion))


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


def quadratic_attention(tokens, dim):
    """LiteMLA switches to the (equivalent) N x N form when there are no more tokens than dim."""
    return tokens <= dim


def transposed_geometry(stride):
    """(kernel, stride, padding) of the transposed conv that undoes a stride-s reduction."""
    return {1: (3, 1, 1), 2: (4, 2, 1), 4: (8, 4, 2)}[stride]


def local_fused(channels, fusion_threshold, unfused):
    return channels < fusion_threshold and not unfused


def attention_prenorm(attention, mlp):
    """GroupNorm before the attention: present only with the MLP (a reference quirk), and never
    for LiteMLA, whose normalisation sits after its projection, nor RLMHSA, which has its own BN."""
    return mlp and attention in ("lowtention", "mhsa", "group-attention")


def reduced_side(size, stride):
    """Side after a depthwise conv with odd kernel, padding k//2 and the given stride."""
    return (size - 1) // stride + 1


def stride2_side(size):
    """Side after a 3x3 stride-2 conv with padding 1."""
    return (size - 1) // 2 + 1
