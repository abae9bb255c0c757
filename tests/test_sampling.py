"""Seeded sampling, Sobol sampling, mutations and neighbours of the LowFormer space."""

import numpy as np
import pytest

from search_spaces.base import KnobError
from search_spaces.lowformer.sampling import (
    KNOBS,
    config_from_flat,
    flat_from_config,
    in_space,
    mutate,
    neighbours,
    sample_configs,
    sobol_configs,
)


def test_same_seed_same_configs_and_all_valid():
    first, again = sample_configs(50, seed=3), sample_configs(50, seed=3)
    assert [c.arch_id for c in first] == [c.arch_id for c in again]
    assert [c.arch_id for c in first] != [c.arch_id for c in sample_configs(50, seed=4)]
    assert all(in_space(c) for c in first)
    assert len({c.arch_id for c in first}) == 50


def test_sampling_covers_every_value_of_every_knob():
    flats = [flat_from_config(c) for c in sobol_configs(256, seed=0)]
    for knob, values in KNOBS.items():
        seen = {f[knob] for f in flats}
        # attention knobs collapse when the attention is off or linear, a fusion threshold that
        # fuses the same stages as an earlier one takes its value; the rest are all reached
        assert seen <= set(values)
        if not knob.startswith(("stage3.", "stage4.")) and knob != "fusion_threshold":
            assert seen == set(values), knob


def test_collapsing_combinations_are_normalised():
    flat = flat_from_config(sample_configs(1, seed=0)[0])
    flat.update({"stage3.attention": "relu-linear", "stage3.attention_stride": 4})
    assert config_from_flat(flat).stage3.attention_stride == 1
    flat.update({"stage3.attention": "none", "stage3.attention_kernel": 7})
    off_7 = config_from_flat(flat)
    flat["stage3.attention_kernel"] = 3
    assert config_from_flat(flat).arch_id == off_7.arch_id


def test_missing_flat_knob_is_named():
    flat = flat_from_config(sample_configs(1, seed=0)[0])
    del flat["depth3"]
    with pytest.raises(KnobError, match="depth3"):
        config_from_flat(flat)


def test_mutate_changes_the_requested_number_of_knobs():
    """One mutated knob moves the architecture (a knob the network does not use is drawn again);
    more knobs move more. A mutate that returned its input would fail both."""
    rng = np.random.default_rng(0)
    parents = sample_configs(40, seed=5)
    changed = {1: [], 3: []}
    for n_knobs in changed:
        for config in parents:
            child = mutate(config, rng, n_knobs=n_knobs)
            before, after = flat_from_config(config), flat_from_config(child)
            changed[n_knobs].append(sum(before[k] != after[k] for k in KNOBS))
    assert min(changed[1]) >= 1
    assert np.median(changed[1]) == 1  # the knob itself, plus the knobs it makes unused (a stage's)
    # three draws move clearly more (a draw can land on a knob another draw made unused, so fewer than 3)
    assert np.mean(changed[3]) > np.mean(changed[1]) + 0.5


def test_neighbours_are_distinct_and_one_step_away():
    config = sample_configs(1, seed=9)[0]
    near = neighbours(config)
    assert near and len({c.arch_id for c in near}) == len(near)
    assert config.arch_id not in {c.arch_id for c in near}
    before = flat_from_config(config)
    for other in near:
        after = flat_from_config(other)
        # one knob moved; normalisation may reset the knobs that depend on it
        assert any(config_from_flat({**before, k: after[k]}).arch_id == other.arch_id
                   for k in KNOBS if before[k] != after[k])
