"""The LowFormer block in plain PyTorch (imports torch only, so exports can carry it).

It composes the shared blocks (:mod:`search_spaces.blocks`): the conv layers and MBConv
variants and, as its attention, any token mixer of :mod:`search_spaces.blocks.mixers`. Names
follow the reference because state-dict keys are an interface. Each reference quirk lives in
one place: the redundant bias before BN in the local fused MBConv (``FusedMBConv(bias1=True)``),
the bias-without-BN MBConv of the local module (``MBConv(variant="local")``), and the missing
attention pre-norm without an MLP (``LowFormerBlock``).
"""

from torch import nn

from search_spaces.blocks.mixers.modules import (
    GroupAttention,
    LiteMLA,
    Lowtention,
    MultiHeadSelfAttention,
    ReducedResolution,
    SharedProjectionAttention,
)
from search_spaces.blocks.modules import FusedMBConv, MBConv
from search_spaces.blocks.rules import expanded
from search_spaces.lowformer.rules import attention_prenorm, heads_and_dim


def conv_block(c_in, c_out, stride, mid, unfused):
    """A stem/stage/downsampling block: fused MBConv, or MBConv in the unfused ablation."""
    if unfused:
        return MBConv(c_in, c_out, stride, mid, variant="plain")
    return FusedMBConv(c_in, c_out, stride, mid)


class MLP(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels * ratio, 1, bias=True)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(channels * ratio, channels, 1, bias=True)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def token_mixer(channels, stage, unfused):
    """The attention module of a LowFormer block from its stage knobs (a dict)."""
    heads, dim = heads_and_dim(channels, stage["attention"], stage["compression"], stage["head_dim"])
    kind, stride, kernel = stage["attention"], stage["attention_stride"], stage["attention_kernel"]
    if kind == "lowtention":
        return Lowtention(channels, heads, dim, stride, kernel, unfused)
    if kind == "mhsa":
        return MultiHeadSelfAttention(channels, heads, dim, stride, kernel)
    if kind == "relu-linear":
        return LiteMLA(channels, heads, dim, (kernel,), quadratic=False)
    if kind == "relu-linear-ms":
        return LiteMLA(channels, heads, dim, tuple(stage["scales"]))
    if kind == "group-attention":
        return GroupAttention(channels, heads, stage["group_tokens"])
    if kind == "rlmhsa":
        mixer = SharedProjectionAttention(channels, heads)
        return ReducedResolution(mixer, channels, stride, kernel) if stride > 1 else mixer
    raise ValueError(f"unknown attention type {kind!r}")


class LowFormerBlock(nn.Module):
    """x += attention(prenorm(x)); x += MLP(GN(x)); x += local(x), each part optional but local."""

    def __init__(self, channels, stage, fused_local, expansion, unfused):
        super().__init__()
        has_attention = stage["attention"] != "none"
        self.attention = token_mixer(channels, stage, unfused) if has_attention else None
        prenorm = has_attention and attention_prenorm(stage["attention"], stage["mlp"])
        self.attention_norm = nn.GroupNorm(1, channels) if prenorm else nn.Identity()
        self.mlp_norm = nn.GroupNorm(1, channels) if stage["mlp"] else None
        self.mlp = MLP(channels, stage["mlp_ratio"]) if stage["mlp"] else None
        mid = expanded(channels, expansion)
        if fused_local:
            self.local = FusedMBConv(channels, channels, 1, mid, bias1=True)
        else:
            self.local = MBConv(channels, channels, 1, mid, variant="local")

    def forward(self, x):
        if self.attention is not None:
            x = x + self.attention(self.attention_norm(x))
        if self.mlp is not None:
            x = x + self.mlp(self.mlp_norm(x))
        return x + self.local(x)
