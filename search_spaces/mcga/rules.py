"""Derivation rules of the MCGA family, shared by the config, the builder and the op table.

Pure functions of plain values (no torch, no config classes), so that an exported ``model.py``
can carry them verbatim.
"""

#: where the d x d projections of the two local-query branches sit
PROJECTIONS = ("fusion", "query", "both")
PATCH_EMBEDS = ("non-overlapping", "overlapping")


def patch_geometry(stage, patch_embed):
    """(kernel, stride, padding) of a stage's patch embedding: stride 4 for stage 1, 2 after.

    ``non-overlapping`` is PVT's kernel = stride; ``overlapping`` uses 7x7 then 3x3 kernels.
    """
    stride = 4 if stage == 1 else 2
    if patch_embed == "non-overlapping":
        return stride, stride, 0
    kernel = 7 if stage == 1 else 3
    return kernel, stride, kernel // 2


def conv_side(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1
