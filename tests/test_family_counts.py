"""Every family's analytic op table equals fvcore, and its ONNX export equals PyTorch."""

import pytest
import torch

from explorer.counting import fvcore_counts
from explorer.onnx_export import export_onnx, max_abs_difference
from search_spaces import efficientvit, fmvit, mcga
from search_spaces.efficientvit import sampling as efficientvit_sampling
from search_spaces.fmvit import sampling as fmvit_sampling
from search_spaces.mcga import sampling as mcga_sampling

FAMILIES = {"efficientvit": efficientvit, "fmvit": fmvit, "mcga": mcga}
SAMPLERS = (efficientvit_sampling.sample_configs, efficientvit_sampling.sample_seed_configs,
            fmvit_sampling.sample_configs, mcga_sampling.sample_configs)
PRESETS = {name: entry[0] for family in FAMILIES.values() for name, entry in family.PRESETS.items()}
SMALL = ("efficientvit-b0", "efficientvit-seed", "fmvit-t", "fmvit-t-train", "mcga-budget")


def _random_configs(n, seed, resolution):
    return [config for sample in SAMPLERS for config in sample(n, seed=seed, resolution=resolution)]


def _assert_counts_equal(config):
    table = config.op_table()
    assert fvcore_counts(config) == (table.macs, table.params), config


@pytest.mark.parametrize("config", [PRESETS[n].with_resolution(64) for n in SMALL] + _random_configs(1, 1, 64),
                         ids=lambda c: f"{c.space}-{c.arch_id}")
def test_op_table_equals_fvcore_at_small_resolution(config):
    _assert_counts_equal(config)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_op_table_equals_fvcore_on_every_preset(name):
    _assert_counts_equal(PRESETS[name])


@pytest.mark.slow
def test_op_table_equals_fvcore_on_random_configs():
    for config in _random_configs(20, 0, 128):
        _assert_counts_equal(config)


def _calibrate_batchnorm(model, config):
    """Running statistics from one batch, as after training: an untrained FMViT training form sums
    several un-normalised branches per conv and its activations grow to 1e4-1e10 through depth,
    where float32 round-off alone exceeds any fixed tolerance (calibrated: outputs ~1, error ~1e-6)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(config.input_shape(2), generator=torch.Generator().manual_seed(1)))
    model.eval()


def _onnx_error(config, tmp_path):
    torch.manual_seed(0)
    model = config.build()
    if getattr(config, "form", "inference") == "train":
        _calibrate_batchnorm(model, config)
    path = export_onnx(config, tmp_path / "model.onnx", model=model)
    return max_abs_difference(config, path, model=model), model


def _tolerance(config, model):
    """1e-4, relative to the output scale where that exceeds 1 (the training form at 64 px, where
    one batch of 2 x 2 maps calibrates its statistics only roughly)."""
    x = torch.randn(config.input_shape(1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return 1e-4 * max(1.0, model(x).abs().max().item())


@pytest.mark.parametrize("name", SMALL)
def test_onnx_export_matches_pytorch_at_small_resolution(name, tmp_path):
    config = PRESETS[name].with_resolution(64)
    error, model = _onnx_error(config, tmp_path)
    assert error < _tolerance(config, model)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_onnx_export_matches_pytorch_at_full_resolution(name, tmp_path):
    config = PRESETS[name]
    error, model = _onnx_error(config, tmp_path)
    assert error < _tolerance(config, model)
