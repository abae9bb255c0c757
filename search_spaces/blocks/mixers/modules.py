"""Token mixers in plain PyTorch (imports torch only, so exports can carry it), with the
depthwise reduction that runs one at a lower resolution.

LowFormer's conv attention (``Lowtention``), plain multi-head self-attention, EfficientViT's
multi-scale ReLU linear attention (``LiteMLA``), FMViT's shared-projection attention and MCGA's
group attention. Their op-table rows and registrations live in the sibling modules of
:mod:`search_spaces.blocks.mixers`; names follow the released code because state-dict keys are
an interface.
"""

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.blocks.modules import ConvLayer, pointwise
from search_spaces.blocks.rules import (
    GROUP_ATTENTION_KERNELS,
    GROUP_ATTENTION_TOKEN_RATIO,
    fusion_projection,
    quadratic_attention,
    query_projection,
    transposed_geometry,
)


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


class SharedProjectionAttention(nn.Module):
    """Shared-projection attention without its residual: Y = BN(X); K = V = W Y; Q = Y;
    softmax(Q Kᵀ/√d) V (then an optional output projection)."""

    def __init__(self, channels, heads, out_proj=False, rep=None):
        super().__init__()
        self.heads = heads
        self.norm = nn.BatchNorm2d(channels)
        self.kv = pointwise(channels, channels, rep)
        self.proj = pointwise(channels, channels, rep) if out_proj else nn.Identity()

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x)
        q = y.reshape(b, self.heads, c // self.heads, h * w).transpose(-1, -2)
        kv = self.kv(y).reshape(b, self.heads, c // self.heads, h * w).transpose(-1, -2)
        out = F.scaled_dot_product_attention(q, kv, kv)
        return self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


def _split_token_heads(x, heads):
    """(B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _merge_token_heads(x):
    """(B, heads, N, d) -> (B, N, heads * d)."""
    b, heads, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, heads * d)


def attend(q, k, v, heads):
    """Multi-head softmax attention with the per-head scale 1/sqrt(C / heads)."""
    return _merge_token_heads(F.scaled_dot_product_attention(
        _split_token_heads(q, heads), _split_token_heads(k, heads), _split_token_heads(v, heads)))


class TokenMixer(nn.Module):
    """The "spatial MLPMixer" over the G group tokens, shared across channels:
    Linear(G -> rG) -> GELU -> Linear(rG -> G), or a single Linear(G -> G) when r = 0."""

    def __init__(self, tokens, ratio):
        super().__init__()
        if ratio:
            self.mlp = nn.Sequential(nn.Linear(tokens, ratio * tokens), nn.GELU(), nn.Linear(ratio * tokens, tokens))
        else:
            self.mlp = nn.Linear(tokens, tokens)

    def forward(self, x):
        return self.mlp(x.transpose(1, 2)).transpose(1, 2)


class MCGAAttention(nn.Module):
    """Multi-scale convolutions meet group attention.

    Depthwise kxk branches give local queries; G learnable group tokens attend to the image
    tokens, are mixed by the token MLP, and serve as keys and values of one cross-attention per
    branch; the branch outputs are (projected and) summed.
    """

    def __init__(self, channels, heads, group_tokens, kernels, projection, token_mlp_ratio):
        super().__init__()
        self.heads = heads
        branches = range(len(kernels))
        self.local = nn.ModuleList(nn.Conv2d(channels, channels, k, padding=k // 2, groups=channels)
                                   for k in kernels)
        query = query_projection(projection)
        self.query_proj = nn.ModuleList(nn.Linear(channels, channels) for _ in branches) if query else None
        self.group_tokens = nn.Parameter(torch.zeros(1, group_tokens, channels))
        nn.init.trunc_normal_(self.group_tokens, std=0.02)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.group_norm = nn.LayerNorm(channels)
        self.token_mixer = TokenMixer(group_tokens, token_mlp_ratio)
        self.cross_k = nn.ModuleList(nn.Linear(channels, channels) for _ in branches)
        self.cross_v = nn.ModuleList(nn.Linear(channels, channels) for _ in branches)
        fusion = fusion_projection(projection)
        self.fusion = nn.ModuleList(nn.Linear(channels, channels) for _ in branches) if fusion else None

    def forward(self, y, h, w):
        b, n, c = y.shape
        grid = y.transpose(1, 2).reshape(b, c, h, w)
        queries = [conv(grid).flatten(2).transpose(1, 2) for conv in self.local]
        if self.query_proj is not None:
            queries = [proj(q) for proj, q in zip(self.query_proj, queries)]
        groups = attend(self.q(self.group_tokens.expand(b, -1, -1)), self.k(y), self.v(y), self.heads)
        mixed = groups + self.token_mixer(self.group_norm(groups))
        outs = [attend(q, k(mixed), v(mixed), self.heads) for q, k, v in zip(queries, self.cross_k, self.cross_v)]
        if self.fusion is not None:
            outs = [proj(o) for proj, o in zip(self.fusion, outs)]
        out = outs[0]
        for other in outs[1:]:
            out = out + other
        return out


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
