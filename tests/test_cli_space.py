"""``explorer space ...`` as a script would call it."""

import json

import pytest

from explorer.architectures import resolve
from explorer.cli import main


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_presets_json_lists_presets_ablations_and_toys(capsys):
    rows = {row["name"]: row for row in _json(capsys, "space", "presets", "--json")}
    assert rows["lowformer-b0"]["params"] == 14_100_472
    assert rows["lowformer-b0"]["macs_m"] == pytest.approx(944.04)
    assert {"preset", "ablation", "toy"} <= {row["kind"] for row in rows.values()}
    assert "toy-conv-1" in rows and "attention-stack-mhsa" in rows


def test_show_json_has_id_params_macs_stages_and_classes(capsys):
    info = _json(capsys, "space", "show", "lowformer-b1", "--resolution", "256", "--json")
    assert info["params"] == 17_936_312 and info["resolution"] == 256
    assert info["macs"] / 1e6 == pytest.approx(1843.5, abs=0.05)
    assert [s["stage"] for s in info["stages"]] == ["stage0", "stage1", "stage2", "stage3", "stage4", "head"]
    assert "attention_matmul" in info["op_classes"] and len(info["arch_id"]) == 16


def test_show_prints_a_table(capsys):
    assert main(["space", "show", "lowformer-e1"]) == 0
    assert "stage3" in capsys.readouterr().out


@pytest.mark.parametrize("space", ["efficientvit", "fmvit", "mcga"])
def test_sample_draws_from_any_family(capsys, space):
    assert main(["space", "sample", "--n", "2", "--space", space, "--sampler", "sobol"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and {line["space"] for line in lines} == {space}
    assert resolve(lines[0]).space == space
    assert main(["space", "sample", "--space", "vit"]) == 2
    assert "lowformer, efficientvit" in capsys.readouterr().err


def test_sample_prints_json_lines(capsys):
    assert main(["space", "sample", "--n", "3", "--seed", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 and all(line["space"] == "lowformer" for line in lines)


def test_export_onnx_checks_the_file(capsys, tmp_path):
    out = _json(capsys, "space", "export-onnx", "lowformer-b0", "-o", str(tmp_path / "b0.onnx"),
                "--resolution", "64", "--json")
    assert out["max_abs_difference"] < 1e-4 and (tmp_path / "b0.onnx").exists()


def test_config_file_round_trip_through_the_cli(capsys, tmp_path):
    line = json.loads(_first_line(capsys))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(line))
    info = _json(capsys, "space", "show", str(path), "--json")
    assert info["arch_id"] == line["arch_id"]


def _first_line(capsys):
    assert main(["space", "sample", "--n", "1", "--seed", "2"]) == 0
    return capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["space", "show", "lowformer-b9"], "unknown architecture 'lowformer-b9'"),
        (["space", "show", "lowformer-b1", "--resolution", "8"], "knob 'resolution'"),
    ],
)
def test_bad_input_gets_a_clear_error(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
