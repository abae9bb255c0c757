"""The MCGA design space as a typed, frozen config.

Every knob is validated on construction; an invalid value raises :class:`KnobError` naming the
knob, the value and the allowed range. The defaults are the paper-literal reading at 224x224.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.base import KnobError, check_choice, check_int
from search_spaces.blocks.config import ConfigMixin
from search_spaces.mcga.rules import PATCH_EMBEDS, PROJECTIONS

DIM_RANGES = ((8, 256), (8, 512), (8, 1024), (8, 2048))
DEPTH_RANGES = ((1, 8), (1, 8), (1, 24), (1, 24))
HEAD_WIDTH_RANGE = (8, 128)
GROUP_TOKENS = (4, 8, 16)
KERNEL_SETS = ((3, 5), (3, 7), (5, 7), (3,), (5,), (7,))
TOKEN_MLP_RATIOS = (0, 2, 4)
MLP_RATIOS = (2, 3, 4)
CLASSIFIER_HIDDEN_RANGE = (0, 8192)
NUM_CLASSES_RANGE = (1, 100_000)
RESOLUTION_RANGE = (32, 1024)


def _check_list(knob: str, value: Any, length: int) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise KnobError(knob, value, f"a list of {length} integers")
    return tuple(value)


@dataclass(frozen=True)
class MCGAConfig(ConfigMixin):
    """One architecture of the MCGA space (defaults: the paper-literal reading at 224x224).

    dims: channels d1..d4 of the four stages (strides 4, 8, 16, 32).
    depths: MCGA blocks per stage.
    heads: attention heads per stage; each must divide its dim into heads of 8 to 128 channels.
    group_tokens: G learnable group tokens, 4, 8 (paper) or 16.
    kernels: depthwise kernels of the local-query branches: [3, 5] (paper), [3, 7], [5, 7] or
        a single [3], [5] or [7].
    projection: where each branch's d x d projection sits: ``fusion`` (after its
        cross-attention, the literal reading), ``query`` (on its local queries) or ``both``.
    token_mlp_ratio: hidden ratio of the token MLP over the G group tokens; 0 is one Linear.
    mlp_ratio: hidden ratio of the block MLP, 2, 3 or 4 (paper).
    patch_embed: ``non-overlapping`` (kernel = stride, PVT) or ``overlapping`` (7x7 then 3x3).
    classifier_hidden: hidden width of a two-layer classifier (GELU), 0 for a single Linear.
    num_classes: classifier outputs.
    resolution: input side in pixels.
    """

    space: ClassVar[str] = "mcga"

    dims: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (2, 2, 6, 6)
    heads: tuple[int, ...] = (2, 2, 4, 8)
    group_tokens: int = 8
    kernels: tuple[int, ...] = (3, 5)
    projection: str = "fusion"
    token_mlp_ratio: int = 4
    mlp_ratio: int = 4
    patch_embed: str = "non-overlapping"
    classifier_hidden: int = 0
    num_classes: int = 1000
    resolution: int = 224

    def __post_init__(self) -> None:
        dims = tuple(check_int(f"dims[{i}]", d, *r)
                     for i, (d, r) in enumerate(zip(_check_list("dims", self.dims, 4), DIM_RANGES)))
        depths = tuple(check_int(f"depths[{i}]", d, *r)
                       for i, (d, r) in enumerate(zip(_check_list("depths", self.depths, 4), DEPTH_RANGES)))
        heads = tuple(check_int(f"heads[{i}]", h, 1, 64) for i, h in enumerate(_check_list("heads", self.heads, 4)))
        low, high = HEAD_WIDTH_RANGE
        for i, (d, h) in enumerate(zip(dims, heads)):
            if d % h or not low <= d // h <= high:
                raise KnobError(f"heads[{i}]", h,
                                f"a divisor of dims[{i}]={d} leaving {low} to {high} channels per head")
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "heads", heads)
        check_choice("group_tokens", self.group_tokens, GROUP_TOKENS)
        if not isinstance(self.kernels, (list, tuple)) or tuple(self.kernels) not in KERNEL_SETS:
            raise KnobError("kernels", self.kernels, "one of " + ", ".join(str(list(k)) for k in KERNEL_SETS))
        object.__setattr__(self, "kernels", tuple(self.kernels))
        check_choice("projection", self.projection, PROJECTIONS)
        check_choice("token_mlp_ratio", self.token_mlp_ratio, TOKEN_MLP_RATIOS)
        check_choice("mlp_ratio", self.mlp_ratio, MLP_RATIOS)
        check_choice("patch_embed", self.patch_embed, PATCH_EMBEDS)
        check_int("classifier_hidden", self.classifier_hidden, *CLASSIFIER_HIDDEN_RANGE)
        check_int("num_classes", self.num_classes, *NUM_CLASSES_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)

    def build(self):
        from search_spaces.mcga.network import MCGA

        return MCGA(self.to_dict()).eval()

    def op_table(self):
        from search_spaces.mcga.optable import mcga_op_table

        return mcga_op_table(self)
