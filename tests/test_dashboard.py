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
    assert trials[n + 2] == expected["shortlist"] and trials[n + 3] == len(expected["references"])
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
    presets = traces[n + 3]
    assert presets["name"] == "published models (predicted position)" and presets["symbol"] == "diamond"
    assert presets["text"] == [name if NAMED_ARCHITECTURES[name].exact else f"{name} (reconstruction)"
                               for name in expected["references"]]
    assert {c for c in presets["color"]} == set(FAMILY_COLOURS.values())
    assert any(label.endswith("(reconstruction)") for label in presets["text"])
    knobs = browser.execute_script("return document.querySelectorAll('.js-plotly-plot')[arguments[0]].data[0].x;",
                                   PLOT_ORDER.index("importance"))
    assert {knob.split(".")[0] for knob in knobs} == set(FAMILIES)  # importance within each family
