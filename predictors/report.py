"""The report of a stored predictor: held-out metrics beside the MACs baseline and the device's
repeatability, and a self-contained predicted-versus-measured Plotly page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from explorer.db import Database
from predictors.store import predictor_row

METRIC_LABELS = {
    "mape": "MAPE (%)",
    "rmse_ms": "RMSE (ms)",
    "within_5": "within +-5 % (%)",
    "within_10": "within +-10 % (%)",
    "spearman": "Spearman",
    "kendall": "Kendall tau",
    "coverage": "interval coverage (%)",
}


def predictor_report(db: Database, device: str) -> dict[str, Any]:
    """Everything known about the device's default predictor, as plain data."""
    with db.session() as session:
        row = predictor_row(session, device)
        return {
            "device": row.device, "backend": row.backend, "batch": row.batch, "threads": row.threads,
            "kind": row.kind, "predictor_id": row.id, "feature_version": row.feature_version,
            "created_at": row.created_at.isoformat(), "is_default": row.is_default,
            "training_architectures": len(row.training_arch_ids), "library_versions": row.library_versions,
            "metrics": row.metrics,
        }


def metrics_rows(report: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(label, model, MACs baseline) per metric."""
    model, baseline = report["metrics"]["model"], report["metrics"]["macs_baseline"]
    return [(label, model.get(key), baseline.get(key)) for key, label in METRIC_LABELS.items()]


FAMILY_COLUMNS = ("family", "held out", "n", "MAPE %", "within +-10 %", "Spearman", "Kendall",
                  "MACs-only MAPE %", "MACs-only Spearman")


def family_rows(metrics: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per family and split (``within``: cross-validated among all families; ``cross``:
    trained without the family), formatted for a table with :data:`FAMILY_COLUMNS`."""
    rows = []
    for family, splits in (metrics.get("by_family") or {}).items():
        for split, label in (("within", "within its family's folds"), ("cross", "whole family (trained without it)")):
            if split not in splits:
                continue
            model, baseline = splits[split]["model"], splits[split]["macs_baseline"]
            rows.append((family, label, str(model["n"]), _cell(model["mape"]), _cell(model["within_10"]),
                         _cell(model["spearman"]), _cell(model["kendall"]), _cell(baseline["mape"]),
                         _cell(baseline["spearman"])))
    return rows


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def report_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (Plotly inlined)."""
    import plotly.graph_objects as go

    metrics = report["metrics"]
    points = metrics["points"]
    measured = points["measured"]
    low = [p - lo for p, lo in zip(points["predicted"], points["low"])]
    high = [hi - p for p, hi in zip(points["predicted"], points["high"])]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=measured, y=points["macs"], mode="markers", name="MACs-only baseline",
                             marker={"color": "#bbbbbb", "size": 5}, text=points["arch_ids"]))
    fig.add_trace(go.Scatter(x=measured, y=points["predicted"], mode="markers", name=f"{report['kind']} predictor",
                             error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low,
                                      "thickness": 0.7, "color": "rgba(31,119,180,0.35)"},
                             marker={"color": "#1f77b4", "size": 6}, text=points["arch_ids"]))
    lo, hi = min(measured) * 0.8, max(measured) * 1.25
    for factor, dash, name in ((1.0, "solid", "measured = predicted"), (1.1, "dot", "+-10 %"), (0.9, "dot", None)):
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo * factor, hi * factor], mode="lines", name=name,
                                 showlegend=name is not None, line={"color": "black", "dash": dash, "width": 1}))
    fig.update_layout(
        title=f"{report['device']}: predicted vs measured latency ({metrics['protocol']}, held-out)",
        xaxis={"title": "measured ms per image", "type": "log"},
        yaxis={"title": "predicted ms per image", "type": "log"}, width=900, height=700)
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{_cell(m)}</td><td>{_cell(b)}</td></tr>"
                   for label, m, b in metrics_rows(report))
    family_table = ""
    if family_rows(metrics):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in FAMILY_COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in family_rows(metrics))
        family_table = f"<h2>Per backbone family</h2><table><tr>{head}</tr>{body}</table>"
    repeat = metrics.get("repeatability")
    repeat_text = ("no repeated measurements of the same architectures on this setup" if not repeat else
                   f"repeated measurements of {repeat['architectures']} architectures deviate from their "
                   f"median by {repeat['median_deviation_pct']:.2g} % (median); {repeat['within_10']:.3g} % "
                   "of them lie within +-10 %")
    setup = (f"backend {report['backend']}, batch {report['batch']}, threads {report['threads'] or 'default'}; "
             f"{report['training_architectures']} architectures; features {report['feature_version']}; "
             f"target: {metrics['target']} latency")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Latency predictor: {html.escape(report['device'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 12px;border-bottom:1px solid #ddd}}</style>
</head><body>
<h1>Latency predictor for {html.escape(report['device'])} ({html.escape(report['kind'])})</h1>
<p>{html.escape(setup)}. Predictions are estimates, scored here on architectures each model did not see.</p>
<table><tr><th>metric</th><th>predictor</th><th>MACs-only baseline</th></tr>{rows}</table>
{family_table}
<p>Device repeatability: {html.escape(repeat_text)}.</p>
{fig.to_html(full_html=False, include_plotlyjs=True)}
</body></html>
"""


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(report_html(report), encoding="utf-8")
    return path
