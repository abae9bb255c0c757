"""The analytic op table equals fvcore (with the paper-convention handles) on the built module."""

import pytest

import explorer
from explorer.counting import fvcore_counts
from search_spaces.lowformer import LOWFORMER_PRESETS
from search_spaces.lowformer.sampling import sample_configs
from search_spaces.optable import OP_CLASSES


@pytest.mark.parametrize("name", sorted(LOWFORMER_PRESETS))
def test_presets_equal_fvcore(name):
    config = explorer.resolve(name)
    table = config.op_table()
    assert (table.macs, table.params) == fvcore_counts(config)


def _random_configs(n, seed):
    # resolutions vary so that odd feature maps and crops are covered too
    configs = sample_configs(n, seed)
    return [c.with_resolution(r) for c, r in zip(configs, [64, 96, 112, 128, 160, 200] * n)]


@pytest.mark.parametrize("config", _random_configs(30, seed=11), ids=lambda c: c.arch_id)
def test_random_configs_equal_fvcore(config):
    table = config.op_table()
    assert (table.macs, table.params) == fvcore_counts(config)


@pytest.mark.slow
def test_300_random_configs_equal_fvcore():
    mismatches = []
    for config in _random_configs(300, seed=2024):
        table = config.op_table()
        if (table.macs, table.params) != fvcore_counts(config):
            mismatches.append(config.arch_id)
    assert mismatches == []


def test_rows_carry_shapes_classes_and_bytes():
    table = explorer.resolve("lowformer-b1").op_table()
    rows = table.rows
    assert len(rows) == len(table)
    assert {r.op_class for r in rows} <= set(OP_CLASSES)
    stem = rows[0]
    assert (stem.name, stem.op_class, stem.in_shape, stem.out_shape) == (
        "stage0.stem.conv", "dense_conv", (3, 224, 224), (16, 112, 112))
    assert stem.bytes_read == 4 * (3 * 224 * 224 + 432) and stem.bytes_written == 4 * 16 * 112 * 112
    names = [r.name for r in rows]
    assert len(set(names)) == len(names), "row names are unique"
    attention = [r for r in rows if r.op_class == "attention_matmul" and r.stage == "stage3"]
    assert attention[0].macs == 2 * 49 * 49 * 32  # 2 heads, 7x7 tokens, head width 32
    transposed = [r for r in rows if r.op_class == "transposed_conv"]
    assert transposed[0].macs == 4 * 4 * 64 * 128 * 7 * 7  # counted per input pixel


def test_class_breakdown_sums_to_the_totals():
    table = explorer.resolve("lowformer-b1-relu-linear-attention").op_table()
    by_class = table.by_class()
    assert sum(v["macs"] for v in by_class.values()) == table.macs
    assert sum(v["params"] for v in by_class.values()) == table.params
    assert sum(v["ops"] for v in by_class.values()) == len(table)
    assert by_class["norm"]["macs"] == by_class["activation"]["macs"] == 0
    assert by_class["grouped_conv"]["ops"] == 10  # one aggregation conv per LiteMLA block
