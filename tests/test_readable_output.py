"""Tables of the command line fit 80 and 120 columns: no line wider than the terminal, no value cut
with an ellipsis, arch ids and names whole (they are what the next command takes), bracketed
header text shown as written (rich would take "[high]" for markup)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from explorer.cli import predict as predict_cli
from explorer.cli import proxy as proxy_cli
from explorer.cli import search as search_cli
from explorer.search import Evaluator, SearchSettings, run_search, search_report

from test_frontier_display import DescribedLogParams
from test_search import MacsLatency

WIDTHS = (80, 120)


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, record=True, color_system=None)


def _lines(renderable, width: int) -> list[str]:
    console = _console(width)
    console.print(renderable)
    return console.export_text().splitlines()


def _check_fits(lines: list[str], width: int, whole: list[str]) -> str:
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= width
    assert "…" not in text and "..." not in text
    missing = [value for value in whole if value not in text]
    assert missing == []
    return text


def _flat(text: str) -> str:
    """The text with its line breaks and padding as single spaces (captions wrap)."""
    return " ".join(text.split())


def _row(i: int, family: str, name: str | None = None, extrapolation: bool = False) -> dict:
    """A search entry as ``explorer search --json`` prints it (the keys the table reads)."""
    return {"trial": None if name else 700 + i, "name": name, "family": family, "arch_id": f"{i:x}" * 16,
            "resolution": 224, "macs": (200 + 150 * i) * 1e6, "params": (5 + i) * 1e6, "score": 75.123 + i,
            "latency_ms": 12.7 * (i + 1), "low_ms": 11.2 * (i + 1), "high_ms": 14.5 * (i + 1), "meets_budget": i < 3,
            "knobs": {"widths": [16, 32, 64, 128, 256], "depths": [0, 1, 1, 3, 4], "attention": ["lowtention", "none"],
                      "mlp": [True, False], "expansions": [4, 4, 4], "head_widths": [1024, 1280]},
            "accuracy": {"mean": 77.04 + i, "interval_90": [75.51 + i, 78.62 + i], "extrapolation": extrapolation,
                         "nearest_result": {"name": "efficientvit-seed-w1.2 @ 224", "top1": 79.7}},
            "published_frontier": {"best_top1": 77.84 + i, "best_model": "hardcorenas_c.miil_green_in1k @ 224",
                                   "macs_m_at_most": 200.0 + 150 * i, "distance": -0.8}}


SHORTLIST = [_row(i, family, extrapolation=i == 2)
             for i, family in enumerate(("lowformer", "efficientvit", "fmvit", "mcga", "lowformer"), 1)]
REFERENCES = [_row(i, "efficientvit", name) for i, name in
              enumerate(("efficientvit-seed-w1.2", "lowformer-b1.5", "mcga-paper", "fmvit-s", "efficientvit-b1"), 1)]


@pytest.mark.parametrize("width", WIDTHS)
def test_search_tables_fit_and_keep_ids_whole(width):
    objective = "surrogate-pessimistic (surrogate top-1 (predicted, pessimistic 5 % quantile), ImageNet %)"
    shortlist = _check_fits(_lines(search_cli._candidate_table("Shortlist", SHORTLIST, "trial", objective, width),
                                   width), width, [r["arch_id"] for r in SHORTLIST] + ["top-1 % [~90 %]", "-0.8"])
    flagged = next(r for r in SHORTLIST if r["accuracy"]["extrapolation"])
    assert f"{flagged['accuracy']['mean']:.1f}!" in shortlist and "! extrapolated" in _flat(shortlist)  # explained
    assert ("ms [high]" if width < 120 else "ms [~90 %]") in shortlist
    first = SHORTLIST[0]
    assert (f"{first['latency_ms']:.1f} [{first['high_ms']:.1f}]" if width < 120 else
            f"{first['latency_ms']:.1f} [{first['low_ms']:.1f}, {first['high_ms']:.1f}]") in shortlist
    for family in ("lowformer", "efficientvit", "fmvit", "mcga"):  # several families: each row names its own
        assert family in shortlist
    names = [r["name"] + ("" if r["meets_budget"] else "*") for r in REFERENCES]
    references = _check_fits(_lines(search_cli._candidate_table("Published", REFERENCES, "model", objective, width),
                                    width), width, names + ["top-1 % [~90 %]"])
    assert "* over the budget" in _flat(references)


def test_wide_search_table_shows_knobs_and_nearest_results():
    text = "\n".join(_lines(search_cli._candidate_table("Shortlist", SHORTLIST, "trial", "score", 200), 200))
    assert "widths" in text and "efficientvit-seed-w1.2 @ 224" in text and "knobs" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_search_report_prints_within_the_terminal(tmp_path, monkeypatch, width):
    models = lambda: (MacsLatency(), DescribedLogParams())  # noqa: E731
    evaluator = Evaluator(*models())
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=30, batch_size=30,
                              study_name="readable", sampler="random", space="all")
    study = run_search(settings, f"sqlite:///{tmp_path}/s.db", models, evaluator=evaluator)
    report = {"storage": "s.db", **search_report(study, evaluator, top=5), "dashboard": None, "study_rescored": None}
    console = _console(width)
    monkeypatch.setattr(search_cli, "console", console)
    search_cli._print_report(report)
    rows = report["shortlist"] + report["references"]
    text = _check_fits(console.export_text().splitlines(), width,
                       [r["arch_id"] for r in report["shortlist"]] + [r["name"] for r in report["references"]])
    distances = [f"{r['published_frontier']['distance']:+.1f}" for r in rows]
    assert all(d in text for d in distances) and "vs pub." in text


SUGGESTIONS = [{"arch_id": f"{i:x}" * 16, "family": family, "resolution": 224, "expected_improvement": 2.97 / i,
                "top1_mean": 77.06, "top1_interval_90": [60.41, 93.71], "latency_ms": 31.7, "latency_high_ms": 36.2,
                "nearest_result": "efficientvit-seed-w1.2 @ 224"}
               for i, family in enumerate(("efficientvit", "lowformer", "mcga"), 1)]


@pytest.mark.parametrize("width", WIDTHS)
def test_suggest_table_explains_its_brackets(width):
    text = _check_fits(_lines(search_cli._suggest_table(SUGGESTIONS, "raspi5-ort", 40.0, width), width), width,
                       [r["arch_id"] for r in SUGGESTIONS] + ["ms [high]", "top-1 % [~90 %]", "31.7 [36.2]"])
    assert "median [upper bound]" in _flat(text)


class _Evidence:
    def __init__(self, score: str):
        self.score, self.label, self.n = score, "surrogate top-1 (predicted, pessimistic 5 % quantile), ImageNet %", 27
        self.kendall_tau, self.kendall_p, self.spearman = 0.89, 7.7e-11, 0.98
        self.partial_tau_params, self.partial_spearman_params = 0.76, None
        self.within_size_ordered, self.within_size_pairs, self.seconds_per_arch = 0.93, 43, 2.22e-05


@pytest.mark.parametrize("width", WIDTHS)
def test_proxy_report_table_fits(width):
    scores = ["surrogate-pessimistic", "surrogate-optimistic", "params"]
    _check_fits(_lines(proxy_cli._evidence_table("published:imagenet", [_Evidence(s) for s in scores], width), width),
                width, scores + ["93% of 43", "+0.89", "7.7e-11"])


@pytest.mark.parametrize("width", WIDTHS)
def test_predictor_family_table_fits(monkeypatch, width):
    split = {"model": {"n": 627, "mape": 3.44, "within_10": 96.5, "spearman": 0.996, "kendall": 0.953},
             "macs_baseline": {"n": 627, "mape": 10.9, "within_10": 40.0, "spearman": 0.977, "kendall": 0.9}}
    metrics = {"protocol": "5-fold cross-validation by architecture", "model": {}, "macs_baseline": {},
               "by_family": {family: {"within": split, "cross": split}
                             for family in ("lowformer", "efficientvit", "fmvit", "mcga")}}
    console = _console(width)
    monkeypatch.setattr(predict_cli, "console", console)
    predict_cli._print_metrics("dev-epyc-2c-ort (xgboost-ridge#1)", metrics)
    _check_fits(console.export_text().splitlines(), width, ["lowformer", "efficientvit", "0.996", "10.9"])


@pytest.mark.parametrize("width", WIDTHS)
def test_results_list_keeps_names_whole(width):
    from types import SimpleNamespace

    results = [SimpleNamespace(result_id=i, name=name, arch_id="8e0c8cd3a7be2f5d",
                               config=SimpleNamespace(resolution=224),
                               dataset="imagenet", top1=79.7, epochs=None, provenance="published",
                               source="EfficientViT release (assets/eval_efficientvit_cls_model.sh)")
               for i, name in enumerate(("efficientvit-seed-w1.2", None), 1)]
    _check_fits(_lines(proxy_cli._results_table("2 results", results, width), width), width,
                ["efficientvit-seed-w1.2", "8e0c8cd3a7be2f5d", "79.70"])


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_table_fits(width):
    from explorer.verify import VerifiedRow, VerifyReport

    rows = [VerifiedRow(700 + i, f"{i:x}" * 16, 32.54, 28.51, 37.12, 35.3 if i % 2 else None,
                        True if i % 2 else None, True if i % 2 else None, "measured") for i in range(1, 5)]
    report = VerifyReport("raspi5-ort-40ms-surrogate-pessimistic", "raspi5-ort", 40.0, "transfer#3", tuple(rows))
    _check_fits(_lines(search_cli._verify_table(report), width), width,
                [r.arch_id for r in rows] + ["predicted ms [~90 %]", "32.54 [28.51, 37.12]", "35.30"])


@pytest.mark.parametrize("width", WIDTHS)
def test_reference_networks_table_fits(width):
    from explorer.reference import reference_networks

    within = [{"name": n.timm_model, "family": n.family, "resolution": n.resolution, "macs": 123.4e6 * i,
               "latency_ms": 3.21 * i, "top1": 70.0 + i / 10, "distilled": i % 3 == 0, "weights": n.weights}
              for i, n in enumerate(reference_networks(), 1)]
    found = {"budget_ms": 40.0, "device": "raspi5-ort", "within_budget": within}
    text = _check_fits(_lines(search_cli._reference_networks_table(found, width), width), width,
                       [r["name"] for r in within] + ["73.00 dist.", "top-1 %"])
    assert ("mobilenetv3_small_100.lamb_in1k" in text) == (width >= 120)


def test_dashboard_leaves_out_stacked_shortlist_labels():
    from explorer.dashboard import LABEL_GAP, _uncrowded

    spans = (100.0, 10.0)
    points = [(10.0, 75.0), (10.0 + LABEL_GAP[0] * 50, 75.0 + LABEL_GAP[1] * 5), (30.0, 75.0), (10.0, 80.0)]
    assert _uncrowded(points, ["#1", "#2", "#3", "#4"], spans) == ["#1", "", "#3", "#4"]


def test_dashboard_shortlist_labels_do_not_stack_and_the_hover_names_every_entry(tmp_path):
    from explorer.dashboard import LABEL_GAP, _latency_span, dashboard_data, trials_figure

    models = lambda: (MacsLatency(), DescribedLogParams())  # noqa: E731
    evaluator = Evaluator(*models())
    settings = SearchSettings(device="fake", budget_ms=10.0, objective="log-params", trials=60, batch_size=30,
                              study_name="labels", sampler="random")
    study = run_search(settings, f"sqlite:///{tmp_path}/s.db", models, evaluator=evaluator)
    data = dashboard_data(study, evaluator, top=12)
    (stars,) = [t for t in trials_figure(data).data if t.name == "shortlist"]
    assert list(stars.hovertext) == [f"#{c.trial}" for c in data.shortlist] and len(stars.x) >= 6
    scores = [p.evaluation.score for p in data.trials]
    x_span, y_span = _latency_span(data), max(scores) - min(scores)
    shown = [(x, y) for x, y, label in zip(stars.x, stars.y, stars.text) if label]
    assert shown
    for i, (x, y) in enumerate(shown):
        assert all(abs(x - kx) >= LABEL_GAP[0] * x_span or abs(y - ky) >= LABEL_GAP[1] * y_span
                   for kx, ky in shown[:i])
