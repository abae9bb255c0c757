"""FMViT building blocks in plain PyTorch (imports torch only, so exports can carry it).

A reconstruction from the paper's text (no code was released). Every block is built in one of
two forms from the same arguments: ``rep=None`` gives the inference form (single convs with
bias), ``rep=(2, 4)`` the training form, where each conv is a :class:`RepConv` (parallel
conv+BN branches, 1x1 convs with multi-group branches for each G in ``rep``) and the MLPs and
the head carry a BatchNorm before their first linear layer. :func:`reparameterize` turns the
training form into the inference form with the same outputs and the same state-dict keys.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.fmvit.rules import STEM_ASYMMETRIC, pointwise_groups, rlmhsa_heads


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
