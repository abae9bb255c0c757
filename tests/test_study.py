"""``explorer study`` on tiny grids: measured, stored, tabulated and drawn."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rich.console import Console
from sqlalchemy import func, select

from explorer.db import Measurement, open_database
from explorer.study import StudyOptions, render_heatmaps, run_study, study_models, study_tables, summarize_study
from search_spaces.base import KnobError


@pytest.fixture
def database(tmp_path):
    db = open_database(tmp_path / "measurements.db")
    yield db
    db.close()


pytestmark = pytest.mark.usefixtures("quiet_host")  # stored rows are reused only when not flagged busy


def fast(kind: str, **grid) -> StudyOptions:
    return StudyOptions.make(kind, quick=True, time_limit_s=0.05, threads=1, **grid)


def rendered(result) -> str:
    console = Console(record=True, width=250)
    for table in study_tables(result):
        console.print(table)
    return console.export_text()


def measurements(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(Measurement))


def test_fused_mbconv_grid_ratios_tables_and_heatmaps(database, tmp_path):
    options = fast("fused-mbconv", channels=(8, 16), resolutions=(7, 14))
    result = run_study("fused-mbconv", "local", database, options)
    assert len(result.rows) == 4 and measurements(database) == 8
    for row in result.rows:
        assert row["time_ratio"] == pytest.approx(row["fused_ms"] / row["unfused_ms"])
        assert row["macs_ratio"] > 1, "a fused block always has more MACs"
    text = rendered(result)
    assert "time(fused) / time(unfused)" in text and "MACs(fused) / MACs(unfused)" in text
    assert "timed for at most 0.05 s" in result.notes[0]

    html = render_heatmaps(result, tmp_path / "heatmaps.html").read_text()
    assert '"name":"time_ratio"' in html and '"name":"macs_ratio"' in html
    assert "time(fused)" in html and "MACs(fused)" in html
    assert "<script src=" not in html, "plotly.js must be embedded, so the file opens offline"

    again = run_study("fused-mbconv", "local", database, options)
    assert measurements(database) == 8, "a second run reuses the stored measurements"
    assert [r["time_ratio"] for r in again.rows] == [r["time_ratio"] for r in result.rows]
    assert summarize_study("fused-mbconv", "local", database, options).rows == result.rows


def test_attention_shows_published_values_beside(database):
    result = run_study("attention", "local", database, fast("attention", resolutions=(8,)))
    rows = {row["variant"]: row for row in result.rows}
    assert set(rows) == {"mhsa", "chcompr", "convlow", "convlow-chcompr"}
    assert rows["mhsa"]["published_latency_ms"]["raspi5-ort"] == pytest.approx(0.81)
    assert rows["convlow-chcompr"]["published_latency_ms"]["jetson-tx2-trt"] == pytest.approx(0.39)
    assert rows["mhsa"]["vs_mhsa"] == 0 and all(r["latency_ms"] > 0 for r in result.rows)
    assert "published raspi5 ms" in rendered(result)


def test_resolution_pairs_over_the_budget_are_listed_not_measured(database):
    options = dataclasses.replace(fast("resolution"), layers=1, max_gmacs=0.3)
    result = run_study("resolution", "local", database, options)
    assert len(result.rows) == 7
    measured = [r for r in result.rows if r["a_ms"] is not None]
    assert [r["scenario"] for r in measured] == [1, 5, 6]  # 0.26, 0.07 and 0.26 GMACs per model
    assert all(r["a_gmacs"] > 0.3 and r["b_ms"] is None for r in result.rows if r["a_ms"] is None)
    for row in measured:
        assert row["throughput_b_over_a"] == pytest.approx(1 / row["latency_b_over_a"])
    assert any("not measured" in note for note in result.notes)
    assert json.loads(json.dumps(result.to_dict()))["kind"] == "resolution"


@pytest.mark.slow
def test_depthwise_reports_ms_per_gmac_beside_the_published(database):
    result = run_study("depthwise", "local", database, fast("depthwise"))
    rows = {row["name"]: row for row in result.rows}
    assert len(rows) == 6
    assert rows["toy-conv-1"]["published_latency_ms"]["raspi5-ort"] == pytest.approx(12.58)
    assert rows["toy-conv-1"]["published_macs_m"] == pytest.approx(463)
    for row in result.rows:
        assert row["ms_per_gmac"] == pytest.approx(row["latency_ms"] / (row["macs_m"] / 1e3))
    assert "ms / GMAC" in rendered(result)


def test_default_grids_are_the_published_ones():
    assert len(study_models("fused-mbconv", StudyOptions.make("fused-mbconv"))) == 6 * 6 * 2
    assert len(study_models("attention", StudyOptions.make("attention"))) == 4 * 4
    assert len(study_models("resolution", StudyOptions.make("resolution"))) == 14
    with pytest.raises(KnobError, match="depthwise, fused-mbconv, resolution, attention"):
        StudyOptions.make("winograd")


def test_study_refuses_a_published_only_device_without_a_transport(database):
    from explorer.errors import UserError

    with pytest.raises(UserError, match="published figures only"):
        run_study("attention", "raspi5", database, fast("attention", resolutions=(8,)))


def test_cli_study_writes_heatmaps(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "fused.html"
    assert main(["study", "fused-mbconv", "--quick", "--channels", "8", "--resolutions", "7", "--threads", "1",
                 "--time-limit", "0.05", "-o", str(out), "--db", str(tmp_path / "m.db"), "--create-db", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "fused-mbconv" and len(payload["rows"]) == 1
    assert '"name":"time_ratio"' in out.read_text()
