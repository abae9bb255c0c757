"""The study's toy models: registry, exact analytic counts, knobs, reconstruction and export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import explorer
from explorer.architectures import NAMED_ARCHITECTURES, config_from_dict, name_of
from explorer.counting import fvcore_counts
from explorer.onnx_export import export_onnx, max_abs_difference
from search_spaces.base import KnobError
from search_spaces.toys import (
    RESOLUTION_SCENARIOS,
    TOY_ARCHITECTURES,
    TOY_CONV_MODELS,
    TOY_CONV_PAIRS,
    TOY_SPACES,
    AttentionStackConfig,
    ConvStackConfig,
    MBConvStackConfig,
    ToyConvConfig,
    fit_layers,
)

PUBLISHED = Path(explorer.__file__).parent / "data" / "published_reference.csv"
#: largest relative gap between a reconstructed toy-conv model's MACs and the published figure
TOY_CONV_MAC_TOLERANCE = 0.0036
#: a small input side per space for the fast tests (odd where the attention has to crop)
SMALL = {"toy-conv": 32, "mbconv-stack": 7, "conv-stack": 7, "attention-stack": 9}
NAMES = [entry.name for entry in TOY_ARCHITECTURES]


def published_macs(name: str) -> float:
    with PUBLISHED.open() as handle:
        for row in csv.DictReader(handle):
            if row["model"] == name and row["metric"] == "macs_m":
                return float(row["value"]) * 1e6
    raise LookupError(name)


@pytest.mark.parametrize("name", NAMES)
def test_named_toy_runs_and_its_op_table_equals_fvcore(name):
    config = explorer.resolve(name)
    config = config.with_resolution(SMALL[config.space])
    model = explorer.build_model(config)
    assert not model.training
    with torch.no_grad():
        out = model(torch.randn(config.input_shape(2)))
    table = config.op_table()
    assert tuple(out.shape) == (2, *table.rows[-1].out_shape)
    assert (table.macs, table.params) == fvcore_counts(config, model)


@pytest.mark.parametrize("config", [
    ToyConvConfig(channels=(6, 12, 24, 48, 48), layers=(1, 2, 1, 3, 2), depthwise=True, resolution=45),
    MBConvStackConfig(channels=24, fused=False, expansion=3, repeats=3, resolution=11),
    ConvStackConfig(channels=5, layers=3, resolution=13),
    AttentionStackConfig(channels=64, layers=2, compression=0.25, attention_stride=4, attention_kernel=5,
                         head_dim=8, resolution=13),
], ids=lambda c: c.space)
def test_op_table_equals_fvcore_off_the_named_grid(config):
    assert (config.op_table().macs, config.op_table().params) == fvcore_counts(config)


def test_every_toy_is_registered_and_resolves_at_a_resolution():
    for entry in TOY_ARCHITECTURES:
        registered = NAMED_ARCHITECTURES[entry.name]
        assert (registered.kind, registered.exact) == ("toy", not entry.name.startswith("toy-conv"))
        config = explorer.resolve(entry.name, 64)
        assert type(config) is TOY_SPACES[config.space]
        assert name_of(config) == entry.name
    assert explorer.resolve("attention-stack-mhsa", 16) == AttentionStackConfig(resolution=16)
    assert explorer.resolve("attention-stack-convlow-chcompr", 64) == AttentionStackConfig(
        compression=0.5, attention_stride=2, resolution=64)
    assert explorer.resolve("conv20-c196").input_shape() == (1, 196, 224, 224)
    assert explorer.resolve("unfused-mbconv-c64-e6").to_dict() == {
        "channels": 64, "fused": False, "expansion": 6, "repeats": 2, "resolution": 56}
    assert explorer.resolve("toy-conv-2").input_shape(4) == (4, 3, 224, 224)


def test_toy_conv_sources_say_the_layers_are_a_reconstruction():
    for name in TOY_CONV_MODELS:
        assert "reconstruction" in NAMED_ARCHITECTURES[name].source


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_stable_arch_id(name):
    config = explorer.resolve(name)
    knobs = config.to_dict()
    assert type(config).from_dict(knobs) == config
    shuffled = {"space": config.space, **dict(reversed(list(json.loads(json.dumps(knobs)).items())))}
    again = config_from_dict(shuffled)
    assert again == config and again.arch_id == config.arch_id == explorer.arch_id(config)
    assert config.with_resolution(config.resolution + 1).arch_id != config.arch_id


def test_defaults_need_not_be_spelled_out():
    spelled = AttentionStackConfig.from_dict({"space": "attention-stack", "compression": 1, "layers": 4})
    assert spelled.arch_id == AttentionStackConfig().arch_id == explorer.resolve("attention-stack-mhsa").arch_id
    assert config_from_dict({"space": "toy-conv"}) == TOY_CONV_MODELS["toy-conv-1"]


@pytest.mark.parametrize("space, knobs, knob", [
    ("toy-conv", {"channels": [15, 30, 60, 120]}, "channels"),
    ("toy-conv", {"layers": [2, 4, 0, 5, 5]}, "layers[2]"),
    ("toy-conv", {"channels": [30, 50, 100, 160, 160], "depthwise": True}, "channels[1]"),
    ("toy-conv", {"depthwise": "yes"}, "depthwise"),
    ("toy-conv", {"resolution": 16}, "resolution"),
    ("mbconv-stack", {"expansion": 9}, "expansion"),
    ("mbconv-stack", {"fused": 1}, "fused"),
    ("mbconv-stack", {"repeats": 0}, "repeats"),
    ("conv-stack", {"channels": 4096}, "channels"),
    ("conv-stack", {"layers": 2.0}, "layers"),
    ("attention-stack", {"compression": 0.3}, "compression"),
    ("attention-stack", {"attention_stride": 3}, "attention_stride"),
    ("attention-stack", {"head_dim": 48}, "head_dim"),
    ("attention-stack", {"heads": 4}, "heads"),
    ("attention-stack", {"space": "conv-stack"}, "space"),
])
def test_invalid_knobs_name_the_knob(space, knobs, knob):
    with pytest.raises(KnobError) as err:
        TOY_SPACES[space].from_dict(knobs)
    assert err.value.knob == knob
    assert knob.split("[")[0] in str(err.value)


def test_reconstructed_toy_conv_macs_match_the_published_ones():
    for name, config in TOY_CONV_MODELS.items():
        published = published_macs(name)
        assert abs(config.op_table().macs / published - 1) <= TOY_CONV_MAC_TOLERANCE, name


def test_toy_conv_layers_are_the_fitted_ones():
    for standard_name, depthwise_name in TOY_CONV_PAIRS:
        standard, depthwise = TOY_CONV_MODELS[standard_name], TOY_CONV_MODELS[depthwise_name]
        assert (standard.depthwise, depthwise.depthwise) == (False, True)
        assert depthwise.layers == tuple(2 * n for n in standard.layers)
        fitted = fit_layers(standard.channels, published_macs(standard_name),
                            depthwise.channels, published_macs(depthwise_name))
        assert fitted == standard.layers


def test_resolution_scenarios_pair_about_equal_macs():
    for (r_a, c_a), (r_b, c_b) in RESOLUTION_SCENARIOS:
        high = explorer.resolve(f"conv20-c{c_a}", r_a).op_table().macs
        low = explorer.resolve(f"conv20-c{c_b}", r_b).op_table().macs
        assert r_a > r_b and c_a < c_b
        assert abs(low / high - 1) < 0.05


@pytest.mark.parametrize("config", [
    ToyConvConfig(channels=(6, 12, 24, 48, 48), layers=(1, 2, 1, 2, 1), depthwise=True, resolution=32),
    MBConvStackConfig(channels=16, fused=False, resolution=7),
    ConvStackConfig(channels=8, layers=3, resolution=9),
    AttentionStackConfig(compression=0.5, attention_stride=2, resolution=9),
], ids=lambda c: c.space)
def test_onnx_export_matches_pytorch(config, tmp_path):
    model = config.build()
    path = export_onnx(config, tmp_path / "model.onnx", model=model)
    assert max_abs_difference(config, path, model=model) < 1e-4
