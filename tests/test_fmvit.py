"""The FMViT space: both forms of T/S/M/B/L as documented, exact fusion, counts, export."""

import dataclasses

import pytest
import torch

from search_spaces.base import KnobError
from search_spaces.fmvit import PRESETS, FMViTConfig
from search_spaces.fmvit.sampling import KNOBS, config_from_flat, sample_configs

# docs: other-families.md, section 4.5 (fused params, train params with G = {2, 4}, MACs in M at 224, 256)
SPEC = {
    "t": (1_983_688, 3_251_688, 308.53, 411.85),
    "s": (6_363_560, 10_692_440, 811.20, 1077.27),
    "m": (12_895_400, 21_903_528, 1993.54, 2622.56),
    "b": (24_089_320, 41_282_664, 4190.07, 5507.25),
    "l": (35_466_280, 61_237_224, 7111.65, 9323.19),
}


def module_params(config):
    """Parameters of the built module; on the meta device, so big models cost no initialisation."""
    with torch.device("meta"):
        return sum(p.numel() for p in config.build().parameters())


def randomise_batchnorms(model, seed=0):
    """Non-trivial BN statistics and affines, so that folding them is actually exercised."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, (low, high) in ((module.running_mean, (-0.5, 0.5)), (module.running_var, (0.5, 2.0)),
                                        (module.weight.data, (0.5, 1.5)), (module.bias.data, (-0.5, 0.5))):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model


@pytest.mark.parametrize("model", SPEC)
def test_presets_match_the_spec(model):
    fused_params, train_params, macs224, macs256 = SPEC[model]
    fused, fused_source = PRESETS[f"fmvit-{model}"]
    train, train_source = PRESETS[f"fmvit-{model}-train"]
    assert fused.form == "inference" and train.form == "train" and train.fused() == fused
    assert fused.op_table().params == fused_params == module_params(fused)
    assert train.op_table().params == train_params == module_params(train)
    assert round(fused.op_table().macs / 1e6, 2) == macs224
    assert round(fused.with_resolution(256).op_table().macs / 1e6, 2) == macs256
    assert "reconstruction" in fused_source and "reconstruction" in train_source


def test_t_stage_breakdown_matches_the_spec():
    stages = PRESETS["fmvit-t"][0].op_table().by_stage()
    assert [stages[s]["params"] for s in ("stage0", "stage1", "stage2", "stage3", "stage4", "head")] == [
        2_272, 18_624, 105_392, 405_616, 1_130_784, 321_000]
    assert round(stages["stage2"]["macs"] / 1e6, 2) == 100.54


def _check_fusion(config, resolution):
    train = randomise_batchnorms(config.with_resolution(resolution).build()).double()
    fused = train.fuse()
    reference = config.fused().build()
    assert {k: v.shape for k, v in fused.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    x = torch.randn(2, 3, resolution, resolution, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = train(x), fused(x)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["fmvit-t-train", "fmvit-s-train"])
def test_fused_form_equals_training_form_in_float64(name):
    _check_fusion(PRESETS[name][0], 64)


def test_fusion_is_exact_for_other_knobs_and_odd_sizes():
    config = dataclasses.replace(PRESETS["fmvit-t-train"][0], multi_groups=(2, 8), out_proj=True, mlp_ratio=3,
                                 head_dim=16, fmb_cfbs=2, depths=(1, 1, 1, 1))
    _check_fusion(config, 70)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["m", "b", "l"])
def test_fused_form_equals_training_form_in_float64_for_large_models(model):
    _check_fusion(PRESETS[f"fmvit-{model}-train"][0], 224)


def test_fusing_the_inference_form_changes_nothing():
    model = PRESETS["fmvit-t"][0].with_resolution(64).build()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.fuse()(x), model(x))


def test_config_round_trips_through_json():
    config = dataclasses.replace(PRESETS["fmvit-s-train"][0], multi_groups=(8, 2))
    assert config.multi_groups == (2, 8)
    assert FMViTConfig.from_dict(config.to_dict()) == config
    assert config.arch_id != config.fused().arch_id


@pytest.mark.parametrize(("knobs", "knob"), [
    ({"fm_widths": (16, 40, 64)}, "fm_widths[1]"),
    ({"fm_widths": (16, 32, 48), "head_dim": 16, "depths": (1, 1, 1)}, "depths"),
    ({"block_widths": (32, 64, 128, 0)}, "block_widths[3]"),
    ({"depths": (3, 3, 3, 17)}, "depths[3]"),
    ({"fmb_cfbs": 0}, "fmb_cfbs"),
    ({"mlp_ratio": 8}, "mlp_ratio"),
    ({"head_dim": 48}, "head_dim"),
    ({"fm_widths": (16, 32, 112)}, "fm_widths[2]"),
    ({"form": "fused"}, "form"),
    ({"multi_groups": (2, 3)}, "multi_groups"),
    ({"out_proj": 1}, "out_proj"),
])
def test_invalid_knobs_raise_a_knob_error_naming_the_knob(knobs, knob):
    with pytest.raises(KnobError) as err:
        FMViTConfig(**knobs)
    assert err.value.knob == knob and knob in str(err.value)


def test_flat_knobs_reach_the_presets_and_sample_deterministically():
    flat = {"stem": 48, "block1": 48, "block2": 96, "block3": 192, "block4": 384, "fm2": 32, "fm3": 64, "fm4": 128,
            "depth1": 3, "depth2": 3, "depth3": 2, "depth4": 3, "fmb_cfbs": 3, "mlp_ratio": 2, "head_dim": 32,
            "out_proj": False}
    assert all(flat[k] in v for k, v in KNOBS.items())
    assert config_from_flat(flat) == PRESETS["fmvit-s"][0]
    assert sample_configs(5, seed=3) == sample_configs(5, seed=3) != sample_configs(5, seed=4)
    assert all(c.form == "inference" for c in sample_configs(10, seed=0))
