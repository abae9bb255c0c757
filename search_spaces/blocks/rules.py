"""Derivation rules of the shared building blocks, used by their modules, op tables and the
families that compose them.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""

#: (bias, BatchNorm) of the first two convs of each MBConv variant; the last conv always has BN
MBCONV_VARIANTS = {"full": (False, True), "local": (True, False), "plain": (False, False)}

#: MCGA's group attention as a LowFormer token mixer: the paper's kernel pair and token-MLP ratio
GROUP_ATTENTION_KERNELS = (3, 5)
GROUP_ATTENTION_TOKEN_RATIO = 4


def expanded(channels, expansion):
    """Hidden width of an (fused) MBConv: relative to its input channels, as in the reference."""
    return int(round(channels * expansion))


def quadratic_attention(tokens, dim):
    """LiteMLA switches to the (equivalent) N x N form when there are no more tokens than dim."""
    return tokens <= dim


def transposed_geometry(stride):
    """(kernel, stride, padding) of the transposed conv that undoes a stride-s reduction."""
    return {1: (3, 1, 1), 2: (4, 2, 1), 4: (8, 4, 2)}[stride]


def stride2_side(size):
    """Side after a 3x3 stride-2 conv with padding 1."""
    return (size - 1) // 2 + 1


def pointwise_groups(c_in, c_out, multi_groups):
    """The multi-group branches of a train-time 1x1 conv: every G dividing both widths."""
    return tuple(g for g in multi_groups if c_in % g == 0 and c_out % g == 0)


def query_projection(projection):
    return projection in ("query", "both")


def fusion_projection(projection):
    return projection in ("fusion", "both")
