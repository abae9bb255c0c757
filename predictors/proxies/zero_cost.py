"""Zero-cost proxies: one or two forward/backward passes of a freshly initialised network on
synthetic inputs (no dataset exists here), at a reduced resolution.

Every proxy seeds ``torch.manual_seed`` before building the network and draws its inputs from a
seeded ``torch.Generator``, so a value depends only on (config, resolution, seed, version).
All are oriented so that higher means "predicted more accurate". Known weaknesses, common to all
four: computed at initialisation on noise, they mostly measure size and trainability, and on
public benchmarks they rarely rank trained networks better than the parameter count; the
calibration report measures that on this space.

``synflow`` (Tanaka et al. 2020; Abdelfattah et al. 2021)
    Needs one forward/backward in float64 on an all-ones input with every weight replaced by its
    absolute value and normalisation disabled: BatchNorm in eval mode with fresh statistics (an
    identity up to 1/sqrt(1 + eps)), GroupNorm and LayerNorm replaced by identities (otherwise
    the head's LayerNorm bounds R and the score only sees the classifier). Score: log of
    sum |theta * dR/dtheta| with R the sum of the outputs. Cost: one float64 pass at batch 1.
    Weakness: grows with depth and width (a size measure); the softmax of attention still
    normalises, so attention blocks count less than their size; without norms, attention
    logits of deep configs can overflow float64, and then the score is -inf (5 of 39
    configs in ``benchmarks/proxy_calibration.py``; the calibration report excludes them).
``grad-norm`` (Abdelfattah et al. 2021)
    Needs one forward/backward at batch ``GRAD_NORM_BATCH`` of Gaussian inputs with uniformly
    random labels, cross-entropy loss, BatchNorm in train mode. Score: sum over parameters of the
    L2 norm of their gradient. Weakness: dominated by the classifier and by layer count.
``naswot`` (Mellor et al. 2021)
    Needs one forward at batch ``NASWOT_BATCH`` (no gradient), BatchNorm in train mode.
    LowFormer has Hardswish and GELU, not ReLU, so the binary code of a unit is ``output > 0``,
    which for both is exactly ``pre-activation > 0`` (the ReLU definition). Codes of every
    Hardswish, GELU and ReLU module are accumulated into the kernel
    K = C C^T + (1 - C)(1 - C)^T; score: log|det K|. Weakness: the kernel grows with the number
    of units (a size measure again); attention and norms are invisible to it.
``zen`` (Lin et al. 2021, Zen-NAS)
    Needs two forwards at batch ``ZEN_BATCH`` of Gaussian inputs x and x + 0.01 eps, BatchNorm in
    train mode as in the paper. Score: log of the mean absolute difference of the pre-pooling
    feature maps plus, for every BatchNorm2d, log sqrt(mean batch variance of its input). The
    paper re-initialises weights from N(0, 1); that saturates LowFormer's softmax, so the default
    PyTorch initialisation is kept. Weakness: GroupNorm, LayerNorm and attention are not covered
    by the BatchNorm correction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from search_spaces.base import ArchConfig

REFERENCE_RESOLUTION = 224
DEFAULT_SCALE_TO = 64  # a 224-pixel config is scored at 64 pixels
MIN_RESOLUTION = 32  # LowFormer's five stride-2 stages
GRAD_NORM_BATCH = 8
NASWOT_BATCH = 32
ZEN_BATCH = 8
ZEN_ALPHA = 0.01
ACTIVATIONS = (nn.Hardswish, nn.GELU, nn.ReLU)

ZERO_COST_VERSIONS = {"synflow": "1", "grad-norm": "1", "naswot": "1", "zen": "1"}


class ProxyError(ValueError):
    """A proxy that is undefined for this architecture; the message says why."""


def default_scoring_resolution(config: ArchConfig) -> int:
    """The config's resolution scaled by 64/224 (multiple of 8, at least 32, never above the
    config's own), so that variants of one architecture at different resolutions keep distinct
    scores while a 224 model costs a twelfth of its full-size pass."""
    scaled = 8 * round(config.resolution * DEFAULT_SCALE_TO / REFERENCE_RESOLUTION / 8)
    return min(config.resolution, max(MIN_RESOLUTION, scaled))


def _network(config: ArchConfig, resolution: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return config.with_resolution(resolution).build()  # the space validates the resolution


def _inputs(config: ArchConfig, resolution: int, batch: int, seed: int, stream: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1000 + stream)
    return torch.randn(config.with_resolution(resolution).input_shape(batch), generator=generator)


def _logits(output: torch.Tensor | dict) -> torch.Tensor:
    if isinstance(output, dict):
        output = list(output.values())[-1]
    return output.flatten(1)


def _without_layer_norms(model: nn.Module) -> nn.Module:
    """Replace every GroupNorm and LayerNorm by an identity, in place."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, (nn.GroupNorm, nn.LayerNorm)):
                setattr(module, name, nn.Identity())
    return model


def synflow(config: ArchConfig, resolution: int, seed: int = 0) -> float:
    """log sum |theta * dR/dtheta| of the sign-free network on an all-ones input (see module doc)."""
    model = _without_layer_norms(_network(config, resolution, seed)).double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    shape = config.with_resolution(resolution).input_shape(1)
    _logits(model(torch.ones(shape, dtype=torch.float64))).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else float("-inf")


def grad_norm(config: ArchConfig, resolution: int, seed: int = 0) -> float:
    """Sum of per-parameter gradient L2 norms under random labels (see module doc)."""
    model = _network(config, resolution, seed).train()
    logits = _logits(model(_inputs(config, resolution, GRAD_NORM_BATCH, seed)))
    generator = torch.Generator().manual_seed(seed * 1000 + 1)
    labels = torch.randint(logits.shape[1], (GRAD_NORM_BATCH,), generator=generator)
    nn.functional.cross_entropy(logits, labels).backward()
    return float(sum(p.grad.norm() for p in model.parameters() if p.grad is not None))


@contextmanager
def _hooks(model: nn.Module, types: tuple[type, ...], hook) -> Iterator[None]:
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, types)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def naswot(config: ArchConfig, resolution: int, seed: int = 0) -> float:
    """log|det K| of the Hamming kernel of activation codes (see module doc)."""
    model = _network(config, resolution, seed).train()
    if not any(isinstance(m, ACTIVATIONS) for m in model.modules()):
        raise ProxyError(f"naswot needs activation units (Hardswish, GELU or ReLU modules); {config.space!r} has none")
    kernel = torch.zeros(NASWOT_BATCH, NASWOT_BATCH, dtype=torch.float64)

    def accumulate(_module, _inputs_, output):
        codes = (output.detach().flatten(1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    with torch.no_grad(), _hooks(model, ACTIVATIONS, accumulate):
        model(_inputs(config, resolution, NASWOT_BATCH, seed))
    return float(torch.linalg.slogdet(kernel)[1])


def zen(config: ArchConfig, resolution: int, seed: int = 0) -> float:
    """Zen-score: log E|f(x) - f(x + a eps)| + sum log sigma_BN (see module doc)."""
    model = _network(config, resolution, seed).train()
    features = getattr(model, "forward_features", None)

    def pre_pool(x: torch.Tensor) -> torch.Tensor:
        out = features(x) if features is not None else model(x)
        return _logits(out) if isinstance(out, dict) else out.flatten(1)

    log_sigmas: list[float] = []

    def record(_module, inputs, _output):
        variance = inputs[0].detach().var(dim=(0, 2, 3), unbiased=False).mean()
        log_sigmas.append(0.5 * math.log(max(float(variance), 1e-30)))

    x = _inputs(config, resolution, ZEN_BATCH, seed)
    eps = _inputs(config, resolution, ZEN_BATCH, seed, stream=1)
    with torch.no_grad():
        with _hooks(model, (nn.BatchNorm2d,), record):
            clean = pre_pool(x)
        noisy = pre_pool(x + ZEN_ALPHA * eps)
    delta = float((clean - noisy).abs().sum(dim=1).mean())
    return (math.log(delta) if delta > 0 else float("-inf")) + sum(log_sigmas)


ZERO_COST_PROXIES = {"synflow": synflow, "grad-norm": grad_norm, "naswot": naswot, "zen": zen}
