"""One self-contained HTML page per search (plotly.js inlined, works offline).

Plots, in this order (the browser test relies on it): 0 every trial in (predicted latency,
score), two traces per family in :data:`FAMILY_COLOURS` (filled: within budget, open: over), then
the feasible Pareto front, the budget line, the shortlist and the published models of the
searched families, one trace each (diamonds in their family's colour, named in the legend rather
than by text beside the point, where neighbours' names would overlap; reconstructions say so),
the latency axis focused on up to :data:`LATENCY_FOCUS` times the budget (Autoscale shows all);
1 top-1 against MACs: the published state of the art (:mod:`predictors.reference`: every clean
published network faintly, the published frontier as a line) with the shortlist and the
published models of the searched families at the surrogate's predicted mean; 2 hypervolume after
each trial; 3 knob importance for the score and for the latency (mean decrease in impurity of a
random forest: deterministic, offline, about a second); 4 predicted versus measured latency where
measurements exist; 5 predicted latency of the shortlist and the published models on every device
that has a predictor, one colour per device.

Against latency (plot 0), a published network appears only where the device has a measured or
published latency of it (the ``reference`` space of :mod:`explorer.reference`: ``explorer measure
--space reference``), at its published top-1 and only when the score is in top-1 points; plot 0
says how many are drawn and why the others are not. Predicted latencies of them are never drawn.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances

from explorer.architectures import FAMILIES, NAMED_ARCHITECTURES, family_of
from explorer.search.hypervolume import hypervolume_history
from explorer.search.shortlist import (
    Candidate,
    key_knobs,
    pareto_front,
    reference_candidates,
    score_window,
    shortlist,
)
from explorer.search.space import (
    ALL,
    DEFAULT_SPACE,
    RESOLUTION_PARAM,
    SPACE_PARAM,
    study_resolutions,
    study_space,
    trial_config,
)
from explorer.search.study import Evaluation, Evaluator, evaluations, feasible
from predictors.reference import ReferenceResult, clean_reference, pareto_frontier

PLOT_ORDER = ("trials", "frontier", "hypervolume", "importance", "verification", "devices")
REFERENCES_TITLE = "published models (predicted position)"
#: One colour per family, the same on every dashboard.
FAMILY_COLOURS = dict(zip(FAMILIES, ("#4c78a8", "#f58518", "#54a24b", "#b279a2")))
#: One colour per device in the devices plot (46 before any repeats).
DEVICE_COLOURS = tuple(plotly.colors.qualitative.Dark24 + plotly.colors.qualitative.Light24)
#: The latency axis of the trials plot first shows up to this many times the budget.
LATENCY_FOCUS = 2.5
#: the least distance in decades of MACs between two labelled networks of the published frontier
LABEL_SPACING = 0.2
#: the least distance (fractions of the x and y axes) between two labelled shortlist stars
LABEL_GAP = (0.035, 0.04)
PUBLISHED_NAME = "published networks (ImageNet-1k only, no distillation)"
FRONTIER_NAME = "published frontier: best top-1 at <= MACs"


@dataclass(frozen=True)
class TrialPoint:
    number: int
    evaluation: Evaluation
    feasible: bool
    knobs: str
    family: str


@dataclass(frozen=True)
class Verified:
    """A measured (or published) architecture next to its prediction."""

    label: str
    arch_id: str
    predicted_ms: float
    low_ms: float
    high_ms: float
    measured_ms: float
    detail: str
    provenance: str = "measured"


@dataclass(frozen=True)
class ReferenceLatency:
    """A published network (its ImageNet-1k result) with a measured or published latency on the device."""

    result: ReferenceResult
    latency_ms: float
    provenance: str
    detail: str


@dataclass(frozen=True)
class DashboardData:
    """Everything the page shows, gathered once (see :func:`dashboard_data`)."""

    study: str
    device: str
    budget_ms: float
    objective_label: str
    predictor: str
    trials: tuple[TrialPoint, ...]
    front: tuple[int, ...]
    shortlist: tuple[Candidate, ...]
    references: tuple[Candidate, ...]
    importances: dict[str, dict[str, float]]
    verified: tuple[Verified, ...] = ()
    devices: dict[str, tuple[float, ...]] = field(default_factory=dict)
    device_labels: tuple[str, ...] = ()
    space: str = DEFAULT_SPACE
    #: the surrogate's view (``mean``, ``interval_90``, ...) of the shortlist then the references;
    #: empty when the objective cannot give one
    accuracy: tuple[dict | None, ...] = ()
    score_in_top1: bool = False  # the score axis is top-1 % (a surrogate objective)
    reference_latencies: tuple[ReferenceLatency, ...] = ()


def _knob_text(config) -> str:
    return "<br>".join(f"{k}: {v}" for k, v in key_knobs(config).items())


def _family_study(study: optuna.Study, family: str) -> optuna.Study:
    """The trials of one family of a ``--space all`` study, with that family's knobs only."""
    prefix = family + "."
    part = optuna.create_study(directions=study.directions)
    part.add_trials([optuna.trial.create_trial(
        params={k: v for k, v in t.params.items() if k.startswith(prefix) or k == RESOLUTION_PARAM},
        distributions={k: d for k, d in t.distributions.items() if k.startswith(prefix) or k == RESOLUTION_PARAM},
        values=t.values)
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.params[SPACE_PARAM] == family])
    return part


def knob_importances(study: optuna.Study) -> dict[str, dict[str, float]]:
    """Per objective, knob -> importance (sums to 1; with ``--space all``, to 1 within each
    family, on its own trials, since a knob shapes only its family's architectures); empty with
    fewer than 2 trials."""
    parts = [_family_study(study, family) for family in FAMILIES] if study_space(study) == ALL else [study]
    parts = [part for part in parts if len(part.get_trials(deepcopy=False)) >= 2]
    if not parts:
        return {}
    out: dict[str, dict[str, float]] = {}
    for index, name in enumerate(("score", "latency")):
        out[name] = {}
        for part in parts:
            out[name].update(get_param_importances(part, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0),
                                                   target=lambda t, i=index: t.values[i]))
    return out


def dashboard_data(study: optuna.Study, evaluator: Evaluator, *, top: int = 8, verified: Sequence[Verified] = (),
                   device_predictions: dict[str, Sequence[float]] | None = None,
                   reference_latencies: Sequence[ReferenceLatency] = ()) -> DashboardData:
    """Gather the page's data from a study; ``verified``, ``device_predictions`` (device ->
    predicted ms for the shortlist then the references) and ``reference_latencies`` come from the
    database when available."""
    attrs = study.user_attrs
    rows = evaluations(study)
    picks = shortlist(study, top)
    references = reference_candidates(evaluator, attrs["resolution"], attrs["budget_ms"], study_space(study),
                                      study_resolutions(study))
    configs = [trial_config(study, t) for t, _ in rows]
    describe = getattr(evaluator.objective, "describe", None)
    return DashboardData(
        study=study.study_name, device=attrs["device"], budget_ms=attrs["budget_ms"],
        objective_label=attrs["objective_label"], predictor=attrs["predictor"],
        trials=tuple(TrialPoint(t.number, e, feasible(t), _knob_text(c), family_of(c.space))
                     for (t, e), c in zip(rows, configs)),
        front=tuple(t.number for t, _ in pareto_front(rows)),
        shortlist=tuple(picks), references=tuple(references),
        importances=knob_importances(study), verified=tuple(verified),
        devices={k: tuple(v) for k, v in (device_predictions or {}).items()},
        device_labels=tuple(candidate_labels(picks, references)), space=study_space(study),
        accuracy=tuple(describe([c.config for c in (*picks, *references)])) if describe is not None else (),
        score_in_top1=score_window(attrs["objective"]) is not None, reference_latencies=tuple(reference_latencies),
    )


def candidate_labels(picks: Sequence[Candidate], references: Sequence[Candidate]) -> list[str]:
    return [f"trial {c.trial}" for c in picks] + [c.name for c in references]


def _family_traces(points: Sequence[TrialPoint], family: str) -> list[go.Scatter]:
    """A family's trials: filled where the upper bound is within budget, open where not; one
    legend entry (the filled trace) switches both."""
    return [go.Scatter(
        x=[p.evaluation.latency_ms for p in group], y=[p.evaluation.score for p in group], mode="markers",
        name=family if within else f"{family}, over budget", legendgroup=family, showlegend=within,
        marker={"color": FAMILY_COLOURS[family], "size": 5, "symbol": "circle" if within else "circle-open",
                "opacity": 0.7 if within else 0.45},
        text=[f"trial {p.number} · {p.family} · {p.evaluation.arch_id}<br>predicted {p.evaluation.latency_ms:.2f} ms "
              f"({p.evaluation.low_ms:.2f} to {p.evaluation.high_ms:.2f}), "
              f"{'within' if within else 'over'} budget<br>{p.knobs}" for p in group],
        hovertemplate="%{text}<br>score %{y:.4g}<extra></extra>",
    ) for within, group in ((True, [p for p in points if p.feasible]), (False, [p for p in points if not p.feasible]))]


def preset_label(name: str) -> str:
    """A preset's name, marked when the registry holds a reconstruction rather than the published model."""
    return name if NAMED_ARCHITECTURES[name].exact else f"{name} (reconstruction)"


def _candidate_trace(candidates: Sequence[Candidate], name: str, labels: Sequence[str], shown: Sequence[str] | None = None,
                     **marker) -> go.Scatter:
    """Candidates at (predicted latency, score); ``shown``: the labels drawn beside the points
    (default ``labels``, which the hover always names)."""
    e = [c.evaluation for c in candidates]
    return go.Scatter(
        x=[v.latency_ms for v in e], y=[v.score for v in e], mode="markers+text", name=name,
        text=list(labels if shown is None else shown), hovertext=list(labels), textposition="top center",
        textfont={"size": 10},
        marker={**marker, "color": [FAMILY_COLOURS[c.family] for c in candidates],
                "line": {"color": "black", "width": 1}},
        error_x={"type": "data", "symmetric": False, "array": [v.high_ms - v.latency_ms for v in e],
                 "arrayminus": [v.latency_ms - v.low_ms for v in e], "thickness": 1},
        customdata=[f"{c.family}<br>{_knob_text(c.config)}" for c in candidates],
        hovertemplate="%{hovertext}<br>predicted %{x:.2f} ms<br>score %{y:.4g}<br>%{customdata}<extra></extra>",
    )


def _uncrowded(points: Sequence[tuple[float, float]], labels: Sequence[str], spans: tuple[float, float]) -> list[str]:
    """``labels`` with those left out whose point lies within :data:`LABEL_GAP` (fractions of the
    axes' ``spans``) of a point already labelled: stacked names are unreadable, the hover names all."""
    kept: list[tuple[float, float]] = []
    out = []
    for (x, y), label in zip(points, labels):
        near = any(abs(x - kx) < LABEL_GAP[0] * spans[0] and abs(y - ky) < LABEL_GAP[1] * spans[1] for kx, ky in kept)
        out.append("" if near else label)
        if not near:
            kept.append((x, y))
    return out


def _reference_trace(candidate: Candidate) -> go.Scatter:
    """A published model as its own legend entry: the name stays readable however close the points are."""
    trace = _candidate_trace([candidate], preset_label(candidate.name), [preset_label(candidate.name)], size=10,
                             symbol="diamond")
    trace.update(mode="markers", legendgroup="published", legendgrouptitle_text=REFERENCES_TITLE)
    return trace


def trials_figure(data: DashboardData) -> go.Figure:
    by_number = {p.number: p for p in data.trials}
    front = sorted((by_number[n] for n in data.front), key=lambda p: p.evaluation.latency_ms)
    scores = [p.evaluation.score for p in data.trials] or [0.0]
    present = [f for f in FAMILIES if any(p.family == f for p in data.trials)]
    figure = go.Figure([
        *(trace for f in present for trace in _family_traces([p for p in data.trials if p.family == f], f)),
        go.Scatter(x=[p.evaluation.latency_ms for p in front], y=[p.evaluation.score for p in front],
                   mode="lines+markers", name="Pareto front", line={"color": "#e45756", "shape": "hv"},
                   hoverinfo="skip"),
        go.Scatter(x=[data.budget_ms, data.budget_ms], y=[min(scores), max(scores)], mode="lines",
                   name=f"budget {data.budget_ms:g} ms", line={"color": "black", "dash": "dash"}, hoverinfo="skip"),
        _candidate_trace(data.shortlist, "shortlist", [f"#{c.trial}" for c in data.shortlist],
                         _uncrowded([(c.evaluation.latency_ms, c.evaluation.score) for c in data.shortlist],
                                    [f"#{c.trial}" for c in data.shortlist],
                                    (_latency_span(data), (max(scores) - min(scores)) or 1.0)),
                         size=12, symbol="star"),
        *(_reference_trace(c) for c in data.references),
    ])
    focus = LATENCY_FOCUS * data.budget_ms
    focused = _latency_span(data) == focus
    notes = ([f"Latency axis: up to {focus:g} ms ({LATENCY_FOCUS:g} x the budget); Autoscale shows all."]
             if focused else [])
    drawn = data.reference_latencies if data.score_in_top1 else ()
    if drawn:
        figure.add_trace(go.Scatter(
            x=[r.latency_ms for r in drawn], y=[r.result.top1 for r in drawn], mode="markers",
            name="published networks: measured latency, published top-1",
            marker={"color": "#888888", "size": 7, "symbol": "square-open"},
            text=[f"{_reference_text(r.result)}<br>{r.provenance} {r.latency_ms:.2f} ms ({r.detail})" for r in drawn],
            hovertemplate="%{text}<extra></extra>"))
    notes += _reference_note(data, len(drawn))
    figure.update_layout(title=f"Trials of {data.study}: score vs predicted latency on {data.device}"
                               f"<br><sup>{'<br>'.join(notes)}</sup>",
                         xaxis_title=f"predicted latency on {data.device} (ms, median; bars: interval)",
                         yaxis_title=data.objective_label, legend_title_text="family (filled: within budget)",
                         height=620 + 15 * len(notes), margin={"t": 80 + 15 * len(notes)})
    if focused:
        figure.update_xaxes(range=[0, focus])
    return figure


def _latency_span(data: DashboardData) -> float:
    """The width of the latency axis as first shown: all latencies, or up to :data:`LATENCY_FOCUS`
    times the budget when they reach further."""
    latencies = [p.evaluation.latency_ms for p in data.trials] + [c.evaluation.high_ms for c in data.references]
    return min(max(latencies, default=0.0), LATENCY_FOCUS * data.budget_ms) or 1.0


def _reference_note(data: DashboardData, drawn: int) -> list[str]:
    """Which published networks the latency plot shows, and why not the others (lines short
    enough for the subtitle)."""
    measured, published = len(data.reference_latencies), len(clean_reference())
    if drawn:
        return [f"Grey squares: published networks with a measured or published latency on {data.device} ({drawn}), "
                "at their published top-1;", "the others have none there (all of them against MACs: next plot)."]
    if measured:
        return [f"{measured} published networks have a latency on {data.device}, but the score is not top-1:",
                "they are drawn against MACs in the next plot."]
    return [f"Not drawn: the {published} published networks outside the searched spaces (no measured or published "
            f"latency on {data.device});", "they are drawn against MACs in the next plot (`explorer measure --space "
            "reference` measures some)."]


def _reference_text(r: ReferenceResult) -> str:
    preset = f"<br>a preset of our spaces: {r.in_space}" if r.in_space else ""
    source = "timm results table" if r.source.startswith("pytorch-image-models") else r.source
    return (f"{r.model} @ {r.resolution} px<br>{r.macs_m:.0f} M MACs, {r.params_m:.2f} M params<br>"
            f"top-1 {r.top1:.2f} %{preset}<br>published ({source})")


def _accuracy_trace(candidates: Sequence[Candidate], views: Sequence[dict | None], name: str,
                    labels: Sequence[str], **marker) -> go.Scatter:
    """Candidates at (MACs, the surrogate's predicted mean) with its ~90 % interval as bars."""
    shown = [(c, v, label) for c, v, label in zip(candidates, views, labels) if v]
    return go.Scatter(
        x=[c.evaluation.macs / 1e6 for c, _, _ in shown], y=[v["mean"] for _, v, _ in shown], mode="markers",
        name=name, text=[label for _, _, label in shown],
        marker={**marker, "color": [FAMILY_COLOURS[c.family] for c, _, _ in shown],
                "line": {"color": "black", "width": 1}},
        error_y={"type": "data", "symmetric": False, "array": [v["interval_90"][1] - v["mean"] for _, v, _ in shown],
                 "arrayminus": [v["mean"] - v["interval_90"][0] for _, v, _ in shown], "thickness": 1},
        hovertemplate="%{text}<br>%{x:.0f} M MACs<br>top-1 %{y:.1f} % (surrogate mean, predicted)<extra></extra>")


def _frontier_labels(front: Sequence[ReferenceResult]) -> list[str]:
    """Names beside the frontier's networks (above the line, where no published network lies), one
    per :data:`LABEL_SPACING` decades of MACs so that neighbours' names do not overlap."""
    labels, last = [], -np.inf
    for r in front:
        far = np.log10(r.macs_m) - last >= LABEL_SPACING
        labels.append(f"{r.architecture} @ {r.resolution}" if far else "")
        last = np.log10(r.macs_m) if far else last
    return labels


def frontier_figure(data: DashboardData) -> go.Figure:
    """Top-1 against MACs: where the shortlist's predictions stand against every clean published
    ImageNet-1k network and the best of them at no more MACs."""
    published, front = clean_reference(exclude_in_space=False), pareto_frontier()
    n = len(data.shortlist)
    traces = [
        go.Scatter(x=[r.macs_m for r in published], y=[r.top1 for r in published], mode="markers",
                   name=PUBLISHED_NAME, marker={"color": "#888888", "size": 5, "opacity": 0.35},
                   text=[_reference_text(r) for r in published], hovertemplate="%{text}<extra></extra>"),
        go.Scatter(x=[r.macs_m for r in front], y=[r.top1 for r in front], mode="lines+markers+text",
                   name=FRONTIER_NAME, line={"color": "#333333", "shape": "hv", "width": 1.5},
                   marker={"size": 4, "color": "#333333"}, text=_frontier_labels(front),
                   textposition=["top right"] + ["top left"] * (len(front) - 1),  # the first would leave the plot
                   textfont={"size": 9, "color": "#555555"}, customdata=[_reference_text(r) for r in front],
                   hovertemplate="%{customdata}<extra></extra>"),
    ]
    if data.accuracy:
        traces.append(_accuracy_trace(data.shortlist, data.accuracy[:n], "shortlist (surrogate mean, ~90 %)",
                                      [f"trial {c.trial}" for c in data.shortlist], size=12, symbol="star"))
        traces += [_accuracy_trace([c], [view], preset_label(c.name), [preset_label(c.name)], size=10,
                                   symbol="diamond").update(legendgroup="published",
                                                            legendgrouptitle_text="published models (surrogate mean)")
                   for c, view in zip(data.references, data.accuracy[n:])]
    figure = go.Figure(traces)
    note = ("" if any(data.accuracy) else
            "<br><sup>No surrogate prediction for this study's architectures (too few known results).</sup>")
    figure.update_layout(title="Top-1 against MACs: the shortlist's predictions and the published state of the art"
                               + note,
                         xaxis={"title": "MACs (millions, log scale)", "type": "log"},
                         yaxis_title="ImageNet-1k top-1 %", height=560)
    return figure


def hypervolume_figure(data: DashboardData) -> go.Figure:
    ordered = sorted(data.trials, key=lambda p: p.number)
    scores = [p.evaluation.score if p.feasible else -np.inf for p in ordered]
    finite = [s for s in scores if np.isfinite(s)]
    ref_score = min(finite) if finite else 0.0
    history = hypervolume_history(scores, [p.evaluation.latency_ms for p in ordered], ref_score, data.budget_ms)
    figure = go.Figure(go.Scatter(x=[p.number for p in ordered], y=history.tolist(), mode="lines",
                                  name="hypervolume"))
    figure.update_layout(title=f"Hypervolume of the feasible front (reference: lowest score {ref_score:.4g}, "
                               f"budget {data.budget_ms:g} ms)", xaxis_title="trial", yaxis_title="hypervolume",
                         height=380)
    return figure


def importance_figure(data: DashboardData) -> go.Figure:
    knobs = sorted({k for values in data.importances.values() for k in values},
                   key=lambda k: -sum(v.get(k, 0.0) for v in data.importances.values()))
    figure = go.Figure([go.Bar(x=knobs, y=[values.get(k, 0.0) for k in knobs], name=f"for the {target}")
                        for target, values in data.importances.items()])
    within = " within each family" if data.space == ALL else ""
    figure.update_layout(title="Knob importance (mean decrease in impurity of a random forest)",
                         barmode="group", yaxis_title=f"importance (sums to 1{within})", height=420)
    return figure


def verification_figure(data: DashboardData) -> go.Figure:
    v = data.verified
    figure = go.Figure()
    if v:
        top = max(max(x.measured_ms for x in v), max(x.high_ms for x in v)) * 1.1
        for provenance, symbol in (("measured", "circle"), ("published", "diamond")):
            points = [x for x in v if x.provenance == provenance]
            if not points:
                continue
            figure.add_trace(go.Scatter(
                x=[x.measured_ms for x in points], y=[x.predicted_ms for x in points], mode="markers+text",
                name=f"{provenance} latency", marker={"symbol": symbol, "size": 9},
                text=[x.label for x in points], textposition="top center",
                error_y={"type": "data", "symmetric": False, "array": [x.high_ms - x.predicted_ms for x in points],
                         "arrayminus": [x.predicted_ms - x.low_ms for x in points]},
                customdata=[x.detail for x in points],
                hovertemplate=f"%{{text}}<br>{provenance} %{{x:.2f}} ms<br>predicted %{{y:.2f}} ms<br>"
                              "%{customdata}<extra></extra>"))
        figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="predicted = measured",
                                    line={"dash": "dot", "color": "grey"}, hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=[data.budget_ms] * 2, y=[0, top], mode="lines", name="budget",
                                    line={"dash": "dash", "color": "black"}, hoverinfo="skip"))
    else:
        figure.add_annotation(text="No measurements of these architectures on this device yet: "
                                   "run `explorer verify` to measure the shortlist.", showarrow=False)
    figure.update_layout(title=f"Predicted vs measured latency on {data.device}",
                         xaxis_title="measured or published latency (ms)", yaxis_title="predicted latency (ms)",
                         height=480)
    return figure


def devices_figure(data: DashboardData) -> go.Figure:
    figure = go.Figure([go.Bar(x=list(data.device_labels), y=list(values), name=device,
                               marker_color=DEVICE_COLOURS[i % len(DEVICE_COLOURS)])
                        for i, (device, values) in enumerate(data.devices.items())])
    figure.update_layout(title="Predicted latency of the shortlist and the published models on every device "
                               "with a predictor", barmode="group", yaxis_title="predicted latency (ms)",
                         yaxis_type="log", height=480)
    return figure


def render(figures: Sequence[go.Figure], title: str, summary: dict[str, str]) -> str:
    """One HTML page; the first figure carries plotly.js inline, so the file works offline."""
    divs = [pio.to_html(f, include_plotlyjs=(i == 0), full_html=False, config={"responsive": True})
            for i, f in enumerate(figures)]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary.items())
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}th{text-align:left;padding-right:1em}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><table>{rows}</table>" + "".join(divs) + "</body></html>")


def search_dashboard(data: DashboardData) -> str:
    summary = {
        "space": data.space, "device": data.device,
        "budget": f"{data.budget_ms:g} ms (on the predictor's upper bound)",
        "accuracy axis": data.objective_label, "latency axis": f"predicted by {data.predictor}",
        "trials": str(len(data.trials)),
        "shortlist": ", ".join(f"trial {c.trial} ({c.evaluation.arch_id})" for c in data.shortlist) or "empty",
    }
    figures = [trials_figure(data), frontier_figure(data), hypervolume_figure(data), importance_figure(data),
               verification_figure(data), devices_figure(data)]
    return render(figures, f"Search {data.study}", summary)


def write_html(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def device_predictions(db, configs: Sequence) -> dict[str, list[float]]:
    """Predicted latency of ``configs`` on every stored device that has a predictor."""
    from predictors import NoPredictorError, load_predictor

    from explorer.db import Device

    with db.session() as session:
        devices = [d.name for d in session.query(Device).order_by(Device.name)]
    out = {}
    for device in devices:
        try:
            model = load_predictor(db, device)
        except NoPredictorError:
            continue
        out[device] = model.predict(list(configs))[0].tolist()
    return out


def study_dashboard(db, study: optuna.Study, evaluator: Evaluator, *, top: int = 8) -> DashboardData:
    """:func:`dashboard_data` with measurements and other devices' predictions from ``db``."""
    from explorer.verify import measured_latencies

    rows = evaluations(study)
    picks = shortlist(study, top)
    references = reference_candidates(evaluator, study.user_attrs["resolution"], study.user_attrs["budget_ms"],
                                      study_space(study), study_resolutions(study))
    labelled = {e.arch_id: (f"trial {t.number}", e) for t, e in rows}
    labelled.update({c.evaluation.arch_id: (c.name, c.evaluation) for c in references})
    measured = measured_latencies(db, study.user_attrs["device"], list(labelled), ("measured", "published"))
    verified = [Verified(labelled[key][0], key, labelled[key][1].latency_ms, labelled[key][1].low_ms,
                         labelled[key][1].high_ms, m.median_ms, m.detail, m.provenance)
                for key, m in measured.items()]
    devices = device_predictions(db, [c.config for c in (*picks, *references)])
    return dashboard_data(study, evaluator, top=top, verified=verified, device_predictions=devices,
                          reference_latencies=reference_latencies(db, study.user_attrs["device"]))


def reference_latencies(db, device: str) -> list[ReferenceLatency]:
    """The networks of the ``reference`` space with a published ImageNet-1k result and a measured
    (or published) latency on ``device``."""
    from explorer.reference import reference_networks
    from explorer.verify import measured_latencies
    from predictors.reference import reference_results
    from search_spaces.base import arch_id

    results = {(r.model, r.resolution): r for r in reference_results()}
    known = {arch_id(n.config()): results[n.weights, n.resolution] for n in reference_networks()
             if (n.weights, n.resolution) in results}
    measured = measured_latencies(db, device, list(known), ("measured", "published"))
    return [ReferenceLatency(known[key], m.median_ms, m.provenance, m.detail) for key, m in measured.items()]
