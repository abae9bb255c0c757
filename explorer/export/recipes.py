"""Training recipes of the published LowFormer models, as data.

The values are the reference training configuration (``configs/cls/imagenet/default.yaml`` plus
the per-model overrides; see docs on the LowFormer architecture, section 9). An exported
architecture carries the recipe of its nearest preset, so that a training repository starts from
settings that are known to work for a network of similar size.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Settings every LowFormer model shares.
COMMON_RECIPE: dict[str, str] = {
    "epochs": "300",
    "optimizer": "AdamW (betas 0.9/0.999, eps 1e-8), weight decay 0.1, none on keys containing 'norm' or 'bias'",
    "schedule": "cosine, 20 warm-up epochs from lr 0, gradient clipping at 2.0",
    "loss": "BCE with label smoothing 0.1; EMA decay 0.9998",
    "learning rate": "init_lr = base_lr x number of GPUs (x bsizemult, which is also gradient accumulation)",
    "data": "random resolution from {128, 160, 192, 224}, random interpolation; "
            "evaluation at 224: bicubic resize to 236, centre crop 224, ImageNet mean/std",
    "initialisation": "conv, linear and transposed-conv weights trunc-normal std 0.02, biases 0; norms weight 1, "
                      "bias 0; last BN gamma of every residual MBConv/FusedMBConv branch 0",
    "BN reset": "after training, on 16k images",
}


@dataclass(frozen=True)
class TrainingRecipe:
    """Per-model overrides of :data:`COMMON_RECIPE`."""

    preset: str
    batch_per_gpu: int
    base_lr: float
    bsizemult: int = 1
    randaugment: tuple[int, int] = (1, 3)
    mixup: float = 0.1
    cutmix: float = 0.1
    random_erase: float = 0.0
    droppath: float = 0.0
    droppath_skip: int = 0
    mesa: tuple[float, float] | None = None

    def as_rows(self) -> list[tuple[str, str]]:
        """(setting, value) rows for a README table."""
        batch = f"{self.batch_per_gpu}" + (f" x bsizemult {self.bsizemult}" if self.bsizemult > 1 else "")
        rows = [
            ("batch per GPU", batch),
            ("base_lr", f"{self.base_lr:g}" + (f" (x {self.bsizemult})" if self.bsizemult > 1 else "")),
            ("RandAugment n/m", f"{self.randaugment[0]}/{self.randaugment[1]}"),
            ("mixup / cutmix", f"{self.mixup:g} / {self.cutmix:g}"),
            ("random erase", f"{self.random_erase:g}"),
            ("drop path", f"{self.droppath:g}" + (f" (skip {self.droppath_skip})" if self.droppath_skip else "")),
        ]
        if self.mesa is not None:
            rows.append(("MESA", f"{self.mesa[0]:g}, {self.mesa[1]:g}"))
        return rows


TRAINING_RECIPES: dict[str, TrainingRecipe] = {
    recipe.preset: recipe
    for recipe in (
        TrainingRecipe("lowformer-b0", batch_per_gpu=170, base_lr=3.32e-4),
        TrainingRecipe("lowformer-b1", batch_per_gpu=128, base_lr=2.5e-4),
        TrainingRecipe("lowformer-b1.5", batch_per_gpu=170, base_lr=1.66e-4, randaugment=(2, 6),
                       mixup=0.3, cutmix=0.3, droppath=0.1),
        TrainingRecipe("lowformer-b2", batch_per_gpu=170, base_lr=1.25e-4, randaugment=(2, 5),
                       random_erase=0.2, mixup=0.2, cutmix=0.2, droppath=0.1, droppath_skip=2),
        TrainingRecipe("lowformer-b3", batch_per_gpu=75, bsizemult=4, base_lr=9.4e-5, randaugment=(2, 5),
                       random_erase=0.2, mixup=0.2, cutmix=0.2, droppath=0.1, droppath_skip=2,
                       mesa=(0.25, 2.0)),
        TrainingRecipe("lowformer-e1", batch_per_gpu=100, bsizemult=2, base_lr=1e-4),
        TrainingRecipe("lowformer-e2", batch_per_gpu=50, bsizemult=4, base_lr=1e-4),
        TrainingRecipe("lowformer-e3", batch_per_gpu=50, bsizemult=8, base_lr=6.25e-5),
    )
}
