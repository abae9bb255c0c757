"""One network, one id: knobs the network does not use take one value in every family, the
searches sample distinct networks, and the migration merges the twins stored before."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from explorer.architectures import FLAT_SPACES, NAMED_ARCHITECTURES, config_from_dict
from search_spaces.base import KnobError, arch_id
from search_spaces.fmvit import FMViTConfig
from search_spaces.lowformer.config import STAGE3_DEFAULT, LowFormerConfig
from search_spaces.sampling import FlatSpace

#: the revision of the migration that made stored ids canonical
CANONICAL_IDS = "0005"

#: ids from before configs were canonical: presets (with unused knobs among them: E1 and the
#: attention-removed ablation have stages without attention, original-mhsa a kernel at stride 1)
#: and a measured random architecture without unused knobs; none may move
KEPT_IDS = {
    "lowformer-b1": "174a74d8e6af19f5",
    "lowformer-e1": "44d791c8ff9fbc33",
    "lowformer-e2": "d10203faea635c53",
    "lowformer-b1-attention-removed": "af311ffec19c4e4c",
    "lowformer-b1-original-mhsa": "536472489f34e759",
    "lowformer-b1-unfused-mbconv": "2632b09fe66f6bb5",
    "lowformer-b1-relu-linear-attention": "f93086d280335734",
    "efficientvit-b1": "d903e3f5f936702f",
    "efficientvit-seed": "18da25240f9a83d2",
    "fmvit-t": "1d276e348c85d14d",
    "fmvit-t-train": "a94834f143d1b520",
    "mcga-paper": "1fdf0d78d1f6c845",
}
MEASURED = ("9be2c6224a3c713a", {
    "space": "lowformer", "widths": [20, 48, 128, 320, 160], "depths": [2, 3, 4, 2, 1], "stem_expansion": 4,
    "downsample_expansion": 4, "block_expansion": 2, "fusion_threshold": 0,
    "stage3": {"attention": "lowtention", "attention_stride": 4, "attention_kernel": 7, "compression": 0.5,
               "head_dim": 64, "mlp": True, "mlp_ratio": 2},
    "stage4": {"attention": "lowtention", "attention_stride": 1, "attention_kernel": 7, "compression": 0.5,
               "head_dim": 16, "mlp": True, "mlp_ratio": 4},
    "unfused": False, "head_widths": [1536, 2048], "num_classes": 1000, "resolution": 224})


def _op_rows(config):
    return tuple(config.op_table().rows)


def _model_shapes(config):
    """Parameter count and state-dict shapes of the built module (on the meta device: no memory)."""
    with torch.device("meta"):
        model = config.build()
    return (sum(p.numel() for p in model.parameters()),
            tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()))


#: family -> (flat knobs that make others unused, those unused knobs), varied on random configs
UNUSED = {
    "lowformer": [
        ({"depth3": 0}, [k for k in FLAT_SPACES["lowformer"].knobs if k.startswith("stage3.")]),
        ({"stage4.attention": "none"}, ["stage4.attention_stride", "stage4.attention_kernel", "stage4.compression",
                                        "stage4.head_dim", "stage4.scales", "stage4.group_tokens"]),
        ({"stage3.attention": "mhsa", "stage3.attention_stride": 1}, ["stage3.attention_kernel"]),
        ({"stage4.attention": "rlmhsa", "stage4.attention_stride": 1},
         ["stage4.attention_kernel", "stage4.compression", "stage4.scales"]),
        ({"stage3.attention": "group-attention"}, ["stage3.attention_kernel", "stage3.compression",
                                                   "stage3.attention_stride", "stage3.scales"]),
        ({"stage3.attention": "relu-linear-ms"}, ["stage3.attention_kernel", "stage3.compression",
                                                  "stage3.group_tokens"]),
        ({"stage4.mlp": False}, ["stage4.mlp_ratio"]),
        ({"depth0": 0, "unfused": True}, ["stem_expansion", "fusion_threshold"]),
        ({"depth1": 1, "depth2": 1, "depth3": 0, "depth4": 0}, ["block_expansion", "fusion_threshold"]),
    ],
    "efficientvit": [({"depth3": 0, "depth4": 0}, ["dim", "heads_ratio", "local_expand_ratio", "scales"])],
    "efficientvit-seed": [({"depth3": 0, "depth4": 0}, ["attention_ratio"])],
}


def _variants(space: str, condition: dict, unused: list[str], seed: int, n: int = 4) -> list:
    """``n`` configs of one random base with ``condition`` and random values of ``unused``."""
    table = FLAT_SPACES[space]
    rng = np.random.default_rng(seed)
    base = {**table.to_flat(table.sample(1, seed, resolution=96)[0]), **condition}
    configs = []
    while len(configs) < n:
        flat = {**base, **{k: table.knobs[k][int(rng.integers(len(table.knobs[k])))] for k in unused}}
        try:
            configs.append(table.from_flat(flat, 96))
        except KnobError:  # e.g. a dim that does not divide a width
            continue
    return configs


@pytest.mark.parametrize("space,case", [(s, i) for s, cases in UNUSED.items() for i in range(len(cases))])
def test_unused_knobs_give_one_id_and_one_model(space, case):
    condition, unused = UNUSED[space][case]
    for seed in range(3):
        configs = _variants(space, condition, unused, seed)
        first = configs[0]
        assert len({arch_id(c) for c in configs}) == 1, (space, condition)
        assert all(c == first for c in configs)
        assert all(_op_rows(c) == _op_rows(first) for c in configs)
        assert len({_model_shapes(c) for c in configs[:2]}) == 1


def test_fmvit_unused_knobs_give_one_id_and_one_model():
    """Multi-group branches exist in the training form only; head widths that give the same
    heads (narrow FMBs: one head of 16 or 32 channels) build the same attention."""
    narrow = FMViTConfig(fm_widths=(16, 16, 32))
    configs = [dataclasses.replace(narrow, head_dim=h, multi_groups=g) for h in (32, 64) for g in ((2, 4), (8,))]
    assert len({arch_id(c) for c in configs}) == 1
    assert len({_model_shapes(c) for c in configs[:2]} | {_model_shapes(configs[-1])}) == 1
    train = [dataclasses.replace(narrow, form="train", multi_groups=g) for g in ((2, 4), (8,))]
    assert arch_id(train[0]) != arch_id(train[1])  # there they build branches


def test_efficientvit_seed_multipliers_that_build_the_same_widths_give_one_id():
    """Widths are rounded to multiples of 8: nearby multipliers build one network, which keeps
    the sampled multiplier, else the smallest multiple of 0.0001 that builds it."""
    from search_spaces.efficientvit.config import SEED_WIDTH_MULTS, WIDTH_MULT_RANGE, EfficientViTSeedConfig

    by_network: dict[tuple, set[str]] = {}
    for value in np.random.default_rng(5).uniform(*WIDTH_MULT_RANGE, 400):
        config = EfficientViTSeedConfig(width_mult=float(value), resolution=96)
        by_network.setdefault((config.widths, config.head_widths), set()).add(arch_id(config))
    assert len(by_network) < 400 and all(len(ids) == 1 for ids in by_network.values())
    assert all(EfficientViTSeedConfig(width_mult=m).width_mult == m for m in SEED_WIDTH_MULTS)
    assert EfficientViTSeedConfig(width_mult=1.0004) == EfficientViTSeedConfig(width_mult=1.0)
    twins = [EfficientViTSeedConfig(width_mult=m, resolution=96) for m in (1.0049, 1.0036)]
    assert twins[0] == twins[1] and _model_shapes(twins[0]) == _model_shapes(twins[1])
    assert twins[0].width_mult == config_from_dict(twins[0].to_dict() | {"space": twins[0].space}).width_mult


def test_every_architecture_of_the_shipped_database_is_stored_under_its_canonical_id():
    """A change to what is canonical moves stored ids; it needs a migration like 0005."""
    import sqlite3
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "measurements.db"
    if not shipped.exists():
        pytest.skip("needs the shipped measurements.db")
    with sqlite3.connect(f"file:{shipped}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT arch_id, config_json FROM architectures WHERE space != 'reference'").fetchall()
    moved = [key for key, knobs in rows if arch_id(config_from_dict(json.loads(knobs))) != key]
    assert len(rows) > 2000 and moved == []


def test_attention_stack_kernel_without_reduction_gives_one_id_and_one_model():
    from search_spaces.toys.attention_stack import ATTENTION_KERNELS, AttentionStackConfig

    plain = [AttentionStackConfig(attention_stride=1, attention_kernel=k, resolution=16) for k in ATTENTION_KERNELS]
    assert len({arch_id(c) for c in plain}) == 1 and len({_model_shapes(c) for c in plain}) == 1
    reduced = [AttentionStackConfig(attention_stride=2, attention_kernel=k, resolution=16) for k in ATTENTION_KERNELS]
    assert len({arch_id(c) for c in reduced}) == len(ATTENTION_KERNELS)  # there the kernel builds the reduction


@pytest.mark.parametrize("space", sorted(FLAT_SPACES))
def test_a_knob_that_leaves_the_op_table_keeps_the_id(space):
    """The rule checked against the op table, not against a list of unused knobs: any single
    knob change of a random config that leaves every op row as it was keeps the id."""
    table = FLAT_SPACES[space]
    for config in table.sample(6, seed=11, resolution=96):
        flat, rows = table.to_flat(config), _op_rows(config)
        for knob, values in table.knobs.items():
            for value in values:
                try:
                    other = table.from_flat({**flat, knob: value}, 96)
                except KnobError:
                    continue
                if _op_rows(other) == rows:
                    assert arch_id(other) == arch_id(config), (knob, value)


def test_ids_from_before_canonical_configs_are_kept():
    assert {name: arch_id(NAMED_ARCHITECTURES[name].make(None)) for name in KEPT_IDS} == KEPT_IDS
    key, knobs = MEASURED
    assert arch_id(config_from_dict(knobs)) == key


def test_a_config_file_with_unused_knobs_reads_as_the_canonical_config():
    knobs = {"space": "lowformer", "depths": [0, 1, 1, 0, 2],
             "stage3": {"attention": "mhsa", "attention_kernel": 7, "mlp_ratio": 2}}
    config = config_from_dict(knobs)
    assert config.stage3 == STAGE3_DEFAULT
    assert config == config_from_dict({"space": "lowformer", "depths": [0, 1, 1, 0, 2]})


def _narrow_space() -> FlatSpace:
    """The LowFormer table without stage-3 blocks, its knobs free, every other knob fixed but
    the head's first width (two values): two networks among thousands of flat points."""
    table = FLAT_SPACES["lowformer"]
    fixed = {**table.to_flat(table.sample(1, seed=0)[0]), "depth3": 0}
    knobs = {k: (v if k.startswith("stage3.") else v[:2] if k == "head_w0" else (fixed[k],))
             for k, v in table.knobs.items()}
    return FlatSpace(table.name, knobs, table.from_flat, table.to_flat)


def test_samples_and_mutations_are_distinct_networks():
    narrow = _narrow_space()
    assert len({arch_id(c) for c in narrow.sample(2, seed=1)}) == 2
    assert len({arch_id(c) for c in narrow.sobol(2, seed=1)}) == 2
    with pytest.raises(KnobError, match="distinct architectures"):
        narrow.sample(3, seed=1)
    assert len(narrow.neighbours(narrow.sample(1, seed=3)[0])) == 1
    rng = np.random.default_rng(0)
    for config in narrow.sample(2, seed=2):
        assert all(arch_id(narrow.mutate(config, rng)) != arch_id(config) for _ in range(5))
    for space, table in FLAT_SPACES.items():
        configs = table.sample(300, seed=5, resolution=96)
        assert len({arch_id(c) for c in configs}) == 300, space


def test_search_trials_that_differ_in_unused_knobs_are_one_architecture():
    """What a search sees: trial parameters that differ only in knobs the network does not use
    give one architecture id, so the study evaluates the twin once and flags it a duplicate."""
    from explorer.search import space

    config = FLAT_SPACES["lowformer"].sample(1, seed=4)[0]
    config = dataclasses.replace(config, depths=(*config.depths[:3], 0, config.depths[4]))
    for searched in ("lowformer", "all"):
        params = space.params_of(config, searched)
        prefix = "lowformer." if searched == "all" else ""
        twin = {**params, f"{prefix}stage3.attention": "mhsa", f"{prefix}stage3.attention_kernel": 7}
        assert twin != params
        assert arch_id(space.config_of(twin, 224, searched)) == arch_id(space.config_of(params, 224, searched))


def _old_id(knobs: dict) -> str:
    """The id a config had before configs were canonical: the hash of its knobs as stored."""
    return hashlib.sha256(json.dumps(knobs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _stored(config, **stage_knobs) -> dict:
    """The stored JSON of ``config`` with stage knobs the network does not use set otherwise."""
    knobs = {"space": config.space, **config.to_dict()}
    for stage, values in stage_knobs.items():
        knobs[stage] = {**knobs[stage], **values}
    return knobs


def test_a_line_written_before_canonical_ids_still_reads():
    """Sample lines and exports carry the id of their knobs as written then."""
    no_stage3 = LowFormerConfig(depths=(0, 1, 1, 0, 2))
    knobs = _stored(no_stage3, stage3={"attention": "mhsa", "attention_stride": 1, "attention_kernel": 7})
    assert config_from_dict({"arch_id": _old_id(knobs), **knobs}) == no_stage3
    assert config_from_dict({"arch_id": arch_id(no_stage3), **knobs}) == no_stage3
    with pytest.raises(KnobError, match="arch_id"):
        config_from_dict({"arch_id": "0123456789abcdef", **knobs})


def test_the_migration_merges_stored_twins_and_loses_no_row(tmp_path):
    """Twins stored under several ids (stage 3 without blocks, with mhsa or no attention; stage 4
    without blocks, twice) move to their canonical id, whether stored or not; every measurement,
    score, result and training id follows."""
    from alembic.script import ScriptDirectory

    from explorer.db.database import _alembic_config, make_engine, upgrade
    from explorer.db.models import AccuracyResult, Architecture, Device, Measurement, Predictor, ProxyScore

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, ScriptDirectory.from_config(_alembic_config()).get_revision(CANONICAL_IDS).down_revision)
    no_stage3 = LowFormerConfig(depths=(0, 1, 1, 0, 2))
    no_stage4 = LowFormerConfig(depths=(0, 1, 2, 3, 0))
    stored = {
        "a": _stored(no_stage3, stage3={"attention": "mhsa", "attention_stride": 1, "attention_kernel": 7}),
        "b": _stored(no_stage3, stage3={"attention": "none", "compression": 1.0, "mlp": False}),
        "c": _stored(no_stage3),
        "e1": _stored(no_stage4, stage4={"attention": "rlmhsa", "compression": 1.0}),
        "e2": _stored(no_stage4, stage4={"head_dim": 64, "mlp_ratio": 2}),
        "u": _stored(NAMED_ARCHITECTURES["lowformer-b1"].make(None)),
    }
    ids = {key: _old_id(knobs) for key, knobs in stored.items()}
    assert len(set(ids.values())) == 6 and ids["c"] == arch_id(no_stage3) and ids["u"] == "174a74d8e6af19f5"
    measured = ["a", "a", "b", "c", "e1", "e2", "e2", "u"]
    with Session(engine) as session:
        session.add(Device(name="board", backend="ort"))
        session.add_all(Architecture(arch_id=ids[k], space="lowformer", config_json=knobs, resolution=224,
                                     name="b1" if k == "u" else None) for k, knobs in stored.items())
        session.flush()
        session.add_all(Measurement(arch_id=ids[k], device="board", backend="ort", batch=1, resolution=224,
                                    metric="latency_ms", value=float(i + 1)) for i, k in enumerate(measured))
        session.add_all([ProxyScore(arch_id=ids["a"], score="synflow", version="1", resolution=224, value=1.0),
                         ProxyScore(arch_id=ids["c"], score="synflow", version="1", resolution=224, value=1.0),
                         ProxyScore(arch_id=ids["b"], score="params", version="1", resolution=224, value=2.0)])
        session.add_all([AccuracyResult(arch_id=ids[k], dataset="imagenet", top1=top1, epochs=300, source="run",
                                        provenance="trained") for k, top1 in (("a", 70.0), ("c", 71.0))])
        session.add(Predictor(device="board", backend="ort", batch=1, kind="ridge", feature_version="v",
                              model_format="json", model_blob="{}",
                              training_arch_ids=[ids[k] for k in ("a", "b", "c", "u", "e1")],
                              metrics={"points": {"arch_ids": [ids[k] for k in ("a", "b", "u")], "measured": [1, 2, 3]}}))
        session.commit()
    upgrade(engine)
    canonical = {"c": ids["c"], "f": arch_id(no_stage4), "u": ids["u"]}
    with Session(engine) as session:
        archs = {row.arch_id: row for row in session.scalars(select(Architecture))}
        assert set(archs) == set(canonical.values())
        assert all(arch_id(config_from_dict(row.config_json)) == key for key, row in archs.items())
        assert archs[ids["u"]].name == "b1"
        rows = sorted(session.scalars(select(Measurement)), key=lambda m: m.value)
        assert [m.value for m in rows] == [float(i + 1) for i in range(len(measured))]
        twin_of = {"a": "c", "b": "c", "c": "c", "e1": "f", "e2": "f", "u": "u"}
        assert [m.arch_id for m in rows] == [canonical[twin_of[k]] for k in measured]
        scores = {(s.arch_id, s.score) for s in session.scalars(select(ProxyScore))}
        assert scores == {(ids["c"], "synflow"), (ids["c"], "params")}
        results = {(r.arch_id, r.top1, r.source) for r in session.scalars(select(AccuracyResult))}
        assert results == {(ids["c"], 71.0, "run"), (ids["c"], 70.0, f"run (stored as architecture {ids['a']})")}
        predictor = session.scalars(select(Predictor)).one()
        assert predictor.training_arch_ids == [ids["c"], ids["u"], canonical["f"]]
        assert predictor.metrics["points"] == {"arch_ids": [ids["c"], ids["c"], ids["u"]], "measured": [1, 2, 3]}
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
