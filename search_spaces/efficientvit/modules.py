"""EfficientViT building blocks in plain PyTorch (imports torch only, so exports can carry it).

The released B-series is built from the shared blocks (``ConvLayer``, ``Residual``, ``ClsHead``,
``MBConv`` and the ``LiteMLA`` token mixer of :mod:`search_spaces.blocks`). Names follow the released
code (``inverted_conv``, ``depth_conv``, ``point_conv``, ``qkv``, ``aggreg``, ``proj``,
``context_module``, ``local_module``) because state-dict keys are an interface. The seed-paper
blocks (``SeedDownsample``, ``SeedAttentionBlock``, ``SeedHead``) are a reconstruction.
"""

import torch.nn.functional as F
from torch import nn

from search_spaces.blocks.mixers.modules import LiteMLA
from search_spaces.blocks.modules import ConvLayer, MBConv, Residual
from search_spaces.efficientvit.rules import SEED_EXPANSION, SEED_KEY_DIM


class DSConv(nn.Module):
    """Depthwise kxk (+BN, Hardswish), then 1x1 projection (+BN): the B-series stem block."""

    def __init__(self, c_in, c_out, stride=1, kernel=3):
        super().__init__()
        self.depth_conv = ConvLayer(c_in, c_in, kernel, stride, groups=c_in)
        self.point_conv = ConvLayer(c_in, c_out, 1, act=False)

    def forward(self, x):
        return self.point_conv(self.depth_conv(x))


class EfficientViTBlock(nn.Module):
    """x += LiteMLA(x); x += MBConv-local(x). No pre-norm: LiteMLA's BN sits after its proj."""

    def __init__(self, channels, heads, dim, scales, mid, kernel):
        super().__init__()
        self.context_module = Residual(LiteMLA(channels, heads, dim, scales))
        self.local_module = Residual(MBConv(channels, channels, 1, mid, "local", kernel))

    def forward(self, x):
        return self.local_module(self.context_module(x))


class SeedDownsample(nn.Module):
    """MBConv (BN everywhere, stride 2) plus an AvgPool + 1x1 conv + BN shortcut."""

    def __init__(self, c_in, c_out, mid, kernel):
        super().__init__()
        self.main = MBConv(c_in, c_out, 2, mid, "full", kernel)
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
        self.shortcut = ConvLayer(c_in, c_out, 1, act=False)

    def forward(self, x):
        return self.main(x) + self.shortcut(self.pool(x))


class ReLULinearAttention(nn.Module):
    """The seed paper's attention on tokens: Linear qkv, ReLU kernel, q(kᵀv) / (q Σk), Linear out."""

    eps = 1e-15

    def __init__(self, channels, heads, dim=SEED_KEY_DIM):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.qkv = nn.Linear(channels, 3 * heads * dim)
        self.proj = nn.Linear(heads * dim, channels)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.dim).permute(2, 0, 3, 1, 4)
        q, k = F.relu(q), F.relu(k)
        numerator = q @ (k.transpose(-1, -2) @ v)
        denominator = q @ k.sum(dim=2).unsqueeze(-1)
        out = numerator / (denominator + self.eps)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class SeedFFN(nn.Module):
    """1x1 (bias) -> Hardswish -> depthwise kxk (bias) -> Hardswish -> 1x1 (bias), no norms."""

    def __init__(self, channels, kernel):
        super().__init__()
        mid = SEED_EXPANSION * channels
        self.inverted_conv = ConvLayer(channels, mid, 1, bias=True, norm=False)
        self.depth_conv = ConvLayer(mid, mid, kernel, groups=mid, bias=True, norm=False)
        self.point_conv = ConvLayer(mid, channels, 1, bias=True, norm=False, act=False)

    def forward(self, x):
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class SeedAttentionBlock(nn.Module):
    """x += attention(LN(x)); x += FFN(LN(x)), with the LayerNorms over channels per token."""

    def __init__(self, channels, heads, kernel):
        super().__init__()
        self.attention_norm = nn.LayerNorm(channels)
        self.attention = ReLULinearAttention(channels, heads)
        self.ffn_norm = nn.LayerNorm(channels)
        self.ffn = SeedFFN(channels, kernel)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.attention(self.attention_norm(tokens))
        x = tokens.transpose(1, 2).reshape(b, c, h, w)
        return x + self.ffn(self.ffn_norm(tokens).transpose(1, 2).reshape(b, c, h, w))


class SeedHead(nn.Module):
    """MobileNetV3 head: 1x1 conv + BN + Hardswish, pool, Linear + Hardswish, Linear."""

    def __init__(self, c_in, widths, num_classes):
        super().__init__()
        w0, w1 = widths
        self.conv = ConvLayer(c_in, w0, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w0, w1)
        self.fc_act = nn.Hardswish()
        self.classifier = nn.Linear(w1, num_classes)

    def forward(self, x):
        x = self.pool(self.conv(x)).flatten(1)
        return self.classifier(self.fc_act(self.fc(x)))
