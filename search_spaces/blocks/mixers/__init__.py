"""The token mixers a family can put in its blocks, by attention type name.

Each mixer is a module of this package (its op-table rows and :class:`MixerSpec`) and a class of
:mod:`search_spaces.blocks.mixers.modules`; configs validate attention types and type-specific
knobs, and op tables find a mixer's rows, through :data:`MIXERS` alone. The registry is free of
torch, so configs and op tables stay cheap to import.
"""

from __future__ import annotations

from search_spaces.blocks.mixers import group_attention, lite_mla, lowtention, mhsa, rlmhsa
from search_spaces.blocks.mixers.spec import MixerKnobs, MixerSpec

#: attention type name -> mixer, in the order configs list them
MIXERS: dict[str, MixerSpec] = {
    spec.name: spec
    for spec in (lowtention.SPEC, mhsa.SPEC, lite_mla.RELU_LINEAR, lite_mla.RELU_LINEAR_MS, rlmhsa.SPEC,
                 group_attention.SPEC)
}

__all__ = ["MIXERS", "MixerKnobs", "MixerSpec"]
