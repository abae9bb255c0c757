"""The families ``explorer export`` writes, each with the factory its ``model.py`` ends in.

A family's ``model.py`` holds the definitions its sections of :mod:`explorer.export.layout` name,
found in the import closure of the factory modules (see
:func:`explorer.export.model_source.model_sources`); adding a family is an entry here and one there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from explorer.errors import UserError
from explorer.export.families import efficientvit, fmvit, lowformer, mcga


@dataclass(frozen=True)
class ExportFamily:
    """How to export one space: ``builder(spec, num_classes, features_only, out_indices)`` makes the
    model and ``stages(spec)`` its feature info; ``reconstruction`` says the family's published
    models were rebuilt from paper text; ``training`` says where a training recipe comes from when
    none is shipped."""

    title: str
    builder: Callable
    stages: Callable
    reconstruction: bool = False
    training: str = ""

    @property
    def factory(self) -> ModuleType:
        """The module defining the builder: the root of the ``model.py`` import graph."""
        return inspect.getmodule(self.builder)


EXPORT_FAMILIES: dict[str, ExportFamily] = {
    "lowformer": ExportFamily("LowFormer", lowformer.build_lowformer, lowformer.lowformer_stages),
    "efficientvit": ExportFamily(
        "EfficientViT (released B-series)", efficientvit.build_efficientvit, efficientvit.efficientvit_stages,
        training="Follow the released training code and configs of the B-series (mit-han-lab/efficientvit; "
                 "\"EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense Prediction\", Cai et al.)."),
    "efficientvit-seed": ExportFamily(
        "EfficientViT (seed paper, arXiv v1)", efficientvit.build_efficientvit_seed,
        efficientvit.efficientvit_seed_stages, reconstruction=True,
        training="Follow the training setup described in the seed paper (EfficientViT, arXiv v1, \"Enhanced "
                 "Linear Attention for High-Resolution Low-Computation Visual Recognition\"); no code was "
                 "released for it."),
    "fmvit": ExportFamily(
        "FMViT", fmvit.build_fmvit, fmvit.fmvit_stages, reconstruction=True,
        training="Follow the training setup described in the FMViT paper (Tan, Geng, Xie, 2023); no code was "
                 "released for it. Train the training form (`explorer export ... --form train`) and fuse it "
                 "afterwards."),
    "mcga": ExportFamily(
        "MCGA", mcga.build_mcga, mcga.mcga_stages, reconstruction=True,
        training="Follow the training setup described in the MCGA paper (\"Multi-scale Convolutions Meet Group "
                 "Attention for Dense Prediction Tasks\", Vo et al.); no code was released for it."),
}


def export_family(space: str) -> ExportFamily:
    """The family that exports architectures of ``space``; other spaces (the toy models) are refused."""
    if space not in EXPORT_FAMILIES:
        raise UserError(f"cannot export a {space!r} architecture; export writes the spaces "
                        f"{', '.join(EXPORT_FAMILIES)}")
    return EXPORT_FAMILIES[space]
