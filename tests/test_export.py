"""Export: a package a training repository can use without this project installed."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import torch

from explorer.architectures import resolve
from explorer.export import ExportItem, LatencyRecord, export_many, published_latencies, published_top1
from explorer.export.factory import build_lowformer

SMALL = resolve("lowformer-b0", resolution=64)

ISOLATED = textwrap.dedent("""
    import sys
    sys.path[:0] = [sys.argv[1], *sys.argv[2].split("|")]  # no repository, no .pth files (-I -S)
    try:
        import explorer
    except ImportError:
        pass
    else:
        raise SystemExit("explorer is importable: the test would prove nothing")
    import torch
    import model
    classifier = model.create_model(pretrained=False)
    classifier.load_state_dict(torch.load(sys.argv[3], weights_only=True))
    features = model.create_model(features_only=True)
    features.load_state_dict(torch.load(sys.argv[3], weights_only=True), strict=False)
    x = torch.load(sys.argv[4], weights_only=True)
    with torch.no_grad():
        out = {"logits": classifier(x), "features": features(x),
               "channels": features.feature_info.channels(), "reduction": features.feature_info.reduction()}
    torch.save(out, sys.argv[5])
""")


def _randomise(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer random (running variances positive), so equality means something."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.2
    model.load_state_dict(state)
    return state


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    item = ExportItem("lowformer-b0-64", SMALL, "preset lowformer-b0 at 64x64", latencies=(
        LatencyRecord("raspi5", 12.5, "predicted", "predicted by test-predictor, 90% interval", 11.0, 14.0),
        *published_latencies(resolve("lowformer-b0")),
    ), scores=(("synflow (proxy)", 123.0), *published_top1(resolve("lowformer-b0"))))
    [result] = export_many([item], root)
    assert result.ok, result.error
    return result


def test_package_has_every_file(exported):
    assert set(exported.files) == {"model.py", "config.json", "model.onnx", "README.md"}
    assert resolve(str(exported.directory / "config.json")) == SMALL
    readme = (exported.directory / "README.md").read_text()
    assert "| raspi5 | 12.50 (11.0 to 14.0) | predicted |" in readme
    assert "| raspi5-ort | 39.10 | published | published: Beyond MACs Table 7 |" in readme
    assert "nearest published model, lowformer-b0" in readme and "| base_lr | 0.000332 |" in readme
    assert "synflow (proxy)" in readme and "| ImageNet top-1 % (published: Beyond MACs Table 7) | 78.4 |" in readme


def test_model_py_runs_without_explorer_and_matches_the_build(exported, tmp_path):
    model = SMALL.build()
    torch.save(_randomise(model), tmp_path / "state.pt")
    x = torch.randn(SMALL.input_shape(2), generator=torch.Generator().manual_seed(1))
    torch.save(x, tmp_path / "x.pt")
    libraries = "|".join(sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}))
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATED, str(exported.directory), libraries,
         str(tmp_path / "state.pt"), str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
        cwd=exported.directory, check=True, timeout=300,
    )
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    with torch.no_grad():
        expected = model(x)
        expected_features = list(model.forward_features(x).values())
    assert torch.equal(out["logits"], expected)
    assert len(out["features"]) == 5
    assert all(torch.equal(a, b) for a, b in zip(out["features"], expected_features))
    assert out["channels"] == list(SMALL.widths) and out["reduction"] == [2, 4, 8, 16, 32]


def test_factory_options():
    spec = SMALL.to_dict()
    assert build_lowformer(spec, num_classes=10)(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert build_lowformer(spec, num_classes=0)(torch.zeros(1, 3, 64, 64)).shape == (1, spec["head_widths"][1])
    picked = build_lowformer(spec, features_only=True, out_indices=(2, 4))
    assert [f.shape[1] for f in picked(torch.zeros(1, 3, 64, 64))] == [SMALL.widths[2], SMALL.widths[4]]
    with pytest.raises(ValueError, match="out_indices"):
        build_lowformer(spec, features_only=True, out_indices=(5,))
    with pytest.raises(ValueError, match="num_classes"):
        build_lowformer(spec, num_classes=-1)


def test_one_failed_export_does_not_stop_the_others(tmp_path):
    (tmp_path / "blocked").write_text("a file where the package directory should go")
    items = [ExportItem("blocked", SMALL, "test"), ExportItem("fine", SMALL, "test")]
    failed, ok = export_many(items, tmp_path)
    assert not failed.ok and "blocked" in failed.error
    assert ok.ok and (tmp_path / "fine" / "model.py").is_file()
    assert json.loads((tmp_path / "fine" / "config.json").read_text())["widths"] == list(SMALL.widths)
