"""Shared building blocks in plain PyTorch (imports torch only, so exports can carry it): the
conv layer and MBConv variants, the classification head of LowFormer and EfficientViT-B, and the
re-parameterisable convs of FMViT's training form.

Names follow the reference code (``spatial_conv``, ``inverted_conv``, ``depth_conv``,
``point_conv``, ``conv``/``norm``/``act``) because state-dict keys are an interface. Every block
is built from plain arguments; a :class:`RepConv` folds into the single conv of the inference
form (``fuse()``) with the same outputs.
"""

import torch
from torch import nn

from search_spaces.blocks.rules import MBCONV_VARIANTS, pointwise_groups


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


def fold_batchnorm(bn):
    """(scale, shift) of an eval-mode BatchNorm: bn(x) = scale * x + shift per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class ConvBN(nn.Module):
    """One train-time branch: Conv2d without bias ("same" padding) followed by BatchNorm2d."""

    def __init__(self, c_in, c_out, kernel, stride, groups):
        super().__init__()
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class RepConv(nn.Module):
    """Sum of parallel conv+BN branches (and an optional identity BN), foldable into one conv.

    The first branch is the main kxk conv with ``groups``; ``branches`` adds (k_h, k_w, groups)
    branches whose groups are multiples of ``groups``.
    """

    def __init__(self, c_in, c_out, kernel, stride=1, groups=1, branches=(), identity=False):
        super().__init__()
        self.c_in, self.c_out, self.kernel, self.stride, self.groups = c_in, c_out, kernel, stride, groups
        specs = ((kernel, kernel, groups),) + tuple(branches)
        self.branches = nn.ModuleList(ConvBN(c_in, c_out, (kh, kw), stride, g) for kh, kw, g in specs)
        self.identity = nn.BatchNorm2d(c_out) if identity else None

    def forward(self, x):
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return out

    def _embed(self, weight, groups):
        """A branch kernel [c_out, c_in/groups, kh, kw] as the main conv's [c_out, c_in/self.groups, k, k]:
        centred in k x k, and block-diagonal within each main group (a grouped conv is a sparse one)."""
        k, kh, kw = self.kernel, weight.shape[2], weight.shape[3]
        out_per_group, in_local, in_main = self.c_out // groups, self.c_in // groups, self.c_in // self.groups
        out_per_main = self.c_out // self.groups
        dense = weight.new_zeros(self.c_out, in_main, k, k)
        top, left = (k - kh) // 2, (k - kw) // 2
        for j in range(groups):
            rows = slice(j * out_per_group, (j + 1) * out_per_group)
            start = j * in_local - (j * out_per_group // out_per_main) * in_main
            dense[rows, start:start + in_local, top:top + kh, left:left + kw] = weight[rows]
        return dense

    def fuse(self):
        """The single Conv2d (with bias) computing the same function in eval mode."""
        weight = 0
        bias = 0
        for branch in self.branches:
            scale, shift = fold_batchnorm(branch.bn)
            weight = weight + self._embed(branch.conv.weight * scale.reshape(-1, 1, 1, 1), branch.conv.groups)
            bias = bias + shift
        if self.identity is not None:
            scale, shift = fold_batchnorm(self.identity)
            eye = self.identity.weight.new_zeros(self.c_out, self.c_in // self.groups, self.kernel, self.kernel)
            centre = self.kernel // 2
            eye[torch.arange(self.c_out), torch.arange(self.c_out) % (self.c_in // self.groups), centre, centre] = 1
            weight = weight + eye * scale.reshape(-1, 1, 1, 1)
            bias = bias + shift
        conv = nn.Conv2d(self.c_in, self.c_out, self.kernel, self.stride, self.kernel // 2, groups=self.groups,
                         bias=True, device=weight.device, dtype=weight.dtype)
        conv.weight.data.copy_(weight.detach())
        conv.bias.data.copy_(bias.detach())
        return conv


def make_conv(c_in, c_out, kernel, stride=1, groups=1, branches=(), identity=False, rep=None):
    """A conv with bias (inference form, ``rep=None``) or its train-time :class:`RepConv`."""
    if rep is None:
        return nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=True)
    return RepConv(c_in, c_out, kernel, stride, groups, branches, identity)


def pointwise(c_in, c_out, rep=None):
    """A 1x1 conv; at train time with a grouped branch for every G in ``rep`` dividing both widths."""
    branches = () if rep is None else tuple((1, 1, g) for g in pointwise_groups(c_in, c_out, rep))
    return make_conv(c_in, c_out, 1, branches=branches, rep=rep)
