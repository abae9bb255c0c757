"""The other families' token mixers as LowFormer stage-3/4 attention types."""

import dataclasses
import json
import sqlite3

import pytest
import torch

from explorer.architectures import config_from_dict
from explorer.counting import fvcore_counts
from explorer.db.database import SHIPPED_DB_PATH
from explorer.onnx_export import export_onnx, max_abs_difference
from search_spaces.base import KnobError, arch_id
from search_spaces.lowformer import LowFormerConfig
from search_spaces.lowformer.config import TransformerStage
from search_spaces.lowformer.modules import token_mixer
from search_spaces.lowformer.optable import attention_block
from search_spaces.lowformer.sampling import config_from_flat, flat_from_config, sample_configs

NEW_TYPES = ("relu-linear-ms", "rlmhsa", "group-attention")

# other-families spec, section 6: attention module only, (params, MACs in M) at C @ grid
SPEC_COSTS = {
    (128, 14): {"relu-linear-ms": (97_920, 20.85), "rlmhsa": (16_768, 13.05), "group-attention": (155_048, 15.62)},
    (256, 7): {"relu-linear-ms": (359_680, 18.45), "rlmhsa": (66_304, 4.44), "group-attention": (604_456, 16.63)},
    (192, 14): {"relu-linear-ms": (208_320, 43.31), "rlmhsa": (37_440, 21.98), "group-attention": (342_888, 33.56)},
    (384, 7): {"relu-linear-ms": (785_280, 39.72), "rlmhsa": (148_608, 9.07), "group-attention": (1_348_776, 36.54)},
}
HEAD_DIMS = {"relu-linear-ms": 16, "rlmhsa": 32, "group-attention": 32}  # LiteMLA dim 16, FMViT heads of 32


def stage(kind: str, **knobs) -> TransformerStage:
    return TransformerStage(attention=kind, attention_stride=1, head_dim=HEAD_DIMS[kind], **knobs)


def with_stages(stage3: TransformerStage, stage4: TransformerStage, resolution: int = 224) -> LowFormerConfig:
    return dataclasses.replace(LowFormerConfig(), stage3=stage3, stage4=stage4, resolution=resolution)


@pytest.mark.parametrize(("shape", "kind"), [(s, k) for s in SPEC_COSTS for k in NEW_TYPES])
def test_mixer_costs_match_the_spec_closed_forms(shape, kind):
    channels, side = shape
    cfg = stage(kind)
    heads, dim = cfg.heads_and_dim(channels)
    block = attention_block("stage3", channels, side, side, kind, heads, dim, 1, 3, False, False,
                            (5,) if kind == "relu-linear-ms" else (), 8 if kind == "group-attention" else 0)
    params, macs = SPEC_COSTS[shape][kind]
    assert block.params == params
    assert block.macs / 1e6 == pytest.approx(macs, abs=0.005)
    module = token_mixer(channels, LowFormerConfig(stage3=cfg).to_dict()["stage3"], unfused=False)
    assert sum(p.numel() for p in module.parameters()) == params


@pytest.mark.parametrize("kind", NEW_TYPES)
@pytest.mark.parametrize("resolution", [224, 128, 64])
def test_op_table_equals_fvcore_and_onnx_equals_torch(kind, resolution, tmp_path):
    extra3 = {"scales": (3, 5)} if kind == "relu-linear-ms" else {"group_tokens": 4} if kind == "group-attention" else {}
    stride3 = 2 if kind == "rlmhsa" else 1
    config = with_stages(dataclasses.replace(stage(kind, **extra3), attention_stride=stride3),
                         stage(kind, mlp=False), resolution)
    table = config.op_table()
    macs, params = fvcore_counts(config)
    assert (table.macs, table.params) == (macs, params)
    model = config.build()
    path = export_onnx(config, tmp_path / "m.onnx", model=model)
    assert max_abs_difference(config, path, model=model) < 1e-4


def test_rlmhsa_stride_runs_the_quadratic_attention_at_reduced_resolution():
    full = with_stages(stage("rlmhsa"), stage("rlmhsa"))
    reduced = with_stages(dataclasses.replace(stage("rlmhsa"), attention_stride=4), stage("rlmhsa"))
    scores = [sum(r.macs for r in c.op_table().rows if r.stage == "stage3" and "sdpa" in r.name) for c in (full, reduced)]
    assert scores[0] * 4 ** 4 == scores[1] * 14 ** 4  # the N^2 term at 14 x 14 vs 4 x 4 tokens


def test_quadratic_form_of_multi_scale_linear_attention_at_few_tokens():
    # stage 4 at 128 px has 4 x 4 = 16 tokens = dim: the N x N form (same output, other MACs)
    config = with_stages(stage("relu-linear-ms"), stage("relu-linear-ms"), 128)
    names = {r.name for r in config.op_table().rows if r.stage == "stage4"}
    assert any(n.endswith("attention.scores") for n in names)
    ablation = dataclasses.replace(config, stage4=TransformerStage(attention="relu-linear", attention_stride=1,
                                                                   head_dim=16, compression=1.0))
    assert not any(r.name.endswith("scores") for r in ablation.op_table().rows)  # LowFormer's has none


def test_invalid_combinations_name_the_knob_and_the_allowed_values():
    with pytest.raises(KnobError, match=r"stage.attention_stride.*1 when attention is 'group-attention'"):
        TransformerStage(attention="group-attention", attention_stride=2)
    with pytest.raises(KnobError, match=r"relu-linear-ms"):
        TransformerStage(attention="relu-linear-ms", attention_stride=4)
    with pytest.raises(KnobError, match=r"stage3.scales.*strictly increasing.*\[3, 5, 7\]"):
        LowFormerConfig.from_dict({"stage3": {"attention": "relu-linear-ms", "attention_stride": 1, "scales": [5, 3]}})
    with pytest.raises(KnobError, match=r"stage4.group_tokens.*4, 8, 16"):
        LowFormerConfig.from_dict({"stage4": {"attention": "group-attention", "group_tokens": 12}})
    with pytest.raises(KnobError, match="attention.*lowtention.*rlmhsa.*group-attention"):
        TransformerStage(attention="linformer")


def test_type_specific_knobs_belong_to_their_type_only():
    ms = stage("relu-linear-ms", scales=(3, 5))
    assert ms.to_dict()["scales"] == [3, 5] and "group_tokens" not in ms.to_dict()
    group = stage("group-attention", group_tokens=16)
    assert group.to_dict()["group_tokens"] == 16 and "scales" not in group.to_dict()
    # another type's knob has no effect and does not split architecture ids
    plain = LowFormerConfig()
    assert dataclasses.replace(plain.stage3, scales=(3,)) == plain.stage3
    assert arch_id(with_stages(dataclasses.replace(plain.stage3, group_tokens=4), plain.stage4)) == plain.arch_id
    round_trip = with_stages(ms, group)
    assert LowFormerConfig.from_dict(round_trip.to_dict()) == round_trip


def test_sampling_reaches_every_type_and_flat_knobs_round_trip():
    configs = sample_configs(300, seed=0)
    assert {c.stage3.attention for c in configs} >= set(NEW_TYPES)
    for config in configs:
        assert config_from_flat(flat_from_config(config), config.resolution) == config
    ms = next(c for c in configs if c.stage3.attention == "relu-linear-ms")
    assert ms.stage3.compression == 1.0  # full-width mixers: compression normalised away


@pytest.mark.skipif(not SHIPPED_DB_PATH.exists(), reason="no shipped database")
def test_stored_architecture_ids_still_hash_the_same():
    """Adding knobs must not move the ids the shipped measurements are keyed on."""
    with sqlite3.connect(SHIPPED_DB_PATH) as connection:
        rows = connection.execute("SELECT arch_id, config_json FROM architectures").fetchall()
    assert rows
    for stored, config_json in rows:
        assert arch_id(config_from_dict(json.loads(config_json))) == stored


def test_built_mixers_run_on_odd_grids():
    config = with_stages(dataclasses.replace(stage("rlmhsa"), attention_stride=2), stage("group-attention"), 100)
    with torch.no_grad():
        assert config.build()(torch.randn(1, 3, 100, 100)).shape == (1, 1000)
