"""The reference space: published networks of timm, counted from their ONNX files, measured like
any architecture, never searched."""

from __future__ import annotations

import json
import sys
import warnings

import pytest
import sqlalchemy as sa
import torch
from torch import nn

from explorer import arch_id, config_from_dict
from explorer.architectures import flat_space, name_of
from explorer.cli import main
from explorer.db import Architecture, Measurement, open_database
from explorer.errors import UserError
from explorer.measure import CampaignSpec, ProtocolSettings, plan_campaign, run_campaign
from explorer.reference import (
    ReferenceConfig,
    ReferenceNotBuilt,
    build_reference,
    reference_configs,
    reference_networks,
)
from explorer.reference.onnx_count import onnx_op_table
from explorer.space import reference_within_budget
from predictors.reference import reference_results
from search_spaces.base import KnobError
from search_spaces.optable import ATTENTION_MATMUL, DENSE_CONV, DEPTHWISE_CONV, GROUPED_CONV, POINTWISE, TRANSPOSED_CONV

TINY = ProtocolSettings(warmup=1, block_size=4, reference_block_size=2, min_samples=4, max_samples=8,
                        time_limit_s=0.2, remeasure=False)


def _export(module: nn.Module, path, side: int) -> None:
    """Write ``module`` as the reference environment's exporter does (dynamic batch, opset 17)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, side, side),), str(path), opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True)


class Mixed(nn.Module):
    """Every op the counter distinguishes, at sizes small enough to count by hand."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)  # 16x16 -> 8x8
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.pointwise = nn.Conv2d(8, 16, 1)
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2)  # 8x8 -> 16x16, counted per input pixel
        self.qkv = nn.Linear(4, 12)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        x = self.up(self.pointwise(self.grouped(self.depthwise(self.dense(x)))))
        tokens = x.flatten(2).transpose(1, 2)  # (1, 256, 4)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        tokens = (q @ k.transpose(1, 2)).softmax(-1) @ v
        return self.head(tokens.mean(1))


def test_onnx_counter_follows_the_mac_convention(tmp_path):
    path = tmp_path / "mixed.onnx"
    _export(Mixed(), path, 16)
    table = onnx_op_table(path)
    macs = {c: sum(r.macs for r in table.rows if r.op_class == c) for c in
            (DENSE_CONV, DEPTHWISE_CONV, GROUPED_CONV, POINTWISE, TRANSPOSED_CONV, ATTENTION_MATMUL)}
    assert macs[DENSE_CONV] == 8 * 8 * 8 * 3 * 9
    assert macs[DEPTHWISE_CONV] == 8 * 8 * 8 * 9
    assert macs[GROUPED_CONV] == 8 * 8 * 8 * 4 * 9
    assert macs[TRANSPOSED_CONV] == 8 * 8 * 16 * 4 * 4  # input pixels x C_in x C_out x k^2
    assert macs[POINTWISE] == 8 * 8 * 8 * 16 + 256 * 4 * 12 + 4 * 10
    assert macs[ATTENTION_MATMUL] == 2 * 256 * 256 * 4
    assert table.macs == sum(macs.values())
    assert table.params == sum(p.numel() for p in Mixed().parameters())


def test_onnx_counter_agrees_with_the_op_table_of_our_own_networks(tmp_path):
    from explorer.architectures import resolve
    from explorer.onnx_export import export_onnx

    config = resolve("lowformer-b0", 128)
    path = export_onnx(config, tmp_path / "b0.onnx")
    counted, analytic = onnx_op_table(path), config.op_table()
    assert counted.macs == pytest.approx(analytic.macs, rel=0.02)
    # BatchNorm is folded into the convolutions by the export: a fraction of a percent of the params
    assert counted.params == pytest.approx(analytic.params, rel=0.02)


def test_the_list_covers_efficient_networks_with_published_top1():
    networks = reference_networks()
    assert len(networks) >= 25
    published = {(r.model, r.resolution): r for r in reference_results()}
    for network in networks:
        assert (network.weights, network.resolution) in published, network
    macs = [published[(n.weights, n.resolution)].macs_m for n in networks]
    assert min(macs) >= 50 and max(macs) <= 3000
    assert any(published[(n.weights, n.resolution)].distilled for n in networks)
    assert len({arch_id(n.config()) for n in networks}) == len(networks)


def test_reference_configs_are_stored_architectures_but_never_sampled():
    config = config_from_dict({"space": "reference", "model": "resnet18"})
    assert config == ReferenceConfig("resnet18", 224) and name_of(config) == "resnet18"
    assert arch_id(config) == arch_id(config_from_dict({"space": "reference", "model": "resnet18", "resolution": 224}))
    assert arch_id(config.with_resolution(160)) != arch_id(config)
    with pytest.raises(KnobError, match="model"):
        config_from_dict({"space": "reference", "model": "not_a_network"})
    with pytest.raises(KnobError, match="space"):
        flat_space("reference")
    assert main(["space", "sample", "--space", "reference", "--n", "1"]) == 2


def test_a_network_without_its_onnx_file_says_how_to_build_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_REFERENCE_ONNX", str(tmp_path / "none"))
    monkeypatch.setenv("EXPLORER_REFERENCE_PYTHON", str(tmp_path / "absent" / "python"))
    with pytest.raises(ReferenceNotBuilt, match="build-reference"):
        reference_configs()[0].op_table()
    measure = ["measure", "--space", "reference", "--device", "local", "--db", str(tmp_path / "m.db"), "--create-db"]
    assert main(measure) == 2
    error = capsys.readouterr().err
    assert "no ONNX file" in error and "build-reference" in error and "Traceback" not in error
    # with a reference environment, the campaign exports what is missing first (here one without timm)
    monkeypatch.setenv("EXPLORER_REFERENCE_PYTHON", sys.executable)
    assert main([*measure, "--n", "1"]) == 2
    error = capsys.readouterr().err
    assert "did not export" in error and "timm" in error and "Traceback" not in error
    assert main(["space", "presets", "--space", "reference", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(reference_networks()) and not any(r["built"] for r in rows)
    assert all(r["macs"] is None and r["top1"] is not None for r in rows)


def test_a_reference_campaign_measures_the_onnx_files_and_resumes(tmp_path, monkeypatch, quiet_host):
    """Stand-in files (a small network of our own) take the place of timm's exports."""
    monkeypatch.setenv("EXPLORER_REFERENCE_ONNX", str(tmp_path))
    configs = reference_configs()[:2]
    assert {c.resolution for c in configs} == {224}
    for config in configs:
        _export(nn.Sequential(nn.Conv2d(3, 8, 3, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(8, 10)), config.onnx_path(), 224)
    db = open_database(tmp_path / "m.db")
    spec = CampaignSpec(device="local", n=2, sampler="presets", space="reference", protocol=TINY,
                        drift_check=(), reference=None, name="reference-test")
    with pytest.raises(KnobError, match="backend"):
        plan_campaign(db, CampaignSpec(**{**spec.__dict__, "backend": "torch"}))
    report = run_campaign(db, spec)
    assert (report.measured, report.failed) == (2, 0)
    with db.session() as session:
        stored = {a.name: a for a in session.scalars(sa.select(Architecture))}
        rows = list(session.scalars(sa.select(Measurement)))
    assert set(stored) == {c.model for c in configs}
    expected_macs = 28 * 28 * 8 * 27 + 8 * 10
    assert all(a.space == "reference" and a.macs == expected_macs for a in stored.values())
    assert all(r.status == "ok" and r.median_ms > 0 for r in rows)
    assert run_campaign(db, spec).skipped == 2  # resumable: nothing is measured twice

    # measured to stand beside a search, never to train its latency predictor
    from predictors.store import TrainingDataError, load_training_set

    with db.session() as session, pytest.raises(TrainingDataError):
        load_training_set(session, "local")

    # beside a search: what fits the budget, with its measured latency and published top-1
    slowest = max(r.median_ms for r in rows)
    found = reference_within_budget(db, "local", slowest * 2)
    assert found["measured"] == 2 and {r["name"] for r in found["within_budget"]} == set(stored)
    assert found["best"]["top1"] == max(r["top1"] for r in found["within_budget"])
    assert all(r["macs"] == expected_macs and r["latency"].startswith("measured") for r in found["within_budget"])
    none = reference_within_budget(db, "local", min(r.median_ms for r in rows) / 2)
    assert none["within_budget"] == [] and none["best"] is None and "2 reference networks measured" in none["message"]


def test_a_bundle_carries_the_onnx_files_so_a_board_needs_no_timm(tmp_path, monkeypatch):
    from explorer.measure import Job
    from explorer.onnx_export import file_sha256
    from explorer.remote import write_bundle

    monkeypatch.setenv("EXPLORER_REFERENCE_ONNX", str(tmp_path))
    config = reference_configs()[0].with_resolution(32)
    _export(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), config.onnx_path(), 32)
    manifest = write_bundle([Job(config, "ort", 1, 1)], tmp_path / "bundle", device="local", reference=None)
    (entry,) = manifest.models
    assert entry.config == {"space": "reference", "model": config.model, "resolution": 32}
    assert entry.sha256 == file_sha256(config.onnx_path()) == file_sha256(tmp_path / "bundle" / entry.file)
    # and `explorer space export-onnx NAME` hands out the same file
    assert main(["space", "export-onnx", config.model, "--resolution", "32", "-o", str(tmp_path / "out.onnx")]) == 0
    assert file_sha256(tmp_path / "out.onnx") == entry.sha256
    assert main(["space", "export-onnx", config.model, "--resolution", "32", "--opset", "13",
                 "-o", str(tmp_path / "other.onnx")]) == 2


def test_a_build_skips_what_is_built_and_reports_what_does_not_export(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_REFERENCE_ONNX", str(tmp_path))
    monkeypatch.setenv("EXPLORER_REFERENCE_PYTHON", str(tmp_path / "absent" / "python"))
    with pytest.raises(UserError, match="setup.sh --reference"):
        build_reference(reference_configs()[:1])
    monkeypatch.setenv("EXPLORER_REFERENCE_PYTHON", sys.executable)  # the main environment: no timm
    built, other = reference_configs()[:2]
    built.onnx_path().write_bytes(b"")
    lines = build_reference([built, other])
    assert lines[0] == {"model": built.model, "resolution": built.resolution, "path": str(built.onnx_path()),
                        "skipped": True}
    assert lines[1]["model"] == other.model and "timm" in lines[1]["error"]
    assert not other.onnx_path().exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.slow
def test_every_reference_network_builds_offline_and_its_counts_agree_with_fvcore(tmp_path):
    """Runs the reference environment (scripts/setup.sh --reference, part of --test): a network
    that timm no longer builds or exports fails here, and so does a count that drifts from
    fvcore's on the exported (re-parameterised) module by more than 2 %."""
    lines = build_reference(reference_configs(), fvcore=True, out=tmp_path)
    assert [line for line in lines if "error" in line] == []
    assert len(lines) == len(reference_networks())
    drifts = [(line["model"], line["macs"], line["fvcore_macs"], line["params"], line["fvcore_params"])
              for line in lines if abs(line["macs_difference"]) > 0.02 or abs(line["params_difference"]) > 0.02]
    assert drifts == []  # (model, our MACs, fvcore's, our params, fvcore's)
    assert all(line["macs"] == onnx_op_table(line["path"]).macs for line in lines[:2])
