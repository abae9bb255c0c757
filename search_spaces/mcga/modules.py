"""MCGA building blocks in plain PyTorch (imports torch only, so exports can carry it).

A reconstruction from the paper's text (no code was released): the open choices (projection
placement, token-MLP form, patch embedding, classifier) are arguments, fixed by the config.
Blocks take and return NCHW maps and work on tokens (B, H*W, C) inside.
"""

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.mcga.rules import fusion_projection, patch_geometry, query_projection


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


class ConvPatchEmbed(nn.Module):
    """Conv2d (bias) then LayerNorm over channels: PVT-style, optionally overlapping."""

    def __init__(self, c_in, c_out, stage, patch_embed):
        super().__init__()
        kernel, stride, padding = patch_geometry(stage, patch_embed)
        self.proj = nn.Conv2d(c_in, c_out, kernel, stride, padding)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x):
        x = self.proj(x)
        b, c, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)


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


class LinearMLP(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        self.fc1 = nn.Linear(channels, ratio * channels)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ratio * channels, channels)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class MCGABlock(nn.Module):
    """Pre-LN transformer block: x += MCGA(LN(x)); x += LinearMLP(LN(x))."""

    def __init__(self, channels, heads, group_tokens, kernels, projection, token_mlp_ratio, mlp_ratio):
        super().__init__()
        self.attention_norm = nn.LayerNorm(channels)
        self.attention = MCGAAttention(channels, heads, group_tokens, kernels, projection, token_mlp_ratio)
        self.mlp_norm = nn.LayerNorm(channels)
        self.mlp = LinearMLP(channels, mlp_ratio)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(self.attention_norm(tokens), h, w)
        tokens = tokens + self.mlp(self.mlp_norm(tokens))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class MCGAHead(nn.Module):
    """LayerNorm, mean over tokens, then Linear, or Linear -> GELU -> Linear with a hidden width."""

    def __init__(self, channels, hidden, num_classes):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        if hidden:
            self.classifier = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, num_classes))
        else:
            self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.norm(x.flatten(2).transpose(1, 2)).mean(dim=1))
