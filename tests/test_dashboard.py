"""The dashboard in a real headless browser: it renders offline, holds every point, logs no error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from explorer.dashboard import PLOT_ORDER, Verified, candidate_labels, dashboard_data, search_dashboard, write_html
from explorer.search import Evaluator, SearchSettings, run_search, shortlist
from explorer.search.shortlist import reference_candidates
from explorer.search.study import evaluations, feasible

from test_search import fake_models

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A dashboard of a 120-trial search with two measured architectures and two devices."""
    root = tmp_path_factory.mktemp("dashboard")
    evaluator = Evaluator(*fake_models())
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=120, batch_size=30,
                              study_name="browser")
    study = run_search(settings, f"sqlite:///{root}/s.db", fake_models, evaluator=evaluator)
    picks = shortlist(study, 6)
    references = reference_candidates(evaluator, 224, 10.0)
    verified = [Verified(f"trial {c.trial}", c.evaluation.arch_id, c.evaluation.latency_ms, c.evaluation.low_ms,
                         c.evaluation.high_ms, c.evaluation.latency_ms * 1.1, "measured by the test")
                for c in picks[:2]]
    n = len(picks) + len(references)
    data = dashboard_data(study, evaluator, top=6, verified=verified,
                          device_predictions={"fast-board": [1.0] * n, "slow-board": [5.0] * n})
    path = write_html(search_dashboard(data), root / "search.html")
    rows = evaluations(study)
    expected = {"feasible": sum(feasible(t) for t, _ in rows), "infeasible": sum(not feasible(t) for t, _ in rows),
                "shortlist": len(picks), "references": len(references), "labels": len(candidate_labels(picks, references))}
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


@pytest.mark.browser
def test_dashboard_renders_offline_with_every_point(page, browser):
    path, expected = page
    html = path.read_text()
    assert "<script src=" not in html and "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js inlined
    browser.get(path.as_uri())
    assert browser.execute_script("return document.querySelectorAll('.js-plotly-plot').length") == len(PLOT_ORDER)
    trials = _lengths(browser, PLOT_ORDER.index("trials"))
    assert trials[0] == expected["feasible"] and trials[1] == expected["infeasible"]
    assert trials[3] == 2  # the budget line
    assert trials[4] == expected["shortlist"] and trials[5] == expected["references"] == 8
    assert _lengths(browser, PLOT_ORDER.index("hypervolume")) == [expected["feasible"] + expected["infeasible"]]
    assert len(_lengths(browser, PLOT_ORDER.index("importance"))) == 2  # score and latency
    assert _lengths(browser, PLOT_ORDER.index("verification"))[0] == 2
    assert _lengths(browser, PLOT_ORDER.index("devices")) == [expected["labels"]] * 2
    severe = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert severe == []
