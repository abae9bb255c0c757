"""MACs and params of a built module with fvcore, under the paper's MAC convention.

fvcore's defaults differ from the convention (docs: "MAC counting convention"): it counts norms,
pooling and upsampling, and nothing for ``scaled_dot_product_attention``. The handles below
switch the former off and add the two attention matmuls, so fvcore's total equals the analytic
op table's for every architecture. Transposed convolutions are already counted per input pixel.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis, parameter_count

from search_spaces.base import ArchConfig

IGNORED_OPS = (
    "aten::batch_norm",
    "aten::group_norm",
    "aten::layer_norm",
    "aten::instance_norm",
    "aten::adaptive_avg_pool2d",
    "aten::upsample_nearest2d",
    "aten::upsample_bilinear2d",
    "aten::softmax",
    "aten::hardswish",
    "aten::hardswish_",
    "aten::gelu",
    "aten::relu",
    "aten::relu_",
    "aten::add",
    "aten::add_",
    "aten::div",
    "aten::mul",
    "aten::pad",
    "aten::constant_pad_nd",
    "aten::mean",
)


def _shape(value: Any) -> list[int]:
    return value.type().sizes()


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """q·kᵀ and attn·v of ``scaled_dot_product_attention``: B·heads·Nq·Nk·(d + d_v)."""
    q, k, v = (_shape(inputs[i]) for i in range(3))
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _no_macs(inputs: list[Any], outputs: list[Any]) -> int:
    # fvcore's "None" handle only silences ops it has no handle for; norms need an explicit 0.
    return 0


def fvcore_counts(config: ArchConfig, model: torch.nn.Module | None = None) -> tuple[int, int]:
    """(MACs, params) of the built module at batch 1 under the paper convention."""
    model = config.build() if model is None else model.eval()
    return module_counts(model, torch.zeros(config.input_shape(1)))


def module_counts(model: torch.nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(MACs, params) of any module on ``example`` under the paper convention (the reference
    networks of timm are counted this way too, in their own environment)."""
    analysis = FlopCountAnalysis(model.eval(), example)
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_macs)
    analysis.set_op_handle(**{op: _no_macs for op in IGNORED_OPS})
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total()), int(parameter_count(model)[""])
