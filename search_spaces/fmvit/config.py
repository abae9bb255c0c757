"""The FMViT design space as a typed, frozen config.

Every knob is validated on construction; an invalid value raises :class:`KnobError` naming the
knob, the value and the allowed range. ``form`` selects the training form (with its
reparameterisation branches) or the fused inference form; :meth:`FMViTConfig.fused` maps the
former to the latter, whose network ``FMViT.fuse()`` produces from a trained model. The inference
form's ``multi_groups`` take their default, and ``head_dim`` the first of the default and the other
values that gives the same heads, so that one network has one config and one architecture id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces.base import KnobError, check_bool, check_choice, check_int, first_equivalent
from search_spaces.blocks.config import ConfigMixin
from search_spaces.fmvit import rules

WIDTH_RANGE = (8, 2048)
DEPTH_RANGE = (0, 16)
FMB_CFBS_RANGE = (1, 6)
MLP_RATIOS = (2, 3, 4)
HEAD_DIMS = (16, 32, 64)
NUM_CLASSES_RANGE = (1, 100_000)
RESOLUTION_RANGE = (32, 1024)


def _check_widths(knob: str, value: Any, length: int, multiple: int = 1) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise KnobError(knob, value, f"a list of {length} integers")
    widths = tuple(check_int(f"{knob}[{i}]", v, *WIDTH_RANGE) for i, v in enumerate(value))
    for i, v in enumerate(widths):
        if v % multiple:
            raise KnobError(f"{knob}[{i}]", v, f"a multiple of {multiple}")
    return widths


@dataclass(frozen=True)
class FMViTConfig(ConfigMixin):
    """One architecture of the FMViT space (defaults: FMViT-T, inference form, at 224x224).

    stem_widths: (c1, c3): outputs of the stem's 3x3 and depthwise convs, and of its 1x1 conv.
    embed_widths: a1..a4, output of each stage's patch embedding (stride 2 from stage 2 on).
    block_widths: b1..b4, width of each stage's CFBs (a 1x1 conv maps a to b when they differ).
    fm_widths: F of the FMB ending stages 2-4 (multiples of 16); the stage outputs
        (fmb_cfbs + 2) * F channels.
    depths: n1..n4, CFBs per stage before the FMB.
    fmb_cfbs: chained CFBs inside each FMB (paper: 3).
    mlp_ratio: hidden ratio r of every ConvMLP ("gMLP"), 2 (paper), 3 or 4.
    head_dim: RLMHSA heads are max(1, F // head_dim), each F / heads wide; 16, 32 (paper) or 64.
    out_proj: an output 1x1 projection after RLMHSA (the paper has none).
    form: ``inference`` (fused) or ``train`` (reparameterisation branches).
    multi_groups: the train-time multi-group set of every 1x1 conv, a subset of {2, 4, 8}
        (default {2, 4}); does not change the inference form.
    num_classes: classifier outputs.
    resolution: input side in pixels.
    """

    space: ClassVar[str] = "fmvit"

    stem_widths: tuple[int, ...] = (32, 32)
    embed_widths: tuple[int, ...] = (32, 32, 80, 160)
    block_widths: tuple[int, ...] = (32, 64, 128, 192)
    fm_widths: tuple[int, ...] = (16, 32, 64)
    depths: tuple[int, ...] = (3, 3, 3, 3)
    fmb_cfbs: int = 3
    mlp_ratio: int = 2
    head_dim: int = 32
    out_proj: bool = False
    form: str = "inference"
    multi_groups: tuple[int, ...] = (2, 4)
    num_classes: int = 1000
    resolution: int = 224

    def __post_init__(self) -> None:
        object.__setattr__(self, "stem_widths", _check_widths("stem_widths", self.stem_widths, 2))
        object.__setattr__(self, "embed_widths", _check_widths("embed_widths", self.embed_widths, 4))
        object.__setattr__(self, "block_widths", _check_widths("block_widths", self.block_widths, 4))
        object.__setattr__(self, "fm_widths", _check_widths("fm_widths", self.fm_widths, 3, multiple=16))
        if not isinstance(self.depths, (list, tuple)) or len(self.depths) != 4:
            raise KnobError("depths", self.depths, "a list of 4 integers")
        object.__setattr__(self, "depths", tuple(check_int(f"depths[{i}]", d, *DEPTH_RANGE)
                                                 for i, d in enumerate(self.depths)))
        check_int("fmb_cfbs", self.fmb_cfbs, *FMB_CFBS_RANGE)
        check_choice("mlp_ratio", self.mlp_ratio, MLP_RATIOS)
        check_choice("head_dim", self.head_dim, HEAD_DIMS)
        for i, f in enumerate(self.fm_widths):
            heads = rules.rlmhsa_heads(f, self.head_dim)
            if f % heads:
                raise KnobError(f"fm_widths[{i}]", f,
                                f"a multiple of its {heads} RLMHSA heads (head_dim={self.head_dim})")
        check_bool("out_proj", self.out_proj)
        check_choice("form", self.form, rules.FORMS)
        groups = self.multi_groups
        if not isinstance(groups, (list, tuple)) or any(g not in rules.MULTI_GROUPS or isinstance(g, bool)
                                                          for g in groups) or len(set(groups)) != len(groups):
            raise KnobError("multi_groups", groups, "distinct values from " + ", ".join(map(str, rules.MULTI_GROUPS)))
        object.__setattr__(self, "multi_groups", tuple(sorted(groups)))
        check_int("num_classes", self.num_classes, *NUM_CLASSES_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        if self.form == "inference":  # the multi-group branches exist at training time only
            object.__setattr__(self, "multi_groups", type(self).multi_groups)
        object.__setattr__(self, "head_dim", first_equivalent(
            self.head_dim, (type(self).head_dim, *HEAD_DIMS),
            lambda hd: tuple(rules.rlmhsa_heads(f, hd) for f in self.fm_widths)))

    def stage_widths(self) -> tuple[int, ...]:
        """Output channels of stages 1-4."""
        return (self.block_widths[0],) + tuple(rules.fmb_width(f, self.fmb_cfbs) for f in self.fm_widths)

    def fused(self) -> FMViTConfig:
        """The inference form of this architecture (what ``FMViT.fuse()`` returns)."""
        return dataclasses.replace(self, form="inference")

    def trainable(self) -> FMViTConfig:
        return dataclasses.replace(self, form="train")

    def build(self):
        from search_spaces.fmvit.network import FMViT

        return FMViT(self.to_dict()).eval()

    def op_table(self):
        from search_spaces.fmvit.optable import fmvit_op_table

        return fmvit_op_table(self)
