"""The LowFormer design space as a typed, frozen config.

Every knob is validated on construction; an invalid value raises :class:`KnobError` naming the
knob, the value and the allowed range. ``LowFormerConfig.from_dict(cfg.to_dict()) == cfg`` and the
architecture id (:func:`search_spaces.base.arch_id`) depends only on the architecture, not on key
order or on defaults being spelled out.

A config is canonical from construction on: a knob the network does not use (any knob of a stage
without blocks; stride, kernel, compression and head width without attention; a kernel without a
depthwise conv; the MLP ratio without MLP; the stem expansion without stem blocks; the block
expansion without such blocks; the fusion threshold in the unfused ablation) takes the default's
value, and values equivalent to others (compressions and head widths that give the same heads,
which makes compression 1 for the attention types that keep the full width; fusion thresholds that
fuse the same stages) take the first equivalent one (see :func:`canonical_stage`; thresholds: the
default, then the sampled values). Equal networks are then equal configs with one id.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from search_spaces.base import (
    KnobError,
    arch_id,
    check_bool,
    check_choice,
    check_int,
    check_int_tuple,
    first_equivalent,
    unknown_keys,
)
from search_spaces.blocks.mixers import MIXERS
from search_spaces.blocks.mixers.group_attention import DEFAULT_GROUP_TOKENS
from search_spaces.blocks.mixers.lite_mla import DEFAULT_SCALES
from search_spaces.blocks.rules import quadratic_attention, stride2_side
from search_spaces.lowformer import rules
from search_spaces.lowformer.optable import lowformer_block_runs

#: every registered token mixer, or none
ATTENTION_TYPES = (*MIXERS, "none")
#: attention types that run at the full stage resolution only
FULL_RESOLUTION_ATTENTION = tuple(name for name, spec in MIXERS.items() if spec.full_resolution)
SCALE_KERNELS = (3, 5, 7)
GROUP_TOKENS = (4, 8, 16)
#: knobs that exist only for one attention type -> (that type, the value kept for the others)
TYPE_KNOBS = {spec.knob[0]: (name, spec.knob[1]) for name, spec in MIXERS.items() if spec.knob}
ATTENTION_STRIDES = (1, 2, 4)
ATTENTION_KERNELS = (3, 5, 7)
COMPRESSIONS = (1.0, 0.5, 0.25)
#: attention types with a depthwise conv of ``attention_kernel`` at stride 1 too (mhsa and rlmhsa
#: have one only when they reduce; the multi-scale and group attentions never)
KERNEL_AT_STRIDE_1 = ("lowtention", "relu-linear")
#: the head widths and fusion thresholds the knob table samples: canonical values come first from them
HEAD_DIM_STEPS = (16, 30, 64)
FUSION_THRESHOLD_STEPS = (0, 128, 192, 256, 384, 4096)

WIDTH_RANGES = ((8, 128), (8, 256), (8, 512), (16, 1024), (16, 2048))
DEPTH_RANGES = ((0, 4), (1, 8), (1, 12), (0, 16), (0, 16))
EXPANSION_RANGE = (1, 8)
FUSION_THRESHOLD_RANGE = (0, 4096)
HEAD_DIM_RANGE = (8, 128)
MLP_RATIO_RANGE = (1, 8)
HEAD_WIDTH_RANGE = (16, 8192)
NUM_CLASSES_RANGE = (1, 100_000)
RESOLUTION_RANGE = (32, 1024)


def _check_scales(knob: str, value: Any) -> tuple[int, ...]:
    allowed = f"a strictly increasing list of kernels from {list(SCALE_KERNELS)} (may be empty)"
    if not isinstance(value, (list, tuple)):
        raise KnobError(knob, value, allowed)
    scales = tuple(value)
    if any(s not in SCALE_KERNELS or isinstance(s, bool) for s in scales) or list(scales) != sorted(set(scales)):
        raise KnobError(knob, value, allowed)
    return scales


@dataclass(frozen=True)
class TransformerStage:
    """Token-mixer knobs of one LowFormer stage (stage 3 or 4).

    attention: ``lowtention`` (the paper's conv attention), ``mhsa`` (plain multi-head
        self-attention with 1x1 q, k, v, o projections), ``relu-linear`` (the paper's ablation:
        EfficientViT's LiteMLA with one aggregation branch), ``relu-linear-ms`` (EfficientViT-B's
        multi-scale LiteMLA, aggregation kernels ``scales``), ``rlmhsa`` (FMViT's
        shared-projection attention: BN, K = V = W X, Q = X), ``group-attention`` (MCGA: 3x3 and
        5x5 local queries attend to ``group_tokens`` learned tokens) or ``none``.
    attention_stride: stride of the depthwise down-sampling before attention, 1, 2 or 4
        (the attention then runs at 1/stride of the stage resolution). ``relu-linear``,
        ``relu-linear-ms`` and ``group-attention`` need 1; for ``rlmhsa`` a stride above 1 is an
        extension of ours (the paper runs it at full resolution).
    attention_kernel: kernel of that depthwise conv (for ``relu-linear``: of its aggregation
        branch), 3, 5 or 7.
    compression: channel compression m of q, k, v, 1, 1/2 or 1/4 (the reference applies 1/2);
        used by lowtention, mhsa and relu-linear.
    head_dim: target width per head: heads = max(1, floor(C*m / head_dim)) and, for lowtention
        and mhsa, the actual head width is floor(floor(C / heads) * m) as in the reference;
        for relu-linear it is exactly head_dim (EfficientViT uses 16); relu-linear-ms has
        C // head_dim heads of head_dim; rlmhsa and group-attention the most heads up to
        C // head_dim that divide C. 8 to 128, reference 30.
    scales: aggregation kernels of ``relu-linear-ms``, a strictly increasing subset of
        (3, 5, 7); EfficientViT-B uses (5,). Only present in that type's configs.
    group_tokens: G of ``group-attention``, 4, 8 (MCGA) or 16. Only present in that type's configs.
    mlp: whether the block has its MLP (1x1, GELU, 1x1) with pre-GroupNorm. Without it the
        attention loses its pre-GroupNorm too (a quirk of the reference, kept).
    mlp_ratio: hidden width of the MLP as a multiple of C, 1 to 8 (reference 4).
    """

    attention: str = "lowtention"
    attention_stride: int = 2
    attention_kernel: int = 5
    compression: float = 0.5
    head_dim: int = 30
    mlp: bool = True
    mlp_ratio: int = 4
    scales: tuple[int, ...] = DEFAULT_SCALES
    group_tokens: int = DEFAULT_GROUP_TOKENS

    def __post_init__(self) -> None:
        self._validate("stage")

    def _validate(self, prefix: str) -> None:
        check_choice(f"{prefix}.attention", self.attention, ATTENTION_TYPES)
        check_choice(f"{prefix}.attention_stride", self.attention_stride, ATTENTION_STRIDES)
        check_choice(f"{prefix}.attention_kernel", self.attention_kernel, ATTENTION_KERNELS)
        object.__setattr__(
            self, "compression", check_choice(f"{prefix}.compression", self.compression, COMPRESSIONS)
        )
        check_int(f"{prefix}.head_dim", self.head_dim, *HEAD_DIM_RANGE)
        check_bool(f"{prefix}.mlp", self.mlp)
        check_int(f"{prefix}.mlp_ratio", self.mlp_ratio, *MLP_RATIO_RANGE)
        object.__setattr__(self, "scales", _check_scales(f"{prefix}.scales", self.scales))
        check_choice(f"{prefix}.group_tokens", self.group_tokens, GROUP_TOKENS)
        if self.attention in FULL_RESOLUTION_ATTENTION and self.attention_stride != 1:
            raise KnobError(
                f"{prefix}.attention_stride", self.attention_stride,
                f"1 when attention is {self.attention!r} (it runs at the full stage resolution)",
            )
        for knob, (kind, default) in TYPE_KNOBS.items():  # another type's knob has no effect
            if self.attention != kind:
                object.__setattr__(self, knob, default)

    def to_dict(self) -> dict[str, Any]:
        """The knobs, without those that only another attention type has (so that adding a
        type leaves every existing architecture id unchanged)."""
        out = dataclasses.asdict(self)
        for knob, (kind, _) in TYPE_KNOBS.items():
            if self.attention == kind:
                out[knob] = list(out[knob]) if isinstance(out[knob], tuple) else out[knob]
            else:
                del out[knob]
        return out

    @property
    def has_attention(self) -> bool:
        return self.attention != "none"

    @property
    def attention_prenorm(self) -> bool:
        return rules.attention_prenorm(self.attention, self.mlp)

    def heads_and_dim(self, channels: int) -> tuple[int, int]:
        """(heads, head width) of the attention at ``channels`` channels."""
        return rules.heads_and_dim(channels, self.attention, self.compression, self.head_dim)

    @classmethod
    def from_dict(cls, knobs: dict[str, Any], prefix: str, defaults: TransformerStage) -> TransformerStage:
        if not isinstance(knobs, dict):
            raise KnobError(prefix, knobs, "an object of stage knobs")
        unknown = sorted(set(knobs) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise KnobError(f"{prefix}.{unknown[0]}", knobs[unknown[0]],
                            "a stage knob: " + ", ".join(f.name for f in dataclasses.fields(cls)))
        try:
            return dataclasses.replace(defaults, **knobs)
        except KnobError as err:
            raise KnobError(err.knob.replace("stage.", f"{prefix}.", 1), err.value, err.allowed) from None


STAGE3_DEFAULT = TransformerStage(attention_stride=2, attention_kernel=5)
STAGE4_DEFAULT = TransformerStage(attention_stride=1, attention_kernel=3)


def canonical_stage(stage: TransformerStage, default: TransformerStage, channels: int, depth: int,
                    side: int) -> TransformerStage:
    """``stage`` with every knob its ``depth`` blocks of ``channels`` on a ``side`` x ``side`` grid
    do not use at ``default``'s value and (compression, head width) the first pair that gives
    the same heads of the same width, compression from none (1) down (so the attention types that
    keep the full width show 1) and the default head width first (a stage without blocks is
    ``default``). Single-scale LiteMLA where it never takes its N x N form is the linear ablation
    with that kernel: the same module, weights and ops."""
    if depth == 0:
        return default
    if (stage.attention == "relu-linear-ms" and len(stage.scales) == 1
            and not quadratic_attention(side * side, stage.head_dim)):
        stage = dataclasses.replace(stage, attention="relu-linear", attention_kernel=stage.scales[0], compression=1.0)
    kind = stage.attention
    unused = set() if stage.mlp else {"mlp_ratio"}
    if kind == "none":
        unused |= {"attention_stride", "attention_kernel", "compression", "head_dim"}
    elif kind not in KERNEL_AT_STRIDE_1 and stage.attention_stride == 1:
        unused.add("attention_kernel")
    changes = {knob: getattr(default, knob) for knob in unused}
    if kind != "none":  # compression and head width act through the heads and their width only
        candidates = itertools.chain(  # no compression first; the default and sampled widths, then all
            itertools.product(COMPRESSIONS, (default.head_dim, *HEAD_DIM_STEPS)),
            itertools.product(COMPRESSIONS, range(HEAD_DIM_RANGE[0], HEAD_DIM_RANGE[1] + 1)))
        changes["compression"], changes["head_dim"] = first_equivalent(
            (stage.compression, stage.head_dim), candidates, lambda knobs: rules.heads_and_dim(channels, kind, *knobs))
    changes = {knob: value for knob, value in changes.items() if getattr(stage, knob) != value}
    return dataclasses.replace(stage, **changes) if changes else stage


@dataclass(frozen=True)
class LowFormerConfig:
    """One architecture of the LowFormer space (defaults: LowFormer-B1 at 224x224).

    widths: channels C0..C4 of the stem and stages 1-4.
    depths: L0..L4. L0 residual blocks after the stem conv; stages 1 and 2 have L blocks in
        total including the strided one (L >= 1); stages 3 and 4 have one strided fused MBConv
        plus L LowFormer blocks.
    stem_expansion: expansion of the stage-0 residual blocks (reference 2, 4 for B3/E2/E3).
    downsample_expansion: expansion of every stride-2 block of stages 1-4, relative to its input
        channels (reference 6, 4 for B0).
    block_expansion: expansion of the stride-1 stage 1/2 blocks and of the local conv module of
        every LowFormer block (reference 4).
    fusion_threshold: the local conv module of a LowFormer block is a fused MBConv when its
        channels are below this, an unfused MBConv otherwise (reference 256).
    stage3, stage4: token-mixer knobs, see :class:`TransformerStage`.
    unfused: the unfused-everywhere ablation: every fused MBConv becomes an MBConv and the
        attention's output projection is un-fused (1x1 conv + depthwise transposed conv).
    head_widths: (W0, W1) of the classification head; (1536, 1600) or (2304, 2560) in the paper.
    num_classes: classifier outputs.
    resolution: input side in pixels.
    """

    space: ClassVar[str] = "lowformer"

    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    depths: tuple[int, ...] = (0, 1, 1, 5, 5)
    stem_expansion: int = 2
    downsample_expansion: int = 6
    block_expansion: int = 4
    fusion_threshold: int = 256
    stage3: TransformerStage = field(default=STAGE3_DEFAULT)
    stage4: TransformerStage = field(default=STAGE4_DEFAULT)
    unfused: bool = False
    head_widths: tuple[int, ...] = (1536, 1600)
    num_classes: int = 1000
    resolution: int = 224

    def __post_init__(self) -> None:
        if not isinstance(self.widths, (list, tuple)) or len(self.widths) != 5:
            raise KnobError("widths", self.widths, "a list of 5 integers C0..C4")
        if not isinstance(self.depths, (list, tuple)) or len(self.depths) != 5:
            raise KnobError("depths", self.depths, "a list of 5 integers L0..L4")
        widths = tuple(check_int(f"widths[{i}]", w, *r) for i, (w, r) in enumerate(zip(self.widths, WIDTH_RANGES)))
        depths = tuple(check_int(f"depths[{i}]", d, *r) for i, (d, r) in enumerate(zip(self.depths, DEPTH_RANGES)))
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "depths", depths)
        check_int("stem_expansion", self.stem_expansion, *EXPANSION_RANGE)
        check_int("downsample_expansion", self.downsample_expansion, *EXPANSION_RANGE)
        check_int("block_expansion", self.block_expansion, *EXPANSION_RANGE)
        check_int("fusion_threshold", self.fusion_threshold, *FUSION_THRESHOLD_RANGE)
        for name in ("stage3", "stage4"):
            stage = getattr(self, name)
            if not isinstance(stage, TransformerStage):
                raise KnobError(name, stage, "a TransformerStage")
            stage._validate(name)
        check_bool("unfused", self.unfused)
        object.__setattr__(self, "head_widths", check_int_tuple("head_widths", self.head_widths, 2, *HEAD_WIDTH_RANGE))
        check_int("num_classes", self.num_classes, *NUM_CLASSES_RANGE)
        check_int("resolution", self.resolution, *RESOLUTION_RANGE)
        self._canonicalise()

    def _canonicalise(self) -> None:
        """Set every knob the network does not use, or uses only through an equivalence class,
        to its canonical value (see module docstring)."""
        widths, depths = self.widths, self.depths
        side = self.resolution
        for _ in range(3):  # the stem and stages 1 and 2 halve the grid
            side = stride2_side(side)
        for i, name, default in ((3, "stage3", STAGE3_DEFAULT), (4, "stage4", STAGE4_DEFAULT)):
            side = stride2_side(side)
            object.__setattr__(self, name, canonical_stage(getattr(self, name), default, widths[i], depths[i], side))
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if depths[0] == 0:
            object.__setattr__(self, "stem_expansion", defaults["stem_expansion"])
        if depths[1] == depths[2] == 1 and depths[3] == depths[4] == 0:
            object.__setattr__(self, "block_expansion", defaults["block_expansion"])
        blocks = [widths[i] for i in (3, 4) if depths[i]]
        fused = [c for c in blocks if c < self.fusion_threshold]
        lowest = max(fused, default=-1) + 1  # the lowest threshold that fuses the same stages
        object.__setattr__(self, "fusion_threshold", first_equivalent(
            self.fusion_threshold, (defaults["fusion_threshold"], *FUSION_THRESHOLD_STEPS, lowest),
            lambda t: tuple(rules.local_fused(c, t, self.unfused) for c in blocks)))

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["stage3"], out["stage4"] = self.stage3.to_dict(), self.stage4.to_dict()
        out["widths"], out["depths"] = list(self.widths), list(self.depths)
        out["head_widths"] = list(self.head_widths)
        return out

    @classmethod
    def from_dict(cls, knobs: dict[str, Any]) -> LowFormerConfig:
        if not isinstance(knobs, dict):
            raise KnobError("config", knobs, "a JSON object of LowFormer knobs")
        if knobs.get("space", cls.space) != cls.space:
            raise KnobError("space", knobs["space"], f"'{cls.space}'")
        unknown_keys(knobs, cls)
        values = {k: v for k, v in knobs.items() if k != "space"}
        values["stage3"] = TransformerStage.from_dict(values.get("stage3", {}), "stage3", STAGE3_DEFAULT)
        values["stage4"] = TransformerStage.from_dict(values.get("stage4", {}), "stage4", STAGE4_DEFAULT)
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps({"space": self.space, **self.to_dict()}, indent=2, sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | Path) -> LowFormerConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- derived views -------------------------------------------------------------------------

    @property
    def arch_id(self) -> str:
        return arch_id(self)

    def with_resolution(self, resolution: int) -> LowFormerConfig:
        return dataclasses.replace(self, resolution=resolution)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, self.resolution, self.resolution)

    def stage(self, index: int) -> TransformerStage:
        return self.stage3 if index == 3 else self.stage4

    def local_fused(self, channels: int) -> bool:
        return rules.local_fused(channels, self.fusion_threshold, self.unfused)

    def build(self):
        from search_spaces.lowformer.network import LowFormer

        return LowFormer(self.to_dict()).eval()

    def op_table(self):
        from search_spaces.lowformer.optable import lowformer_op_table

        return lowformer_op_table(self)

    def op_block_runs(self):
        """The op table as runs of distinct blocks with their repeats (fast features)."""
        return lowformer_block_runs(self)
