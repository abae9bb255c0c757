"""Each zero-cost proxy against its published definition, computed independently (plain
functional ops and numpy) on a network small enough to follow by hand: two 3x3 conv layers
(conv, BatchNorm, Hardswish) with 3 channels on a 6x6 input. A seeded random number, or a proxy
that skipped a step of its definition, would not match."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from predictors.proxies import grad_norm, naswot, synflow, zen
from predictors.proxies.zero_cost import GRAD_NORM_BATCH, NASWOT_BATCH, ZEN_ALPHA, ZEN_BATCH
from search_spaces.toys.conv_stack import ConvStackConfig

CONFIG = ConvStackConfig(channels=3, layers=2, resolution=6)
SEED = 3


def weights() -> list[dict[str, torch.Tensor]]:
    """The conv and BatchNorm parameters the proxies' network gets (same seed, same build)."""
    torch.manual_seed(SEED)
    model = CONFIG.build()
    layers = []
    for layer in model:
        convs = [m for m in layer.modules() if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in layer.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(convs) == len(norms) == 1
        conv, norm = convs[0], norms[0]
        layers.append({"weight": conv.weight.detach().clone(),
                       "bias": None if conv.bias is None else conv.bias.detach().clone(),
                       "gamma": norm.weight.detach().clone(), "beta": norm.bias.detach().clone(),
                       "eps": norm.eps})
    return layers


def gaussian(batch: int, stream: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED * 1000 + stream)
    return torch.randn(CONFIG.input_shape(batch), generator=generator)


def forward(x, params, train: bool, codes: list | None = None, sigmas: list | None = None):
    for p in params:
        x = F.conv2d(x, p["weight"], p["bias"], padding=1)
        if sigmas is not None:
            sigmas.append(0.5 * math.log(float(x.var(dim=(0, 2, 3), unbiased=False).mean())))
        if train:
            mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        else:  # eval mode with fresh running statistics: mean 0, variance 1
            mean, var = torch.zeros(1, dtype=x.dtype), torch.ones(1, dtype=x.dtype)
        x = (x - mean) / torch.sqrt(var + p["eps"]) * p["gamma"].view(1, -1, 1, 1) + p["beta"].view(1, -1, 1, 1)
        x = x * torch.clamp(x + 3, 0, 6) / 6  # Hardswish
        if codes is not None:
            codes.append((x.flatten(1) > 0).double())
    return x


def test_synflow_is_log_sum_of_abs_weight_times_gradient_of_the_output_sum():
    params = []
    for p in weights():
        params.append({k: (v.double().abs().requires_grad_() if isinstance(v, torch.Tensor) else v)
                       for k, v in p.items()})
    out = forward(torch.ones(CONFIG.input_shape(1), dtype=torch.float64), params, train=False)
    out.flatten(1).sum().backward()
    total = sum(float((v.detach() * v.grad).abs().sum()) for p in params for v in p.values()
                if isinstance(v, torch.Tensor) and v.grad is not None)
    assert synflow(CONFIG, 6, SEED) == pytest.approx(math.log(total), rel=1e-9)


def test_grad_norm_is_the_sum_of_per_parameter_gradient_norms_under_random_labels():
    params = [{k: (v.clone().requires_grad_() if isinstance(v, torch.Tensor) else v) for k, v in p.items()}
              for p in weights()]
    logits = forward(gaussian(GRAD_NORM_BATCH), params, train=True).flatten(1)
    labels = torch.randint(logits.shape[1], (GRAD_NORM_BATCH,), generator=torch.Generator().manual_seed(SEED * 1000 + 1))
    F.cross_entropy(logits, labels).backward()
    expected = sum(float(v.grad.norm()) for p in params for v in p.values()
                   if isinstance(v, torch.Tensor) and v.grad is not None)
    assert grad_norm(CONFIG, 6, SEED) == pytest.approx(expected, rel=1e-5)


def test_naswot_is_the_log_determinant_of_the_hamming_kernel_of_activation_codes():
    codes: list[torch.Tensor] = []
    with torch.no_grad():
        forward(gaussian(NASWOT_BATCH), weights(), train=True, codes=codes)
    c = torch.cat(codes, dim=1).numpy()
    # K[i, j] = number of units on which inputs i and j agree (both active or both inactive)
    agree = (c[:, None, :] == c[None, :, :]).sum(axis=2).astype(float)
    sign, logdet = np.linalg.slogdet(agree)
    assert sign > 0
    assert naswot(CONFIG, 6, SEED) == pytest.approx(logdet, rel=1e-9)


def test_zen_is_log_feature_sensitivity_plus_the_batchnorm_scales():
    x, eps = gaussian(ZEN_BATCH), gaussian(ZEN_BATCH, stream=1)
    sigmas: list[float] = []
    with torch.no_grad():
        clean = forward(x, weights(), train=True, sigmas=sigmas).flatten(1)
        noisy = forward(x + ZEN_ALPHA * eps, weights(), train=True).flatten(1)
    expected = math.log(float((clean - noisy).abs().sum(dim=1).mean())) + sum(sigmas)
    assert zen(CONFIG, 6, SEED) == pytest.approx(expected, rel=1e-6)


def test_proxies_see_the_network_not_a_seed():
    """Same seed, another network (one more layer): every proxy moves."""
    deeper = ConvStackConfig(channels=3, layers=3, resolution=6)
    for proxy in (synflow, grad_norm, naswot, zen):
        assert proxy(deeper, 6, SEED) != pytest.approx(proxy(CONFIG, 6, SEED), rel=1e-6)
