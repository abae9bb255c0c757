"""Export: a package a training repository can use without this project installed, for every
family (collision-free model sources, exported models equal to the in-tree ones, FMViT's training
form, the README of a reconstruction)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution

from explorer.architectures import resolve
from explorer.db import open_database
from explorer.errors import UserError
from explorer.export import (
    EXPORT_FAMILIES,
    ExportItem,
    LatencyRecord,
    export_family,
    export_many,
    model_sources,
    published_latencies,
    published_top1,
    readme_text,
    standalone_model_source,
)
from explorer.export.families.lowformer import build_lowformer
from explorer.export.layout import SECTIONS
from explorer.export.model_source import defined_names
from explorer.export.sources import export_items
from search_spaces.lowformer import LowFormerConfig

SMALL = resolve("lowformer-b0", resolution=64)
RESOLUTION = 64

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


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models run faster on one thread, and a busy machine makes two threads far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomise(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer random (running variances positive), so equality means something."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=generator, dtype=value.dtype) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=generator, dtype=value.dtype) * 0.2
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
    assert "## Published size" in readme and "Reconstruction" not in readme
    assert "| lowformer-b0 @ 224 | 14.1 M / 944 M (Beyond MACs Table 7) |" in readme
    assert "| this architecture @ 64 | - |" in readme


def test_model_py_runs_without_explorer_and_matches_the_build(exported, tmp_path):
    model = SMALL.build()
    torch.save(_randomise(model), tmp_path / "state.pt")
    x = torch.randn(SMALL.input_shape(2), generator=torch.Generator().manual_seed(1))
    torch.save(x, tmp_path / "x.pt")
    libraries = "|".join(sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}))
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATED, str(exported.directory), libraries,
         str(tmp_path / "state.pt"), str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
        cwd=exported.directory, check=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
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


def _new_attention_types() -> LowFormerConfig:
    spec = resolve("lowformer-b0", resolution=RESOLUTION).to_dict()
    spec["stage3"] = {**spec["stage3"], "attention": "rlmhsa", "attention_stride": 2}
    spec["stage4"] = {**spec["stage4"], "attention": "group-attention"}
    return LowFormerConfig.from_dict(spec)


def _import_model_py(source: str, directory: Path, name: str):
    """``model.py`` imported from its file in a fresh module namespace."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_family_exports_and_toys_are_refused():
    assert set(EXPORT_FAMILIES) == {"lowformer", "efficientvit", "efficientvit-seed", "fmvit", "mcga"}
    with pytest.raises(UserError, match="'toy-conv'.*lowformer, efficientvit, efficientvit-seed, fmvit, mcga"):
        export_family("toy-conv")


def test_model_sources_define_every_name_once():
    """Over the union of every family's model sources, so that no concatenation can collide."""
    modules = {module for space in EXPORT_FAMILIES for module in model_sources(space)}
    counts = Counter(name for module in modules for name in defined_names(module))
    assert [name for name, n in counts.items() if n > 1] == []
    assert {"MLP", "LinearMLP", "PooledPatchEmbed", "ConvPatchEmbed", "expanded", "hidden_width"} <= set(counts)


def test_model_sources_follow_the_import_graph():
    names = {space: [m.__name__ for m in model_sources(space)] for space in EXPORT_FAMILIES}
    assert names["fmvit"] == ["explorer.export.factory", "search_spaces.blocks.rules", "search_spaces.blocks.modules",
                              "search_spaces.blocks.mixers.modules", "search_spaces.fmvit.rules",
                              "search_spaces.fmvit.modules", "search_spaces.fmvit.network",
                              "explorer.export.families.fmvit"]
    families = ("lowformer", "efficientvit", "fmvit", "mcga")
    for space, modules in names.items():  # a family's sources are the shared blocks and its own modules
        family = next(f for f in families if space.startswith(f))
        assert not any(f".{other}." in name for name in modules for other in families if other != family)
        assert modules.index("search_spaces.blocks.modules") < modules.index(f"search_spaces.{family}.modules")
    assert names["efficientvit"] == names["efficientvit-seed"]


def test_a_layout_name_no_model_source_defines_is_an_error(monkeypatch):
    monkeypatch.setitem(SECTIONS, "search_spaces.mcga.network", SECTIONS["search_spaces.mcga.network"] + "Missing\n")
    with pytest.raises(ValueError, match="'search_spaces.mcga.network' names 'Missing'"):
        standalone_model_source(resolve("mcga-paper"), "mcga-paper")


@pytest.mark.parametrize("name", ["efficientvit-b0", "efficientvit-seed", "fmvit-t", "mcga-paper", "new-attention"])
def test_exported_model_equals_the_in_tree_model(name, tmp_path):
    config = _new_attention_types() if name == "new-attention" else resolve(name, resolution=RESOLUTION)
    source = standalone_model_source(config, name)
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"copy", "json", "torch"}
    module = _import_model_py(source, tmp_path, "model")
    reference = config.build()
    _randomise(reference)
    exported = module.create_model()
    exported.load_state_dict(reference.state_dict())
    features = module.create_model(features_only=True)
    features.load_state_dict(reference.state_dict(), strict=False)
    x = torch.randn(config.input_shape(2), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(exported(x), reference(x))
        expected = list(reference.forward_features(x).values())
        got = features(x)
    assert len(got) == len(expected) and all(torch.equal(a, b) for a, b in zip(got, expected))
    assert features.feature_info.channels() == [f.shape[1] for f in expected]
    assert features.feature_info.reduction() == [RESOLUTION // f.shape[-1] for f in expected]


def test_factory_options_of_another_family(tmp_path):
    config = resolve("mcga-paper", resolution=RESOLUTION)
    module = _import_model_py(standalone_model_source(config, "mcga-paper"), tmp_path, "model")
    x = torch.zeros(1, 3, RESOLUTION, RESOLUTION)
    with torch.no_grad():
        assert module.create_model(num_classes=10)(x).shape == (1, 10)
        assert module.create_model(num_classes=0)(x).shape == (1, config.dims[3])
        picked = module.create_model(features_only=True, out_indices=(1, 3))
        assert [f.shape[1] for f in picked(x)] == [config.dims[1], config.dims[3]]
    with pytest.raises(ValueError, match=r"out_indices.*stage1, stage2, stage3, stage_final"):
        module.create_model(features_only=True, out_indices=(4,))
    assert module.mcga_paper().num_classes == 1000
    seed = standalone_model_source(resolve("efficientvit-seed", resolution=RESOLUTION), "efficientvit-seed")
    assert "def efficientvit_seed_model(" in seed  # the label's name is the network function's


def test_fmvit_training_form_fuses_to_the_in_tree_inference_model(tmp_path):
    train = resolve("fmvit-t-train", resolution=RESOLUTION)
    module = _import_model_py(standalone_model_source(train, "fmvit-t-train"), tmp_path, "model")
    model = module.create_model().double()
    _randomise(model)
    reference = train.fused().build().double()
    reference.load_state_dict(model.fuse().state_dict())
    x = torch.randn(train.input_shape(2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        unfused, fused, expected = model(x), model.fuse()(x), reference(x)
    scale = expected.abs().max()
    assert (fused - expected).abs().max() <= 1e-9 * scale
    assert (unfused - expected).abs().max() <= 1e-9 * scale
    with pytest.raises(ValueError, match="num_classes 0"):
        module.create_model(num_classes=0)


def test_form_is_for_fmvit_only(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    [item] = export_items(db, None, names=["fmvit-t"], form="train")
    assert (item.label, item.config.form) == ("fmvit-t-train", "train")
    assert export_items(db, None, names=["fmvit-t-train"])[0].config.form == "train"
    with pytest.raises(UserError, match="--form applies to FMViT architectures only; lowformer-b0 is a 'lowformer'"):
        export_items(db, None, names=["fmvit-t", "lowformer-b0"], form="train")
    with pytest.raises(UserError, match="invalid --form 'fused'; allowed: inference, train"):
        export_items(db, None, names=["fmvit-t"], form="fused")
    with pytest.raises(UserError, match="toy-conv-1: cannot export"):
        export_items(db, None, names=["toy-conv-1"])


def test_fmvit_training_form_package(tmp_path):
    config = resolve("fmvit-t-train", resolution=RESOLUTION)
    [result] = export_many([ExportItem("fmvit-t-train", config, "test")], tmp_path)
    assert result.ok, result.error
    assert json.loads((result.directory / "config.json").read_text())["form"] == "train"
    readme = (result.directory / "README.md").read_text()
    assert "FMViT design space (train form)" in readme and "model.eval().fuse()" in readme
    assert "`model.onnx` is the **fused inference form**" in readme
    assert "**Reconstruction.**" in readme
    assert "| fmvit-t @ 224 | 2 M / 300 M (FMViT Table 2) | 1,983,688 / 308.53 M |" in readme
    assert f"| this architecture @ {RESOLUTION} |" in readme
    assert "No training recipe is shipped for FMViT" in readme and "Tan, Geng, Xie, 2023" in readme
    assert "base_lr" not in readme


def test_readme_of_an_exact_family_and_a_lowformer_reconstruction():
    b1 = resolve("efficientvit-b1")
    readme = readme_text(ExportItem("efficientvit-b1", b1, "test"), 1, 1)
    assert "Reconstruction.**" not in readme
    assert "| efficientvit-b1 @ 224 | 9.1 M / 520 M (EfficientViT README (mit-han-lab/efficientvit)) | " \
           "9,102,024 / 519.21 M |" in readme
    assert "mit-han-lab/efficientvit" in readme and "No training recipe is shipped" in readme
    mhsa = resolve("lowformer-b1-original-mhsa")
    readme = readme_text(ExportItem("lowformer-b1-original-mhsa", mhsa, "test"), 1, 1)
    assert "**Reconstruction.** paper ablation: plain MHSA" in readme
    assert "| lowformer-b1-original-mhsa @ 224 | 16.8 M / 1460 M (Beyond MACs Table 8) |" in readme
    assert "nearest published model, lowformer-b1" in readme


def test_a_trial_of_an_mcga_study_exports_as_mcga(tmp_path):
    """A study records its space; its trials and their ids export in that space."""
    from explorer.architectures import FLAT_SPACES
    from explorer.search import open_storage
    from explorer.search.space import params_of

    table, storage = FLAT_SPACES["mcga"], str(tmp_path / "studies.db")
    params = params_of(resolve("mcga-paper", resolution=RESOLUTION), "mcga")
    study = optuna.create_study(study_name="s", storage=open_storage(storage), directions=["maximize", "minimize"])
    for key, value in {"space": "mcga", "resolution": RESOLUTION, "device": "raspi5", "predictor": "test-predictor",
                       "objective_label": "synflow"}.items():
        study.set_user_attr(key, value)
    config = table.from_flat(params, RESOLUTION)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: CategoricalDistribution(v) for k, v in table.knobs.items()},
        values=[1.0, 5.0], user_attrs={"arch_id": config.arch_id, "score": 1.0, "latency_ms": 5.0, "low_ms": 4.0,
                                       "high_ms": 6.0, "macs": 1, "params": 1}))
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    [trial] = export_items(db, storage, study="s", trials=[0])
    assert (trial.label, trial.config) == ("s-trial0", config)
    assert trial.latencies[0].detail == "predicted by test-predictor during the search, ~90 % interval"
    [by_id] = export_items(db, storage, study="s", arch_ids=[config.arch_id])
    assert (by_id.label, by_id.config) == (f"mcga-{config.arch_id}", config)


def test_an_architecture_id_of_another_family(tmp_path):
    from explorer.db import upsert_architecture

    config = resolve("efficientvit-b0", resolution=RESOLUTION)
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    with db.session() as session:
        upsert_architecture(session, config)
    [item] = export_items(db, None, arch_ids=[config.arch_id])
    assert (item.label, item.config) == (f"efficientvit-{config.arch_id}", config)
