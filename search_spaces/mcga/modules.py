"""MCGA building blocks in plain PyTorch (imports torch only, so exports can carry it).

A reconstruction from the paper's text (no code was released): the open choices (projection
placement, token-MLP form, patch embedding, classifier) are arguments, fixed by the config.
Blocks take and return NCHW maps and work on tokens (B, H*W, C) inside. The group attention
itself is a shared token mixer (:mod:`search_spaces.blocks.mixers`).
"""

from torch import nn

from search_spaces.blocks.mixers.modules import MCGAAttention
from search_spaces.mcga.rules import patch_geometry


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
