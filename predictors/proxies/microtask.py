"""A micro-task proxy: train a scaled-down copy of the architecture for a short CPU schedule
(150 steps of batch 32 by default) on a small image-classification task and report held-out
accuracy. It is the only score here that involves learning, and the most expensive: tens of
seconds per architecture on one core of a quiet machine, minutes on a busy one, which is why a
search uses it only when cached or explicitly requested.

The default task, ``shapes-gratings``, is generated procedurally and needs no download. Each
32x32 image holds one object on a smooth coloured background with pixel noise; its class is the
pair (shape, texture orientation): five shapes (disc, square, triangle, cross, ring) times two
grating orientations (near-horizontal, near-vertical), ten classes. Position, size, colours,
grating frequency and phase, background and noise are nuisances drawn at random, so a network
must combine a global shape cue with a local texture cue. Training batches are drawn afresh for
every step from ``(seed, step)`` (no over-fitting to a finite set); the held-out set is a fixed
batch from another stream. Everything is a pure function of the seed.

Users with data point the same code at an ImageFolder directory (``root/<class>/<image>``) with
:class:`ImageFolderTask`: images are resized to the task resolution with Pillow and split into
training and held-out parts by a seeded permutation.

How the architecture is scaled (:func:`scaled_config`): the input resolution becomes the task's
(32 by default, the LowFormer minimum: five stride-2 stages leave a 1x1 map), every stage width and
both head widths are multiplied by ``width`` and rounded to a multiple of 8 (at least 8 channels,
16 for the head; LowFormer's head count follows from the width as in the full model), and the
classifier gets the task's class count. Depths, expansions, attention types and all other knobs
are kept, so the ranking reflects the topology. The schedule is AdamW with linear warm-up,
cosine decay and gradient clipping at 2. Known weakness: at 32 px LowFormer's stage 4 sees a
1x1 map and its attention a single token, so the micro-task measures the convolutional
trunk more than the token mixers; and a 150-step schedule favours networks that learn fast.
Score: held-out top-1 accuracy in percent on the micro-task; it is not ImageNet accuracy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from search_spaces.base import ArchConfig

MICROTASK_VERSION = "1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".webp")


class MicroTaskError(ValueError):
    """The micro-task cannot run on this architecture or data."""


class Task(Protocol):
    name: str
    num_classes: int
    resolution: int

    def train_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]: ...


def _shape_masks(dx: torch.Tensor, dy: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """(5, N, H, W) masks of disc, square, triangle, cross and ring at offsets dx, dy."""
    r = torch.sqrt(dx**2 + dy**2)
    tri_half_width = (dy + size * 0.8) * 0.6
    return torch.stack([
        r < size,
        torch.maximum(dx.abs(), dy.abs()) < size * 0.82,
        (dy.abs() < size * 0.8) & (dx.abs() < tri_half_width),
        ((dx.abs() < size * 0.32) & (dy.abs() < size)) | ((dy.abs() < size * 0.32) & (dx.abs() < size)),
        (r < size) & (r > size * 0.55),
    ]).float()


@dataclass(frozen=True)
class GeneratedTask:
    """The procedurally generated ``shapes-gratings`` task (see module doc)."""

    seed: int = 0
    resolution: int = 32
    held_out_size: int = 1000
    noise: float = 0.08
    num_shapes: int = 5
    num_orientations: int = 2

    @property
    def num_classes(self) -> int:
        return self.num_shapes * self.num_orientations

    @property
    def name(self) -> str:
        """Identifies the data exactly (it is part of cache keys): non-default knobs are spelled out."""
        extra = "".join(f"-{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                        if f.name not in ("seed", "resolution") and getattr(self, f.name) != f.default)
        return f"shapes-gratings-v{MICROTASK_VERSION}@{self.resolution}px-seed{self.seed}{extra}"

    def _generate(self, n: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + stream)
        side = self.resolution
        labels = torch.randint(self.num_classes, (n,), generator=g)
        shape, orient = labels // self.num_orientations, labels % self.num_orientations

        def uniform(low: float, high: float, *shape_: int) -> torch.Tensor:
            return low + (high - low) * torch.rand(*shape_, generator=g)

        axis = torch.linspace(-1, 1, side)
        ys, xs = torch.meshgrid(axis, axis, indexing="ij")
        cx, cy = uniform(-0.35, 0.35, n, 1, 1), uniform(-0.35, 0.35, n, 1, 1)
        size = uniform(0.35, 0.6, n, 1, 1)
        dx, dy = xs - cx, ys - cy
        mask = _shape_masks(dx, dy, size)[shape, torch.arange(n)]
        theta = orient.float().view(n, 1, 1) * (math.pi / 2) + uniform(-0.3, 0.3, n, 1, 1)
        freq = uniform(7.0, 11.0, n, 1, 1) / size
        phase = uniform(0, 2 * math.pi, n, 1, 1)
        grating = 0.5 + 0.5 * torch.sin(freq * (dx * torch.cos(theta) + dy * torch.sin(theta)) + phase)
        colour_a = uniform(0, 1, n, 3, 1, 1)
        colour_b = (colour_a + uniform(0.3, 0.7, n, 3, 1, 1)) % 1.0
        foreground = colour_a * grating.unsqueeze(1) + colour_b * (1 - grating.unsqueeze(1))
        coarse = uniform(0, 1, n, 3, 4, 4)
        background = nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
        background = 0.5 + 0.5 * (background - 0.5)
        images = mask.unsqueeze(1) * foreground + (1 - mask.unsqueeze(1)) * background
        images = images + self.noise * torch.randn(images.shape, generator=g)
        return (images - 0.5) / 0.3, labels

    def train_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._generate(batch_size, stream=2 * step + 2)

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._generate(self.held_out_size, stream=1)


class ImageFolderTask:
    """Images from ``root/<class>/<file>``, resized to ``resolution``; a seeded split keeps
    ``held_out_fraction`` of every class for evaluation. Loaded once into memory."""

    def __init__(self, root: str | Path, resolution: int = 32, held_out_fraction: float = 0.2, seed: int = 0):
        try:
            from PIL import Image
        except ImportError as err:  # Pillow is optional: only ImageFolder input needs it
            raise MicroTaskError("reading an ImageFolder needs Pillow (pip install pillow)") from err
        root = Path(root)
        if not root.is_dir():
            raise MicroTaskError(f"ImageFolder {str(root)!r} is not a directory")
        if not 0 < held_out_fraction < 1:
            raise MicroTaskError(f"held_out_fraction {held_out_fraction!r} is invalid; allowed: 0 < f < 1")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if len(classes) < 2:
            raise MicroTaskError(f"ImageFolder {str(root)!r} needs at least 2 class sub-directories, found {classes}")
        rng = np.random.default_rng(seed)
        train, test, digest = [], [], hashlib.sha256()
        for label, cls in enumerate(classes):
            files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(files) < 2:
                raise MicroTaskError(f"class {cls!r} in {str(root)!r} has {len(files)} images; needs at least 2")
            order = rng.permutation(len(files))
            n_test = max(1, round(len(files) * held_out_fraction))
            for rank, index in enumerate(order):
                path = files[index]
                digest.update(f"{cls}/{path.name}".encode())
                with Image.open(path) as image:
                    pixels = image.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
                item = (np.asarray(pixels, dtype=np.float32) / 255.0, label)
                (test if rank < n_test else train).append(item)
        self.root, self.resolution, self.seed = root, resolution, seed
        self.classes, self.num_classes = classes, len(classes)
        self.name = f"imagefolder:{root.name}-{digest.hexdigest()[:8]}@{resolution}px-seed{seed}"
        self._train = self._tensors(train)
        self._test = self._tensors(test)

    @staticmethod
    def _tensors(items: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(np.stack([i for i, _ in items])).permute(0, 3, 1, 2)
        return (images - 0.5) / 0.25, torch.tensor([label for _, label in items])

    def train_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        index = torch.randint(len(self._train[1]), (batch_size,), generator=g)
        return self._train[0][index], self._train[1][index]

    def held_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._test


@dataclass(frozen=True)
class MicroTaskSettings:
    """The training schedule. Part of the cache key: any change gives a new score version."""

    width: float = 0.25
    steps: int = 150
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 20
    seed: int = 0

    def key(self) -> str:
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self))


def _round8(value: float, minimum: int) -> int:
    return max(minimum, int(round(value / 8)) * 8)


def scaled_config(config: ArchConfig, task: Task, width: float) -> ArchConfig:
    """The architecture as trained on the micro-task (see module doc)."""
    if config.space != "lowformer":
        raise MicroTaskError(
            f"the micro-task trains image classifiers; space {config.space!r} is not one (allowed: 'lowformer')")
    if not 0 < width <= 1:
        raise MicroTaskError(f"width multiplier {width!r} is invalid; allowed: 0 < width <= 1")
    return dataclasses.replace(
        config,
        widths=tuple(_round8(w * width, 8) for w in config.widths),
        head_widths=tuple(_round8(w * width, 16) for w in config.head_widths),
        num_classes=task.num_classes,
        resolution=task.resolution,
    )


@dataclass(frozen=True)
class MicroTaskResult:
    top1: float  # held-out accuracy on the micro-task, percent
    seconds: float
    task: str
    settings: MicroTaskSettings


def _evaluate(model: nn.Module, task: Task, chunk: int = 250) -> float:
    images, labels = task.held_out()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), chunk):
            logits = model(images[start:start + chunk])
            correct += int((logits.argmax(1) == labels[start:start + chunk]).sum())
    return 100.0 * correct / len(labels)


def train_and_evaluate(model: nn.Module, task: Task, settings: MicroTaskSettings) -> float:
    """Train ``model`` on ``task`` with the settings' schedule; held-out top-1 in percent."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )

    def lr_factor(step: int) -> float:
        if step < settings.warmup:
            return (step + 1) / settings.warmup
        progress = (step - settings.warmup) / max(1, settings.steps - settings.warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    for step in range(settings.steps):
        images, labels = task.train_batch(step, settings.batch_size)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
        schedule.step()
    return _evaluate(model, task)


def microtask(config: ArchConfig, task: Task | None = None, settings: MicroTaskSettings | None = None) -> MicroTaskResult:
    """Scale ``config`` down, train it on ``task`` (default: the generated one), evaluate."""
    task = GeneratedTask() if task is None else task
    settings = MicroTaskSettings() if settings is None else settings
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    model = scaled_config(config, task, settings.width).build()
    top1 = train_and_evaluate(model, task, settings)
    return MicroTaskResult(top1, time.perf_counter() - started, task.name, settings)
