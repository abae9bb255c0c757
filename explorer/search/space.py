"""The LowFormer space as Optuna sees it: one categorical distribution per flat knob, so that
every knob is sampled in every trial, and the published models as seed trials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import CategoricalDistribution

from explorer.architectures import NAMED_ARCHITECTURES
from search_spaces.lowformer import LowFormerConfig
from search_spaces.lowformer.sampling import KNOBS, config_from_flat, flat_from_config

DISTRIBUTIONS: dict[str, CategoricalDistribution] = {
    name: CategoricalDistribution(list(values)) for name, values in KNOBS.items()
}
#: Published models drawn as reference markers and enqueued as seeds (when inside the space).
REFERENCE_MODELS = ("lowformer-b0", "lowformer-b1", "lowformer-b1.5", "lowformer-b2", "lowformer-b3",
                    "lowformer-e1", "lowformer-e2", "lowformer-e3")


def config_of(params: Mapping[str, Any], resolution: int) -> LowFormerConfig:
    return config_from_flat(params, resolution)


def reference_configs(resolution: int) -> dict[str, LowFormerConfig]:
    return {name: NAMED_ARCHITECTURES[name].make(resolution) for name in REFERENCE_MODELS}


def seed_params(resolution: int) -> dict[str, dict[str, Any]]:
    """Flat knobs of every reference model whose knob values all lie in the sampled space."""
    seeds = {}
    for name, config in reference_configs(resolution).items():
        flat = flat_from_config(config)
        if all(flat[k] in values for k, values in KNOBS.items()):
            seeds[name] = flat
    return seeds
