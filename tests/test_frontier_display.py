"""The published frontier on screen: every search entry states its distance to the best published
ImageNet-1k top-1 at no more MACs (``published_frontier`` in ``--json``, "vs pub." in the table),
and the dashboard draws the published networks and their frontier against MACs."""

from __future__ import annotations

import math

import pytest

from explorer.dashboard import (
    DEVICE_COLOURS,
    FRONTIER_NAME,
    LABEL_SPACING,
    LATENCY_FOCUS,
    PLOT_ORDER,
    PUBLISHED_NAME,
    dashboard_data,
    devices_figure,
    frontier_figure,
    search_dashboard,
    trials_figure,
    write_html,
)
from explorer.search import Evaluator, SearchSettings, run_search, search_report
from explorer.search.shortlist import frontier_positions
from predictors.reference import clean_reference, pareto_frontier

from test_dashboard import browser  # noqa: F401  (the headless browser fixture)
from test_search import LogParams, MacsLatency


def _best_at_most(macs_m: float) -> tuple[float, str]:
    """The best clean published top-1 at <= ``macs_m``, by brute force over the reference file."""
    pool = [r for r in clean_reference(exclude_in_space=False) if r.macs_m <= macs_m]
    best = max(pool, key=lambda r: r.top1)
    return best.top1, best.label


def test_frontier_position_of_a_constructed_entry():
    top1, label = _best_at_most(209.1)
    mean = top1 - 0.8
    (position,) = frontier_positions([209_100_000], [mean])
    assert set(position) == {"best_top1", "best_model", "macs_m_at_most", "distance"}
    assert position["best_top1"] == pytest.approx(top1, abs=1e-3) and position["best_model"] == label
    assert position["macs_m_at_most"] == pytest.approx(209.1)
    assert position["distance"] == pytest.approx(-0.8, abs=0.01)
    # a larger network is measured against a higher frontier, never a lower one
    (larger,) = frontier_positions([900_000_000], [mean])
    assert larger["best_top1"] >= position["best_top1"] and larger["distance"] <= position["distance"]


def test_frontier_position_without_a_published_network_or_a_prediction():
    smallest = min(r.macs_m for r in clean_reference(exclude_in_space=False))
    tiny, unscored = frontier_positions([int(smallest * 1e6 / 2), 400_000_000], [70.0, None])
    assert tiny == {"best_top1": None, "best_model": None, "macs_m_at_most": pytest.approx(smallest / 2, abs=0.1),
                    "distance": None}
    assert unscored["best_top1"] == pytest.approx(_best_at_most(400.0)[0], abs=1e-3) and unscored["distance"] is None


class DescribedLogParams(LogParams):
    """The fake score with a surrogate-like view of each config: a mean that grows with #params."""

    def describe(self, configs):
        out = []
        for config in configs:
            mean = 60.0 + 2.0 * math.log(config.op_table().params)
            out.append({"mean": mean, "std": 1.0, "interval_90": [mean - 1.6, mean + 1.6], "extrapolation": False,
                        "reasons": [], "nearest_result": {"name": "lowformer-b0 @ 224", "top1": 78.4}})
        return out


@pytest.fixture(scope="module")
def described_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontier")
    models = lambda: (MacsLatency(), DescribedLogParams())  # noqa: E731
    evaluator = Evaluator(*models())
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=40, batch_size=20,
                              study_name="frontier", sampler="random")
    return run_search(settings, f"sqlite:///{root}/s.db", models, evaluator=evaluator), evaluator, root


def test_every_search_entry_states_its_distance_to_the_published_frontier(described_study):
    study, evaluator, _ = described_study
    report = search_report(study, evaluator, top=4)
    rows = report["shortlist"] + report["references"]
    assert report["shortlist"] and report["references"]
    for row in rows:
        frontier = row["published_frontier"]
        top1, label = _best_at_most(row["macs"] / 1e6)
        assert frontier["best_top1"] == pytest.approx(top1, abs=1e-3) and frontier["best_model"] == label
        assert frontier["macs_m_at_most"] == pytest.approx(row["macs"] / 1e6, abs=0.05)
        assert frontier["distance"] == pytest.approx(row["accuracy"]["mean"] - top1, abs=0.01)
        assert {"accuracy", "score", "arch_id", "macs"} <= set(row)  # the keys that were there stay


def test_dashboard_draws_the_published_networks_and_their_frontier(described_study):
    study, evaluator, root = described_study
    data = dashboard_data(study, evaluator, top=4,
                          device_predictions={f"board-{i}": [1.0] * 20 for i in range(12)})
    figure = frontier_figure(data)
    traces = {trace.name: trace for trace in figure.data}
    published, front = traces[PUBLISHED_NAME], traces[FRONTIER_NAME]
    assert len(published.x) == len(clean_reference(exclude_in_space=False)) > 500
    assert list(front.x) == [r.macs_m for r in pareto_frontier()] and list(front.y) == sorted(front.y)
    labelled = [x for x, label in zip(front.x, front.text) if label]  # named beside the line, never crowded
    assert len(labelled) >= 5 and min(math.log10(b / a) for a, b in zip(labelled, labelled[1:])) >= LABEL_SPACING
    assert all(" @ " in text and "published (timm results table)" in text for text in front.customdata)
    assert all("published (timm results table)" in text and " @ " in text and "M params" in text
               for text in published.text)
    shortlist = traces["shortlist (surrogate mean, ~90 %)"]
    assert len(shortlist.x) == len(data.shortlist)
    assert list(shortlist.y) == pytest.approx([view["mean"] for view in data.accuracy[:len(data.shortlist)]])
    assert figure.layout.xaxis.type == "log"
    html = write_html(search_dashboard(data), root / "frontier.html").read_text()
    for name in (PUBLISHED_NAME, FRONTIER_NAME, "ghostnetv2_100.in1k @ 224"):
        assert name.replace("<", "\\u003c") in html  # plotly's JSON escapes "<"
    assert PLOT_ORDER.index("frontier") == 1 and html.count('class="plotly-graph-div"') == len(PLOT_ORDER)
    # against latency: not drawn, and the figure says why
    title = trials_figure(data).layout.title.text
    assert "Not drawn: the" in title and "(no measured or published latency on fake)" in title
    assert all(PUBLISHED_NAME != trace.name for trace in trials_figure(data).data)
    # one colour per device
    colours = [trace.marker.color for trace in devices_figure(data).data]
    assert len(set(colours)) == len(colours) == 12 and set(colours) <= set(DEVICE_COLOURS)


def test_latency_axis_is_focused_on_the_budget(described_study):
    study, evaluator, _ = described_study
    data = dashboard_data(study, evaluator, top=4)
    figure = trials_figure(data)
    assert max(p.evaluation.latency_ms for p in data.trials) > LATENCY_FOCUS * data.budget_ms  # the fake spreads wide
    assert list(figure.layout.xaxis.range) == [0, LATENCY_FOCUS * data.budget_ms]
    assert "Autoscale shows all" in figure.layout.title.text


@pytest.mark.browser
def test_frontier_plot_renders_in_a_browser(described_study, browser):
    study, evaluator, root = described_study
    data = dashboard_data(study, evaluator, top=4)
    path = write_html(search_dashboard(data), root / "browser.html")
    browser.get(path.as_uri())
    plots = "document.querySelectorAll('.js-plotly-plot')"
    traces = browser.execute_script(
        f"return {plots}[arguments[0]].data.map(t => [t.name, (t.x || []).length]);", PLOT_ORDER.index("frontier"))
    lengths = dict(traces)
    assert lengths[PUBLISHED_NAME] == len(clean_reference(exclude_in_space=False))
    assert lengths[FRONTIER_NAME] == len(pareto_frontier()) and lengths["shortlist (surrogate mean, ~90 %)"] == 4
    drawn = browser.execute_script(f"return {plots}[arguments[0]].querySelectorAll('.scatterlayer .point').length;",
                                   PLOT_ORDER.index("frontier"))
    assert drawn >= sum(lengths.values())  # every marker is in the SVG
    x_range = browser.execute_script(f"return {plots}[0].layout.xaxis.range;")
    assert x_range == [0, LATENCY_FOCUS * data.budget_ms]
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []


def test_measured_reference_networks_are_drawn_against_latency(tmp_path, described_study):
    """A network of the ``reference`` space measured on the device appears on the latency plot at
    its published top-1 (when the score is top-1), and nowhere without a measurement."""
    import dataclasses

    from explorer.dashboard import reference_latencies
    from explorer.db import Architecture, Measurement, open_database
    from explorer.reference import reference_networks
    from predictors.reference import reference_results
    from search_spaces.base import arch_id

    db = open_database(tmp_path / "m.db")
    assert reference_latencies(db, "local") == []
    published = {(r.model, r.resolution): r for r in reference_results()}
    network = next(n for n in reference_networks() if (n.weights, n.resolution) in published)
    config = network.config()
    with db.session() as session:
        session.add(Architecture(arch_id=arch_id(config), space=config.space, config_json=config.to_dict(),
                                 resolution=config.resolution))
        session.flush()
        session.add(Measurement(arch_id=arch_id(config), device="local", backend="ort", batch=1, threads=1,
                                resolution=config.resolution, metric="latency_ms", median_ms=4.2, status="ok",
                                provenance="measured"))
        session.commit()
    (found,) = reference_latencies(db, "local")
    assert found.result == published[network.weights, network.resolution] and found.latency_ms == 4.2

    study, evaluator, _ = described_study
    data = dashboard_data(study, evaluator, top=4, reference_latencies=[found])
    assert not data.score_in_top1  # the fake score is log(#params): no top-1 axis to place them on
    assert "the score is not top-1" in trials_figure(data).layout.title.text
    figure = trials_figure(dataclasses.replace(data, score_in_top1=True))
    (trace,) = [t for t in figure.data if t.name == "published networks: measured latency, published top-1"]
    assert list(trace.x) == [4.2] and list(trace.y) == [found.result.top1]
    assert "measured 4.20 ms" in trace.text[0] and "latency on fake (1)" in figure.layout.title.text
