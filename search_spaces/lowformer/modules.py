"""LowFormer building blocks in plain PyTorch (imports torch only, so exports can carry it).

Names follow the reference (``spatial_conv``, ``inverted_conv``, ``depth_conv``, ``point_conv``,
``conv``/``norm``/``act``) because state-dict keys are an interface. Each reference quirk lives
in one place: the redundant bias before BN in the local fused MBConv (``FusedMBConv(bias1=True)``),
the bias-without-BN MBConv of the local module (``MBConv(variant="local")``), and the missing
attention pre-norm without an MLP (``LowFormerBlock``). The other families' token mixers
(FMViT's shared-projection attention, MCGA's group attention) come from their own modules.
"""

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.fmvit.modules import SharedProjectionAttention
from search_spaces.lowformer.rules import (
    GROUP_ATTENTION_KERNELS,
    GROUP_ATTENTION_TOKEN_RATIO,
    MBCONV_VARIANTS,
    attention_prenorm,
    expanded,
    heads_and_dim,
    quadratic_attention,
    transposed_geometry,
)
from search_spaces.mcga.modules import MCGAAttention


class ConvLayer(nn.Module):
    """Conv2d (padding k//2) -> optional BatchNorm2d -> optional Hardswish."""

    def __init__(self, c_in, c_out, kernel=3, stride=1, groups=1, bias=False, norm=True, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=bias)
        self.norm = nn.BatchNorm2d(c_out) if norm else nn.Identity()
        self.act = nn.Hardswish() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class FusedMBConv(nn.Module):
    """3x3 conv that expands (+BN, Hardswish), then 1x1 projection (+BN)."""

    def __init__(self, c_in, c_out, stride, mid, bias1=False):
        super().__init__()
        self.spatial_conv = ConvLayer(c_in, mid, 3, stride, bias=bias1)
        self.point_conv = ConvLayer(mid, c_out, 1, act=False)

    def forward(self, x):
        return self.point_conv(self.spatial_conv(x))


class MBConv(nn.Module):
    """1x1 expand, kxk depthwise, 1x1 project (+BN).

    variant ``local``: the LowFormer block's local module, first two convs with bias and no BN;
    ``plain``: the unfused ablation's stem/stage blocks, first two convs without bias or BN;
    ``full``: BN after every conv, no bias (EfficientViT's stages 1-2).
    """

    def __init__(self, c_in, c_out, stride, mid, variant, kernel=3):
        super().__init__()
        bias, norm = MBCONV_VARIANTS[variant]
        self.inverted_conv = ConvLayer(c_in, mid, 1, bias=bias, norm=norm)
        self.depth_conv = ConvLayer(mid, mid, kernel, stride, groups=mid, bias=bias, norm=norm)
        self.point_conv = ConvLayer(mid, c_out, 1, act=False)

    def forward(self, x):
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class Residual(nn.Module):
    def __init__(self, main):
        super().__init__()
        self.main = main

    def forward(self, x):
        return x + self.main(x)


def conv_block(c_in, c_out, stride, mid, unfused):
    """A stem/stage/downsampling block: fused MBConv, or MBConv in the unfused ablation."""
    if unfused:
        return MBConv(c_in, c_out, stride, mid, variant="plain")
    return FusedMBConv(c_in, c_out, stride, mid)


def _upsampler(c_in, c_out, stride, groups):
    kernel, tstride, padding = transposed_geometry(stride)
    return nn.ConvTranspose2d(c_in, c_out, kernel, tstride, padding, groups=groups, bias=True)


class SpatialReduction(nn.Module):
    """Depthwise conv (no bias) + BN that lowers the attention resolution by ``stride``."""

    def __init__(self, channels, kernel, stride):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.norm(self.conv(x))


def _split_heads(x, heads, width):
    """(B, heads*width, h, w) -> (B, heads, h*w, width)."""
    b, _, h, w = x.shape
    return x.reshape(b, heads, width, h * w).transpose(-1, -2)


def _merge_heads(x, h, w):
    """(B, heads, h*w, d) -> (B, heads*d, h, w), channel = head*d + i."""
    b, heads, _, d = x.shape
    return x.transpose(-1, -2).reshape(b, heads * d, h, w)


class Lowtention(nn.Module):
    """The paper's conv attention: depthwise reduction, compressed QKV, SDPA, fused upsampling.

    The per-head channel layout of ``pwise`` is [q_i | k_i | v_i]. ``unfused`` splits the single
    transposed conv into a 1x1 o_proj and a depthwise transposed conv (the unfused ablation).
    """

    def __init__(self, channels, heads, head_dim, stride, kernel, unfused=False):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.conv_proj = SpatialReduction(channels, kernel, stride)
        self.pwise = nn.Conv2d(channels, 3 * inner, 1, bias=False)
        if unfused:
            self.o_proj = nn.Conv2d(inner, channels, 1, bias=True)
            self.upsampling = _upsampler(channels, channels, stride, groups=channels)
        else:
            self.o_proj = nn.Identity()
            self.upsampling = _upsampler(inner, channels, stride, groups=1)

    def forward(self, x):
        height, width = x.shape[-2:]
        y = self.conv_proj(x)
        h, w = y.shape[-2:]
        q, k, v = _split_heads(self.pwise(y), self.heads, 3 * self.head_dim).chunk(3, dim=-1)
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v), h, w)
        out = self.upsampling(self.o_proj(out))
        return out[:, :, :height, :width]


class MultiHeadSelfAttention(nn.Module):
    """Plain MHSA with 1x1 q, k, v (C -> heads*head_dim, no bias) and o (-> C, bias).

    With stride > 1 it runs at reduced resolution: a depthwise conv + BN before the projections
    and a depthwise transposed conv after them (the study's "convlow" attention).
    """

    def __init__(self, channels, heads, head_dim, stride=1, kernel=3):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.reduction = SpatialReduction(channels, kernel, stride) if stride > 1 else nn.Identity()
        self.q = nn.Conv2d(channels, inner, 1, bias=False)
        self.k = nn.Conv2d(channels, inner, 1, bias=False)
        self.v = nn.Conv2d(channels, inner, 1, bias=False)
        self.o = nn.Conv2d(inner, channels, 1, bias=True)
        self.upsampling = _upsampler(channels, channels, stride, groups=channels) if stride > 1 else nn.Identity()

    def forward(self, x):
        height, width = x.shape[-2:]
        y = self.reduction(x)
        h, w = y.shape[-2:]
        q, k, v = (_split_heads(proj(y), self.heads, self.head_dim) for proj in (self.q, self.k, self.v))
        out = self.o(_merge_heads(F.scaled_dot_product_attention(q, k, v), h, w))
        return self.upsampling(out)[:, :, :height, :width]


class LiteMLA(nn.Module):
    """EfficientViT's multi-scale ReLU linear attention.

    The qkv channels are head-major, [q | k | v] per head; each aggregation scale adds as many
    groups again (keys ``aggreg.<scale>.0/1`` as in the released code). With ``quadratic`` and
    no more tokens than ``dim`` it uses the released code's N x N form: the same output at a
    different MAC count, kept so that the counts match. LowFormer's relu-linear ablation has
    one scale and no quadratic form.
    """

    eps = 1e-15

    def __init__(self, channels, heads, dim, scales=(5,), quadratic=True):
        super().__init__()
        self.dim, self.quadratic = dim, quadratic
        total = 3 * heads * dim
        self.qkv = ConvLayer(channels, total, 1, norm=False, act=False)
        self.aggreg = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(total, total, k, padding=k // 2, groups=total, bias=False),
                nn.Conv2d(total, total, 1, groups=3 * heads, bias=False),
            )
            for k in scales
        )
        self.proj = ConvLayer((1 + len(scales)) * heads * dim, channels, 1, act=False)

    def forward(self, x):
        b, _, h, w = x.shape
        qkv = self.qkv(x)
        qkv = torch.cat([qkv, *(aggreg(qkv) for aggreg in self.aggreg)], dim=1)
        if qkv.dtype in (torch.float16, torch.bfloat16):
            qkv = qkv.float()
        qkv = qkv.reshape(b, -1, 3 * self.dim, h * w)
        q, k, v = qkv.split(self.dim, dim=2)
        q, k = F.relu(q), F.relu(k)
        if self.quadratic and quadratic_attention(h * w, self.dim):
            scores = k.transpose(-1, -2) @ q
            out = v @ (scores / (scores.sum(dim=2, keepdim=True) + self.eps))
        else:
            out = (F.pad(v, (0, 0, 0, 1), value=1.0) @ k.transpose(-1, -2)) @ q
            out = out[:, :, :-1] / (out[:, :, -1:] + self.eps)
        return self.proj(out.to(x.dtype).reshape(b, -1, h, w))


class ReducedResolution(nn.Module):
    """Runs a token mixer at 1/stride of the stage resolution: depthwise conv + BN before it, a
    depthwise transposed conv after it (the convlow trick, here for any full-width mixer)."""

    def __init__(self, mixer, channels, stride, kernel):
        super().__init__()
        self.reduction = SpatialReduction(channels, kernel, stride)
        self.mixer = mixer
        self.upsampling = _upsampler(channels, channels, stride, groups=channels)

    def forward(self, x):
        height, width = x.shape[-2:]
        return self.upsampling(self.mixer(self.reduction(x)))[:, :, :height, :width]


class GroupAttention(nn.Module):
    """MCGA's attention on NCHW maps: 3x3 and 5x5 depthwise local queries cross-attend to G
    learned group tokens (fusion projections, token MLP ratio 4); the block adds the residual."""

    def __init__(self, channels, heads, group_tokens):
        super().__init__()
        self.attention = MCGAAttention(channels, heads, group_tokens, GROUP_ATTENTION_KERNELS, "fusion",
                                       GROUP_ATTENTION_TOKEN_RATIO)

    def forward(self, x):
        b, c, h, w = x.shape
        out = self.attention(x.flatten(2).transpose(1, 2), h, w)
        return out.transpose(1, 2).reshape(b, c, h, w)


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


class ClsHead(nn.Module):
    """1x1 conv + BN + Hardswish, global pool, Linear (no bias) + LayerNorm + Hardswish, Linear."""

    def __init__(self, c_in, widths, num_classes):
        super().__init__()
        w0, w1 = widths
        self.conv = ConvLayer(c_in, w0, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w0, w1, bias=False)
        self.fc_norm = nn.LayerNorm(w1)
        self.fc_act = nn.Hardswish()
        self.classifier = nn.Linear(w1, num_classes)

    def forward(self, x):
        x = self.pool(self.conv(x)).flatten(1)
        return self.classifier(self.fc_act(self.fc_norm(self.fc(x))))
