"""FMViT building blocks in plain PyTorch (imports torch only, so exports can carry it).

A reconstruction from the paper's text (no code was released). Every block is built in one of
two forms from the same arguments: ``rep=None`` gives the inference form (single convs with
bias), ``rep=(2, 4)`` the training form, where each conv is a :class:`RepConv` (parallel
conv+BN branches, 1x1 convs with multi-group branches for each G in ``rep``) and the MLPs and
the head carry a BatchNorm before their first linear layer. :func:`reparameterize` turns the
training form into the inference form with the same outputs and the same state-dict keys.
:class:`RepConv` and the shared-projection attention are shared blocks (:mod:`search_spaces.blocks`).
"""

import copy

import torch
from torch import nn

from search_spaces.blocks.mixers.modules import SharedProjectionAttention
from search_spaces.blocks.modules import RepConv, fold_batchnorm, make_conv, pointwise
from search_spaces.fmvit.rules import STEM_ASYMMETRIC, rlmhsa_heads


def _fold_into(norm, layer):
    """Fold an eval-mode BatchNorm into the following 1x1 conv or Linear (exact: no padding)."""
    scale, shift = fold_batchnorm(norm)
    weight = layer.weight.reshape(layer.weight.shape[0], -1)
    with torch.no_grad():
        layer.bias.add_(weight @ shift)
        layer.weight.mul_(scale.reshape((1, -1) + (1,) * (layer.weight.dim() - 2)))


class PreNormFold(nn.Module):
    """A block whose train-time BatchNorm ``norm`` precedes the 1x1/Linear layer ``first``."""

    first = ""

    def fold_norm(self):
        if isinstance(self.norm, nn.BatchNorm2d):
            _fold_into(self.norm, getattr(self, self.first))
            self.norm = nn.Identity()


class Stem(nn.Module):
    """Conv 3x3 s2, depthwise 3x3 s2, conv 1x1, each followed by ReLU: stride 4."""

    def __init__(self, c1, c3, rep=None):
        super().__init__()
        self.conv = make_conv(3, c1, 3, 2, branches=tuple((kh, kw, 1) for kh, kw in STEM_ASYMMETRIC), rep=rep)
        self.depth_conv = make_conv(c1, c1, 3, 2, groups=c1, branches=((1, 1, c1),), rep=rep)
        self.point_conv = pointwise(c1, c3, rep)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.point_conv(self.act(self.depth_conv(self.act(self.conv(x))))))


class PooledPatchEmbed(nn.Module):
    """Optional AvgPool2d(2, 2) then a 1x1 conv, no activation."""

    def __init__(self, c_in, c_out, stride, rep=None):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) if stride == 2 else nn.Identity()
        self.conv = pointwise(c_in, c_out, rep)

    def forward(self, x):
        return self.conv(self.pool(x))


def patch_embed(c_in, c_out, stride, rep=None):
    """A patch embedding; identity at stride 1 without a change of width."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return PooledPatchEmbed(c_in, c_out, stride, rep)


class ConvMLP(PreNormFold):
    """The paper's "gMLP": (BN) -> 1x1 -> ReLU -> depthwise 3x3 (+ identity) -> 1x1."""

    first = "fc1"

    def __init__(self, channels, ratio, rep=None):
        super().__init__()
        hidden = ratio * channels
        self.norm = nn.BatchNorm2d(channels) if rep is not None else nn.Identity()
        self.fc1 = pointwise(channels, hidden, rep)
        self.act = nn.ReLU()
        self.depth_conv = make_conv(hidden, hidden, 3, groups=hidden, identity=True, rep=rep)
        self.fc2 = pointwise(hidden, channels, rep)

    def forward(self, x):
        return self.fc2(self.depth_conv(self.act(self.fc1(self.norm(x)))))


class CFB(nn.Module):
    """x += 1x1(ReLU(depthwise 3x3(x))); x += ConvMLP(x)."""

    def __init__(self, channels, ratio, rep=None):
        super().__init__()
        self.depth_conv = make_conv(channels, channels, 3, groups=channels, branches=((1, 1, channels),),
                                    identity=True, rep=rep)
        self.act = nn.ReLU()
        self.point_conv = pointwise(channels, channels, rep)
        self.mlp = ConvMLP(channels, ratio, rep)

    def forward(self, x):
        x = x + self.point_conv(self.act(self.depth_conv(x)))
        return x + self.mlp(x)


class RLMHSA(SharedProjectionAttention):
    """FMViT's RLMHSA: X + shared-projection attention of X."""

    def __init__(self, channels, head_dim, out_proj=False, rep=None):
        super().__init__(channels, rlmhsa_heads(channels, head_dim), out_proj, rep)

    def forward(self, x):
        return x + super().forward(x)


class FMB(nn.Module):
    """Multi-frequency block: a 1x1 projection, chained CFBs and RLMHSA, all outputs concatenated,
    then a residual ConvMLP over the concatenation."""

    def __init__(self, c_in, fm_width, cfbs, ratio, head_dim, out_proj=False, rep=None):
        super().__init__()
        self.embed = pointwise(c_in, fm_width, rep)
        self.blocks = nn.ModuleList(CFB(fm_width, ratio, rep) for _ in range(cfbs))
        self.attention = RLMHSA(fm_width, head_dim, out_proj, rep)
        self.mlp = ConvMLP((cfbs + 2) * fm_width, ratio, rep)

    def forward(self, x):
        features = [self.embed(x)]
        for block in self.blocks:
            features.append(block(features[-1]))
        features.append(self.attention(features[-1]))
        z = torch.cat(features, dim=1)
        return z + self.mlp(z)


class FMViTHead(PreNormFold):
    """(BN) -> global average pool -> Linear."""

    first = "classifier"

    def __init__(self, channels, num_classes, rep=None):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels) if rep is not None else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.norm(x)).flatten(1))


def _reparameterize_(module):
    for name, child in module.named_children():
        if isinstance(child, RepConv):
            setattr(module, name, child.fuse())
        else:
            _reparameterize_(child)
    if isinstance(module, PreNormFold):
        module.fold_norm()


def reparameterize(model):
    """An eval-mode copy of ``model`` with every train-time branch and pre-norm folded away."""
    fused = copy.deepcopy(model).eval()
    _reparameterize_(fused)
    return fused
