"""The micro-task: deterministic generated data, learnable, ImageFolder input, stored results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.architectures import resolve
from explorer.db import open_database
from predictors.proxies import (
    GeneratedTask,
    ImageFolderTask,
    MicroTaskError,
    MicroTaskSettings,
    ScoringOptions,
    microtask,
    scaled_config,
    score_configs,
    score_values,
)
from predictors.proxies.scoring import torch_threads
from predictors.results import known_results

TINY = MicroTaskSettings(steps=4, batch_size=8)
SMALL_TASK = GeneratedTask(held_out_size=64)


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def test_generated_task_is_deterministic_by_seed():
    task = GeneratedTask()
    x1, y1 = task.train_batch(3, 16)
    x2, y2 = GeneratedTask().train_batch(3, 16)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(task.train_batch(4, 16)[0], x1)
    assert not torch.equal(GeneratedTask(seed=1).train_batch(3, 16)[0], x1)
    images, labels = task.held_out()
    assert images.shape == (1000, 3, 32, 32) and task.num_classes == 10
    assert np.bincount(labels.numpy(), minlength=10).min() > 50  # every class is present


@pytest.mark.slow
def test_a_scaled_architecture_of_the_space_learns_the_generated_task():
    """What the score measures: LowFormer-B0 scaled to the task (widths x0.25, 32 px), trained
    with the default schedule, does clearly better than chance (10 %, 11.6 % for the most common
    held-out class). One seed in a few does not learn (seed 1: 12.4 %), so the median of three
    seeds is judged: 24.7, 12.4 and 23.8 % on an Intel Xeon with 1 torch thread (24.7, 12.4 and
    24.0 % with 2; seed 0 gave 24.1 % on an AMD EPYC)."""
    top1 = [microtask(resolve("lowformer-b0"), GeneratedTask(), MicroTaskSettings(seed=seed)).top1
            for seed in (0, 1, 2)]
    assert np.median(top1) > 18.0, top1


def test_scaled_config_keeps_the_topology():
    b1 = resolve("lowformer-b1")
    small = scaled_config(b1, GeneratedTask(), 0.25)
    assert small.depths == b1.depths and small.stage3 == b1.stage3
    assert small.widths == (8, 8, 16, 32, 64) and small.head_widths == (384, 400)
    assert (small.resolution, small.num_classes) == (32, 10)
    with pytest.raises(MicroTaskError, match="allowed: 0 < width <= 1"):
        scaled_config(b1, GeneratedTask(), 1.5)
    with pytest.raises(MicroTaskError, match="allowed: 'lowformer'"):
        scaled_config(resolve("toy-conv-1"), GeneratedTask(), 0.5)


def test_micro_task_score_is_deterministic():
    b0 = resolve("lowformer-b0")
    first = microtask(b0, SMALL_TASK, TINY)
    assert 0 <= first.top1 <= 100 and first.task.startswith("shapes-gratings")
    assert microtask(b0, SMALL_TASK, TINY).top1 == first.top1


def test_micro_task_results_are_cached_and_stored_as_results(tmp_path):
    db = open_database(tmp_path / "micro.db")
    b0 = resolve("lowformer-b0")
    options = ScoringOptions(task=SMALL_TASK, microtask=TINY, compute_expensive=True)
    value = score_values(db, [b0], "microtask", options)[0]
    assert not value.cached and value.resolution == 32
    cached = ScoringOptions(task=SMALL_TASK, microtask=TINY)
    assert score_configs(db, [b0], "microtask", cached)[0] == value.value  # from the cache
    (result,) = known_results(db, provenance="micro-task")
    assert result.top1 == value.value and result.dataset == SMALL_TASK.name


def _write_folder(root, classes=("blue", "red"), per_class=10):
    """Noise images, each class brighter in its own channel. The noise matters: with flat colours
    a batch of one class normalises to nothing in batch norm, and whether 30 steps learn then
    depends on the CPU's rounding."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (30, 40, 3))
            pixels[..., 2 * index % 3] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")


def test_image_folder_task_reads_and_splits(tmp_path):
    _write_folder(tmp_path / "data")
    task = ImageFolderTask(tmp_path / "data", resolution=32, held_out_fraction=0.2)
    images, labels = task.held_out()
    assert task.classes == ["blue", "red"] and task.num_classes == 2
    assert images.shape == (4, 3, 32, 32) and sorted(labels.tolist()) == [0, 0, 1, 1]
    x, y = task.train_batch(0, 6)
    assert x.shape == (6, 3, 32, 32) and torch.equal(task.train_batch(0, 6)[1], y)
    assert task.name == ImageFolderTask(tmp_path / "data").name
    # blue against red is learnt in a few dozen steps: well above chance (50 %) on the held-out
    # images (100 % with training seeds 0-4 and 1 or 2 torch threads on an Intel Xeon)
    result = microtask(resolve("lowformer-b0"), task, MicroTaskSettings(steps=30, batch_size=8))
    assert result.top1 >= 75.0 and result.task == task.name


def test_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(MicroTaskError, match="is not a directory"):
        ImageFolderTask(tmp_path / "missing")
    _write_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(MicroTaskError, match="at least 2 class sub-directories"):
        ImageFolderTask(tmp_path / "one")
