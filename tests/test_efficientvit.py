"""The EfficientViT spaces: released B0-B3 exact, the seed model as documented, counts, export."""

import dataclasses

import pytest
import torch

from explorer.counting import fvcore_counts
from search_spaces.base import KnobError, arch_id, canonical_json
from search_spaces.efficientvit import PRESETS, EfficientViTConfig, EfficientViTSeedConfig
from search_spaces.efficientvit.sampling import (
    KNOBS,
    SEED_KNOBS,
    config_from_flat,
    flat_from_config,
    sample_configs,
    sample_seed_configs,
)

# docs: other-families.md, sections 2.4 and 3.4 (params; MACs in M at each resolution)
SPEC = {
    "efficientvit-b0": (3_410_008, {224: 100.23, 256: 130.12, 288: 164.00}),
    "efficientvit-b1": (9_102_024, {224: 519.21, 256: 676.92, 288: 855.64}),
    "efficientvit-b2": (24_330_712, {224: 1584.94, 256: 2067.53, 288: 2614.48}),
    "efficientvit-b3": (48_646_056, {224: 3953.82, 256: 5161.59, 288: 6530.39}),
    "efficientvit-seed": (7_943_368, {192: 303.88, 224: 411.72}),
    "efficientvit-seed-w1.2": (10_795_400, {224: 587.71}),
}


def module_params(config):
    """Parameters of the built module; on the meta device, so big models cost no initialisation."""
    with torch.device("meta"):
        return sum(p.numel() for p in config.build().parameters())


@pytest.mark.parametrize("name", SPEC)
def test_presets_match_the_spec(name):
    config, source = PRESETS[name]
    params, macs = SPEC[name]
    assert config.op_table().params == params
    assert module_params(config) == params
    for resolution, expected in macs.items():
        assert round(config.with_resolution(resolution).op_table().macs / 1e6, 2) == expected
    assert ("reconstruction" in source) == ("seed" in name)


def test_b1_stage_breakdown_matches_the_spec():
    stages = PRESETS["efficientvit-b1"][0].op_table().by_stage()
    assert stages["stage4"]["params"] == 3_785_728
    assert [stages[s]["params"] for s in ("stage0", "stage1", "stage2", "stage3", "head")] == [
        928, 13_888, 86_528, 756_864, 4_458_088]


def test_lite_mla_switches_to_the_quadratic_form_at_few_tokens():
    # B1 at 128 px: stage 4 has 4x4 = 16 tokens = dim, so its attention is N x N.
    config = PRESETS["efficientvit-b1"][0].with_resolution(128)
    rows = [r for r in config.op_table().rows if r.stage == "stage4" and r.name.endswith("scores")]
    assert rows and all(r.macs == 2 * 16 * 16 * 16 * 16 for r in rows)  # 2*heads groups of N*dim*N
    assert fvcore_counts(config) == (config.op_table().macs, config.op_table().params)


def test_forward_features_give_the_stage_maps():
    config = PRESETS["efficientvit-b0"][0].with_resolution(64)
    with torch.no_grad():
        features = config.build().forward_features(torch.zeros(config.input_shape(2)))
    assert [tuple(f.shape) for f in features.values()] == [
        (2, 8, 32, 32), (2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)]


@pytest.mark.parametrize("config", [EfficientViTConfig(scales=(3, 5), heads_ratio=2, kernel=5),
                                    EfficientViTSeedConfig(width_mult=1.2, expansion_basis="input")])
def test_configs_round_trip_through_json(config):
    assert type(config).from_dict(config.to_dict()) == config
    assert arch_id(type(config).from_dict(config.to_dict())) == config.arch_id
    assert config.with_resolution(160).arch_id != config.arch_id
    assert f'"space":"{config.space}"' in canonical_json(config)


@pytest.mark.parametrize(("cls", "knobs", "knob"), [
    (EfficientViTConfig, {"widths": (8, 16, 32, 64, 130)}, "widths[4]"),
    (EfficientViTConfig, {"widths": (8, 16, 32, 72, 128), "dim": 16}, "widths[3]"),
    (EfficientViTConfig, {"depths": (1, 0, 1, 1, 1)}, "depths[1]"),
    (EfficientViTConfig, {"dim": 12}, "dim"),
    (EfficientViTConfig, {"scales": (7,)}, "scales"),
    (EfficientViTConfig, {"expand_ratio": 5}, "expand_ratio"),
    (EfficientViTConfig, {"widths": (8, 16, 32, 32, 64), "dim": 32, "heads_ratio": 0.5}, "heads_ratio"),
    (EfficientViTSeedConfig, {"width_mult": 2.0}, "width_mult"),
    (EfficientViTSeedConfig, {"expansion_basis": "middle"}, "expansion_basis"),
    (EfficientViTSeedConfig, {"attention_ratio": 3}, "attention_ratio"),
])
def test_invalid_knobs_raise_a_knob_error_naming_the_knob(cls, knobs, knob):
    with pytest.raises(KnobError) as err:
        cls(**knobs)
    assert err.value.knob == knob and knob in str(err.value)


def test_from_dict_rejects_unknown_knobs_and_other_spaces():
    with pytest.raises(KnobError, match="heads"):
        EfficientViTConfig.from_dict({"heads": 4})
    with pytest.raises(KnobError, match="space"):
        EfficientViTSeedConfig.from_dict({"space": "efficientvit"})


def test_flat_knobs_cover_the_released_models_and_sample_deterministically():
    for name in ("efficientvit-b0", "efficientvit-b1", "efficientvit-b2", "efficientvit-b3"):
        config = PRESETS[name][0]
        flat = flat_from_config(config)
        assert all(flat[k] in v for k, v in KNOBS.items()) and config_from_flat(flat) == config
    assert sample_configs(5, seed=3) == sample_configs(5, seed=3) != sample_configs(5, seed=4)
    assert {c.width_mult for c in sample_seed_configs(30, seed=0)} <= set(SEED_KNOBS["width_mult"])
    with pytest.raises(KnobError, match="scales"):
        config_from_flat({**flat_from_config(EfficientViTConfig()), "scales": "7"})


def test_seed_model_documents_its_choices():
    seed = PRESETS["efficientvit-seed-w1.2"][0]
    assert seed.widths == (24, 32, 56, 112, 232) and seed.head_widths == (1536, 2760)
    assert dataclasses.replace(seed, expansion_basis="input").op_table().macs < seed.op_table().macs
