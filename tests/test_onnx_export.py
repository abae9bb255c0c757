"""ONNX export of any architecture matches PyTorch under ONNX Runtime."""

import onnx
import pytest

import explorer
from explorer.onnx_export import export_onnx, max_abs_difference
from search_spaces.lowformer import LOWFORMER_PRESETS
from search_spaces.lowformer.sampling import sample_configs


@pytest.mark.parametrize("name", sorted(LOWFORMER_PRESETS))
def test_presets_export_at_small_resolution(name, tmp_path):
    config = explorer.resolve(name, resolution=64)
    model = config.build()
    path = export_onnx(config, tmp_path / "model.onnx", model=model)
    assert onnx.load(str(path)).opset_import[0].version >= 17
    assert max_abs_difference(config, path, model=model) < 1e-4


@pytest.mark.parametrize("config", sample_configs(4, seed=7, resolution=96), ids=lambda c: c.arch_id)
def test_random_configs_export(config, tmp_path):
    model = config.build()
    path = export_onnx(config, tmp_path / "model.onnx", model=model)
    assert max_abs_difference(config, path, model=model) < 1e-4


def test_batch_axis_is_dynamic(tmp_path):
    import numpy as np
    import onnxruntime as ort

    config = explorer.resolve("lowformer-b0", resolution=64)
    session = ort.InferenceSession(str(export_onnx(config, tmp_path / "b0.onnx")), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.zeros((3, 3, 64, 64), np.float32)})[0]
    assert out.shape == (3, 1000)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LOWFORMER_PRESETS))
def test_presets_export_at_full_resolution(name, tmp_path):
    config = explorer.resolve(name)
    model = config.build()
    path = export_onnx(config, tmp_path / "model.onnx", model=model)
    assert max_abs_difference(config, path, model=model) < 1e-4
