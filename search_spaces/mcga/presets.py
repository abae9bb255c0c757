"""MCGA presets: two readings of the paper (no code was released; both are reconstructions)."""

from __future__ import annotations

from search_spaces.mcga.config import MCGAConfig

#: name -> (config at 224, source)
MCGA_PRESETS: dict[str, tuple[MCGAConfig, str]] = {
    "mcga-paper": (
        MCGAConfig(),
        "MCGA, paper-literal reading: reconstruction; published 10.3 M params / 0.7 G MACs, "
        "ours 9,131,016 / 705.45 M"),
    "mcga-budget": (
        MCGAConfig(classifier_hidden=1152),
        "MCGA with a two-layer classifier (256-1152-1000, GELU): reconstruction; published 10.3 M params / "
        "0.7 G MACs, ours 10,323,080 / 706.64 M"),
}
