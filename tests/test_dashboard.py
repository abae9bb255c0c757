"""The dashboard in a real headless browser: it renders offline, holds every point, colours the
trials by family, logs no error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from explorer.architectures import FAMILIES, NAMED_ARCHITECTURES
from explorer.dashboard import (
    FAMILY_COLOURS,
    PLOT_ORDER,
    Verified,
    candidate_labels,
    dashboard_data,
    search_dashboard,
    write_html,
)
from explorer.search import Evaluator, SearchSettings, run_search, shortlist
from explorer.search.shortlist import reference_candidates
from explorer.search.study import evaluations, feasible

from test_search import fake_models

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A dashboard of a 120-trial search of every family with two measured architectures and two devices."""
    root = tmp_path_factory.mktemp("dashboard")
    evaluator = Evaluator(*fake_models())
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=120, batch_size=30,
                              study_name="browser", space="all")
    study = run_search(settings, f"sqlite:///{root}/s.db", fake_models, evaluator=evaluator)
    picks = shortlist(study, 6)
    references = reference_candidates(evaluator, 224, 10.0, "all")
    verified = [Verified(f"trial {c.trial}", c.evaluation.arch_id, c.evaluation.latency_ms, c.evaluation.low_ms,
                         c.evaluation.high_ms, c.evaluation.latency_ms * 1.1, "measured by the test")
                for c in picks[:2]]
    n = len(picks) + len(references)
    data = dashboard_data(study, evaluator, top=6, verified=verified,
                          device_predictions={"fast-board": [1.0] * n, "slow-board": [5.0] * n})
    path = write_html(search_dashboard(data), root / "search.html")
    rows = evaluations(study)
    expected = {"trials": len(rows), "feasible": sum(feasible(t) for t, _ in rows),
                "per_family": [sum(t.user_attrs["family"] == f for t, _ in rows) for f in FAMILIES],
                "shortlist": len(picks), "references": [c.name for c in references],
                "labels": len(candidate_labels(picks, references))}
    return path, expected


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not shutil.which("chromium"):
        pytest.skip(f"Debian's chromium and chromedriver are needed ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


def _lengths(driver, plot: int) -> list[int]:
    return driver.execute_script(
        "return document.querySelectorAll('.js-plotly-plot')[arguments[0]].data.map(t => (t.x || []).length);", plot)


def _traces(driver, plot: int) -> list[dict]:
    return driver.execute_script(
        "return document.querySelectorAll('.js-plotly-plot')[arguments[0]].data.map(t => ({name: t.name, "
        "legendgroup: t.legendgroup, text: t.text, color: t.marker && t.marker.color, "
        "symbol: t.marker && t.marker.symbol}));", plot)


@pytest.mark.browser
def test_dashboard_renders_offline_with_every_point(page, browser):
    path, expected = page
    html = path.read_text()
    assert "<script src=" not in html and "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js inlined
    browser.get(path.as_uri())
    assert browser.execute_script("return document.querySelectorAll('.js-plotly-plot').length") == len(PLOT_ORDER)
    trials = _lengths(browser, PLOT_ORDER.index("trials"))
    n = 2 * len(FAMILIES)  # per family: within budget, over budget
    assert [a + b for a, b in zip(trials[:n:2], trials[1:n:2])] == expected["per_family"]
    assert sum(trials[:n:2]) == expected["feasible"] and sum(trials[:n]) == expected["trials"]
    assert trials[n + 1] == 2  # the budget line
    assert trials[n + 2] == expected["shortlist"] and trials[n + 3:] == [1] * len(expected["references"])
    assert _lengths(browser, PLOT_ORDER.index("hypervolume")) == [expected["trials"]]
    assert len(_lengths(browser, PLOT_ORDER.index("importance"))) == 2  # score and latency
    assert _lengths(browser, PLOT_ORDER.index("verification"))[0] == 2
    assert _lengths(browser, PLOT_ORDER.index("devices")) == [expected["labels"]] * 2
    severe = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert severe == []


@pytest.mark.browser
def test_dashboard_colours_trials_and_presets_by_family(page, browser):
    path, expected = page
    browser.get(path.as_uri())
    traces = _traces(browser, PLOT_ORDER.index("trials"))
    n = 2 * len(FAMILIES)
    assert [t["legendgroup"] for t in traces[:n]] == [f for f in FAMILIES for _ in range(2)]
    assert [t["color"] for t in traces[:n]] == [FAMILY_COLOURS[f] for f in FAMILIES for _ in range(2)]
    assert [t["symbol"] for t in traces[:n]] == ["circle", "circle-open"] * len(FAMILIES)
    for trace in traces[:n]:
        assert all(f"· {trace['legendgroup']} ·" in text for text in trace["text"])  # hover names the family
    legend = browser.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')[arguments[0]].querySelectorAll('.legendtext')]"
        ".map(e => e.textContent);", PLOT_ORDER.index("trials"))
    assert legend[:len(FAMILIES)] == list(FAMILIES)  # one legend entry per family, then the other traces
    presets = traces[n + 3:]
    names = [name if NAMED_ARCHITECTURES[name].exact else f"{name} (reconstruction)" for name in expected["references"]]
    assert [t["name"] for t in presets] == names and {t["symbol"] for t in presets} == {"diamond"}
    assert {t["legendgroup"] for t in presets} == {"published"}
    assert {c for t in presets for c in t["color"]} == set(FAMILY_COLOURS.values())
    assert any(name.endswith("(reconstruction)") for name in names)
    assert legend[len(legend) - len(names):] == names  # named in the legend, not by text beside the point
    knobs = browser.execute_script("return document.querySelectorAll('.js-plotly-plot')[arguments[0]].data[0].x;",
                                   PLOT_ORDER.index("importance"))
    assert {knob.split(".")[0] for knob in knobs} == set(FAMILIES)  # importance within each family


def _boxes(driver, plot: int, selector: str) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')[arguments[0]].querySelectorAll(arguments[1])]"
        ".map(e => { const b = e.getBoundingClientRect(); "
        "return {text: e.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom}; })"
        ".filter(b => b.text && b.right > b.left);", plot, selector)


def _overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


@pytest.mark.browser
def test_published_model_labels_do_not_overlap_at_the_default_size(page, browser):
    path, expected = page
    browser.get(path.as_uri())
    plot = PLOT_ORDER.index("trials")
    texts = _boxes(browser, plot, "text")  # every label the SVG draws: legend, markers, axes, title
    published = [box for box in texts if box["text"] in {
        name if NAMED_ARCHITECTURES[name].exact else f"{name} (reconstruction)" for name in expected["references"]}]
    assert len(published) == len(expected["references"])
    clashes = [(a["text"], b["text"]) for a in published for b in texts if a is not b and _overlap(a, b)]
    assert clashes == []


@pytest.fixture(scope="module")
def raspi5_page(tmp_path_factory):
    """The dashboard of a short raspi5 search on a copy of the shipped database."""
    shipped = Path(__file__).resolve().parents[1] / "measurements.db"
    if not shipped.exists():
        pytest.skip("needs the shipped measurements.db")
    from explorer.dashboard import study_dashboard
    from explorer.db import database_url, open_database
    from explorer.search import ModelSource, ScoreObjective, load_latency_model

    root = tmp_path_factory.mktemp("raspi5")
    shutil.copyfile(shipped, root / "measurements.db")  # opening may migrate: never the shipped file
    db = open_database(root / "measurements.db")
    evaluator = Evaluator(load_latency_model(db, "raspi5-ort"), ScoreObjective(db, "params"))
    settings = SearchSettings(device="raspi5-ort", budget_ms=40.0, objective=evaluator.objective.name, trials=30,
                              batch_size=30, study_name="raspi5")
    models = ModelSource(database_url(root / "measurements.db"), "raspi5-ort", evaluator.objective.name)
    study = run_search(settings, f"sqlite:///{root}/s.db", models, evaluator=evaluator)
    return write_html(search_dashboard(study_dashboard(db, study, evaluator)), root / "raspi5.html")


@pytest.mark.browser
def test_raspi5_predicted_versus_measured_shows_the_published_points(raspi5_page, browser):
    browser.get(raspi5_page.as_uri())
    traces = _traces(browser, PLOT_ORDER.index("verification"))
    lengths = _lengths(browser, PLOT_ORDER.index("verification"))
    points = {t["name"]: n for t, n in zip(traces, lengths)}
    assert points.get("published latency", 0) >= 3  # the LowFormer presets of the published raspi5 table
    assert {t["symbol"] for t in traces if t["name"] == "published latency"} == {"diamond"}
