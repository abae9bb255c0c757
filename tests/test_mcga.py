"""The MCGA space: both readings of the paper as documented, counts, export, knob validation."""

import dataclasses

import pytest
import torch

from search_spaces.base import KnobError
from search_spaces.mcga import PRESETS, MCGAConfig
from search_spaces.mcga.sampling import KNOBS, config_from_flat, sample_configs

LITERAL = MCGAConfig()

# docs: other-families.md, sections 5.3 and 5.4 (params, MACs in M at 224)
SPEC = {
    "mcga-paper": (LITERAL, 9_131_016, 705.45),
    "mcga-budget": (PRESETS["mcga-budget"][0], 10_323_080, 706.64),
    "V1'": (dataclasses.replace(LITERAL, projection="query"), 9_131_016, 705.45),
    "V2": (dataclasses.replace(LITERAL, projection="both"), 10_139_528, 808.21),
    "V4": (dataclasses.replace(LITERAL, patch_embed="overlapping"), 9_349_224, 739.47),
    "V5'": (dataclasses.replace(LITERAL, classifier_hidden=1280), 10_483_976, 706.80),
    "linear token mixer": (dataclasses.replace(LITERAL, token_mlp_ratio=0), 9_123_336, 704.33),
}


def module_params(config):
    """Parameters of the built module; on the meta device, so big models cost no initialisation."""
    with torch.device("meta"):
        return sum(p.numel() for p in config.build().parameters())


@pytest.mark.parametrize("name", SPEC)
def test_readings_match_the_spec(name):
    config, params, macs = SPEC[name]
    assert config.op_table().params == params
    assert module_params(config) == params
    assert round(config.op_table().macs / 1e6, 2) == macs


def test_presets_are_marked_as_reconstructions_with_published_numbers():
    assert PRESETS["mcga-paper"][0] == LITERAL
    for _, source in PRESETS.values():
        assert "reconstruction" in source and "10.3 M" in source


def test_stage_breakdown_matches_the_spec():
    stages = LITERAL.op_table().by_stage()
    assert [stages[s]["params"] for s in ("stage1", "stage2", "stage3", "stage4", "head")] == [
        41_648, 156_944, 1_756_784, 6_918_128, 257_512]


def test_group_attention_works_at_any_resolution():
    config = dataclasses.replace(LITERAL, kernels=(5,), projection="both", resolution=96)
    with torch.no_grad():
        features = config.build().forward_features(torch.zeros(config.input_shape(2)))
    assert [tuple(f.shape) for f in features.values()] == [
        (2, 32, 24, 24), (2, 64, 12, 12), (2, 128, 6, 6), (2, 256, 3, 3)]


def test_config_round_trips_through_json():
    config = dataclasses.replace(LITERAL, kernels=(3, 7), group_tokens=16, patch_embed="overlapping")
    assert MCGAConfig.from_dict(config.to_dict()) == config
    assert MCGAConfig.from_dict(config.to_dict()).arch_id == config.arch_id != LITERAL.arch_id


@pytest.mark.parametrize(("knobs", "knob"), [
    ({"dims": (32, 64, 128)}, "dims"),
    ({"heads": (3, 2, 4, 8)}, "heads[0]"),
    ({"depths": (2, 2, 0, 6)}, "depths[2]"),
    ({"group_tokens": 6}, "group_tokens"),
    ({"kernels": (3, 9)}, "kernels"),
    ({"projection": "output"}, "projection"),
    ({"token_mlp_ratio": 3}, "token_mlp_ratio"),
    ({"patch_embed": "depthwise"}, "patch_embed"),
    ({"classifier_hidden": -1}, "classifier_hidden"),
])
def test_invalid_knobs_raise_a_knob_error_naming_the_knob(knobs, knob):
    with pytest.raises(KnobError) as err:
        MCGAConfig(**knobs)
    assert err.value.knob == knob and knob in str(err.value)


def test_flat_knobs_reach_the_presets_and_sample_deterministically():
    flat = {"dim1": 32, "dim2": 64, "dim3": 128, "dim4": 256, "depth1": 2, "depth2": 2, "depth3": 6, "depth4": 6,
            "head_dim1": 16, "head_dim2": 32, "head_dim3": 32, "head_dim4": 32, "group_tokens": 8, "kernels": "3,5",
            "projection": "fusion", "token_mlp_ratio": 4, "mlp_ratio": 4, "patch_embed": "non-overlapping", "classifier_hidden": 1152}
    assert all(flat[k] in v for k, v in KNOBS.items())
    assert config_from_flat({**flat, "head_dim4": 16}).heads == (2, 2, 4, 16)
    assert config_from_flat(flat) == PRESETS["mcga-budget"][0]
    assert sample_configs(5, seed=3) == sample_configs(5, seed=3) != sample_configs(5, seed=4)
    with pytest.raises(KnobError, match="head_dim2"):
        config_from_flat({k: v for k, v in flat.items() if k != "head_dim2"})
