"""Verification: measure a search's shortlist for real and set the measurements beside the
predictions. Results go to the measurement database like any campaign, so the dashboard, the
predictor's next training run and ``explorer export`` all see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from sqlalchemy import select

from explorer.architectures import resolve
from explorer.db import Database, Measurement, resolve_device
from explorer.measure import CampaignSpec, ProtocolSettings, Transport, plan_campaign, run_campaign
from explorer.measure.campaign import DRIFT_CHECK
from explorer.remote import write_bundle
from explorer.search import SearchSetupError, load_latency_model, shortlist
from explorer.search.shortlist import Candidate
from search_spaces.base import ArchConfig


@dataclass(frozen=True)
class MeasuredLatency:
    arch_id: str
    median_ms: float
    ci_low_ms: float | None
    ci_high_ms: float | None
    detail: str
    provenance: str = "measured"


def describe_measurement(m: Measurement) -> str:
    """The protocol of a measurement in words, for provenance notes."""
    if m.provenance == "published":
        return f"published for {m.device}: {m.source or 'source not recorded'}"
    threads = "default threads" if m.threads is None else f"{m.threads} threads"
    when = m.ended_at.date().isoformat() if m.ended_at else "unknown date"
    return (f"measured on {m.device} with {m.backend}, batch {m.batch}, {threads}, "
            f"median of {m.n_samples} runs after {m.warmup} warm-up ({when})")


def measured_latencies(db: Database, device: str, arch_ids: Sequence[str],
                       provenances: Sequence[str] = ("measured",)) -> dict[str, MeasuredLatency]:
    """The newest successful measurement of each architecture on ``device``, per image, of the
    given provenances (a dashboard also shows ``published`` figures; verification does not)."""
    with db.session() as session:
        name = resolve_device(session, device).name
        rows = session.scalars(select(Measurement).where(
            Measurement.device == name, Measurement.arch_id.in_(list(arch_ids)), Measurement.status == "ok",
            Measurement.provenance.in_(list(provenances)), Measurement.median_ms.is_not(None),
        ).order_by(Measurement.id)).all()
        return {m.arch_id: MeasuredLatency(m.arch_id, m.median_ms, m.ci_low_ms, m.ci_high_ms, describe_measurement(m),
                                           m.provenance) for m in rows}


@dataclass(frozen=True)
class VerifiedRow:
    trial: int
    arch_id: str
    predicted_ms: float
    low_ms: float
    high_ms: float
    measured_ms: float | None
    meets_budget: bool | None
    within_interval: bool | None
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    study: str
    device: str
    budget_ms: float
    predictor: str
    rows: tuple[VerifiedRow, ...]

    @property
    def measured(self) -> list[VerifiedRow]:
        return [r for r in self.rows if r.measured_ms is not None]

    def to_dict(self) -> dict:
        measured = self.measured
        return {
            "study": self.study, "device": self.device, "budget_ms": self.budget_ms, "predictor": self.predictor,
            "measured": len(measured),
            "meeting_budget": sum(bool(r.meets_budget) for r in measured),
            "within_interval": sum(bool(r.within_interval) for r in measured),
            "mape_percent": (100 * sum(abs(r.predicted_ms / r.measured_ms - 1) for r in measured) / len(measured)
                             if measured else None),
            "rows": [asdict(r) for r in self.rows],
        }


def _predictions(db: Database, study: optuna.Study, device: str,
                 picks: Sequence[Candidate]) -> tuple[str, list[tuple[float, float, float]]]:
    """The study's predictions when verifying on its own device, the other device's otherwise."""
    with db.session() as session:
        same = resolve_device(session, device).name == resolve_device(session, study.user_attrs["device"]).name
    if same:
        return study.user_attrs["predictor"], [(c.evaluation.latency_ms, c.evaluation.low_ms, c.evaluation.high_ms)
                                               for c in picks]
    model = load_latency_model(db, device)
    median, low, high = model.predict([c.config for c in picks])
    return model.name, list(zip(median.tolist(), low.tolist(), high.tolist()))


def verify_shortlist(db: Database, study: optuna.Study, device: str, *, top: int,
                     transport: Transport | None = None, bundle_dir: str | Path | None = None,
                     protocol: ProtocolSettings = ProtocolSettings(), drift_check: tuple[str, ...] = DRIFT_CHECK,
                     show_progress: bool = False) -> VerifyReport:
    """Measure the ``top`` shortlist architectures on ``device`` (this host, or ``transport``:
    e.g. an SSH target) unless already measured there, and compare with the predictions.
    ``drift_check`` names presets measured before and after, as in every campaign.

    With ``bundle_dir``, nothing is measured here: the architectures still to measure are
    written there as a bundle (``runner.py`` + ONNX files) for a device without the tool; after
    ``explorer ingest``, the same call reports them."""
    picks = shortlist(study, top)
    if not picks:
        raise SearchSetupError(f"study {study.study_name!r} has no feasible architecture to verify")
    configs: list[ArchConfig] = [c.config for c in picks]
    spec = CampaignSpec(device=device, n=None, sampler="shortlist", name=f"verify-{study.study_name}",
                        protocol=protocol, drift_check=drift_check)
    samplers = {"shortlist": lambda request: configs}
    if bundle_dir is None:
        run_campaign(db, spec, transport=transport, samplers=samplers, show_progress=show_progress)
    else:
        plan = plan_campaign(db, spec, samplers)
        if plan.jobs:
            reference = resolve(*spec.reference) if spec.reference else None
            write_bundle(plan.jobs, bundle_dir, device=plan.device, reference=reference, settings=protocol)
    predictor, predicted = _predictions(db, study, device, picks)
    measured = measured_latencies(db, device, [c.evaluation.arch_id for c in picks])
    budget = study.user_attrs["budget_ms"]
    rows = []
    for candidate, (median, low, high) in zip(picks, predicted):
        m = measured.get(candidate.evaluation.arch_id)
        rows.append(VerifiedRow(
            candidate.trial, candidate.evaluation.arch_id, median, low, high,
            m.median_ms if m else None, (m.median_ms <= budget) if m else None,
            (low <= m.median_ms <= high) if m else None, m.detail if m else "not measured (failed, or waiting in a bundle)"))
    with db.session() as session:
        name = resolve_device(session, device).name
    return VerifyReport(study.study_name, name, budget, predictor, tuple(rows))

