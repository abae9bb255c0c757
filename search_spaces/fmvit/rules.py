"""Derivation rules of the FMViT family, shared by the config, the builder and the op table.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""

FORMS = ("inference", "train")
MULTI_GROUPS = (2, 4, 8)

#: train-time extra branches (kernel_h, kernel_w) of the stem's dense 3x3 conv (ACNet-style)
STEM_ASYMMETRIC = ((3, 1), (1, 3))


def rlmhsa_heads(channels, head_dim):
    """max(1, C // head_dim) heads; C < head_dim gives one head of C channels."""
    return max(1, channels // head_dim)


def fmb_width(fm_width, cfbs):
    """Output channels of an FMB: its input projection, each CFB and the attention, concatenated."""
    return (cfbs + 2) * fm_width


def pooled_side(size):
    """Side after AvgPool2d(2, 2, ceil_mode=True)."""
    return (size + 1) // 2

