"""What ``explorer export`` exports: architectures from a study's trials or shortlist, from
architecture ids (the database's architectures table, else the study) and named presets, each
with every latency known for it and where that number comes from. Any family of
:data:`explorer.export.EXPORT_FAMILIES` exports; an FMViT architecture can be switched to its
training or inference form."""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass

import optuna
from sqlalchemy import select

from explorer.architectures import config_from_dict, name_of, resolve
from explorer.db import Architecture, Database, Measurement
from explorer.errors import UserError
from explorer.export import (
    ExportItem,
    LatencyRecord,
    export_family,
    inference_form,
    published_latencies,
    published_top1,
)
from explorer.search import load_latency_model, load_study, shortlist
from explorer.search.space import trial_config
from explorer.search.study import Evaluation
from explorer.verify import describe_measurement
from search_spaces.base import ArchConfig
from search_spaces.fmvit import FMViTConfig
from search_spaces.fmvit.rules import FORMS


def _exportable(config: ArchConfig, what: str) -> ArchConfig:
    try:
        export_family(config.space)
    except UserError as err:
        raise UserError(f"{what}: {err}") from None
    return config


def measured_records(db: Database, arch_id: str) -> list[LatencyRecord]:
    """The newest successful measurement of ``arch_id`` per device and setup."""
    with db.session() as session:
        rows = session.scalars(select(Measurement).where(
            Measurement.arch_id == arch_id, Measurement.status == "ok", Measurement.provenance == "measured",
            Measurement.median_ms.is_not(None)).order_by(Measurement.id)).all()
        newest = {(m.device, m.backend, m.batch, m.threads): m for m in rows}
        return [LatencyRecord(m.device, m.median_ms, "measured", describe_measurement(m), m.ci_low_ms, m.ci_high_ms)
                for m in newest.values()]


def predicted_records(db: Database, config: ArchConfig, devices: Sequence[str]) -> list[LatencyRecord]:
    records = []
    for device in dict.fromkeys(devices):
        model = load_latency_model(db, device)
        median, low, high = (float(v[0]) for v in model.predict([config]))
        records.append(LatencyRecord(model.device, median, "predicted",
                                     f"predicted by {model.name}, ~90 % interval", low, high))
    return records


@dataclass(frozen=True)
class _Spec:
    label: str
    config: ArchConfig
    source: str
    scores: tuple[tuple[str, float], ...] = ()
    predicted: tuple[LatencyRecord, ...] = ()


def _trial_spec(study: optuna.Study, number: int) -> _Spec:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials) or trials[number].state != optuna.trial.TrialState.COMPLETE:
        done = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        raise UserError(f"invalid --trial {number} for study {study.study_name!r}; allowed: a completed trial "
                        f"number, {min(done, default=0)} to {max(done, default=0)}")
    trial, attrs = trials[number], study.user_attrs
    evaluation = Evaluation.from_attrs(trial.user_attrs)
    predicted = LatencyRecord(attrs["device"], evaluation.latency_ms, "predicted",
                              f"predicted by {attrs['predictor']} during the search, ~90 % interval",
                              evaluation.low_ms, evaluation.high_ms)
    return _Spec(f"{study.study_name}-trial{number}",
                 _exportable(trial_config(study, trial), f"trial {number} of study {study.study_name}"),
                 f"trial {number} of study {study.study_name}", ((attrs["objective_label"], evaluation.score),),
                 (predicted,))


def _arch_spec(db: Database, study: optuna.Study | None, key: str) -> _Spec:
    with db.session() as session:
        row = session.get(Architecture, key)
        if row is not None:
            config = _exportable(config_from_dict(dict(row.config_json)), f"architecture {key}")
            return _Spec(f"{config.space}-{key}", config, f"architecture {key} of the database")
    for trial in study.get_trials(deepcopy=False) if study is not None else ():
        if trial.user_attrs.get("arch_id") == key and trial.state == optuna.trial.TrialState.COMPLETE:
            spec = _trial_spec(study, trial.number)
            return dataclasses.replace(spec, label=f"{spec.config.space}-{key}")
    where = " nor in study " + repr(study.study_name) if study is not None else " (pass --study to look there too)"
    raise UserError(f"unknown architecture id {key!r}: not in the architectures table of {db.url}{where}")


def _in_form(spec: _Spec, form: str) -> _Spec:
    """``spec`` in the FMViT ``form``; its label becomes the preset's name, or gets ``-<form>``."""
    if form not in FORMS:
        raise UserError(f"invalid --form {form!r}; allowed: {', '.join(FORMS)}")
    if not isinstance(spec.config, FMViTConfig):
        raise UserError(f"--form applies to FMViT architectures only; {spec.label} is a {spec.config.space!r} "
                        f"architecture (allowed spaces: {FMViTConfig.space})")
    if spec.config.form == form:
        return spec
    config = dataclasses.replace(spec.config, form=form)
    label = name_of(config) or f"{spec.label}-{form}"
    return dataclasses.replace(spec, label=label, config=config, source=f"{spec.source}, {form} form")


def export_items(db: Database, storage_url: str | None, *, study: str | optuna.Study | None = None,
                 trials: Sequence[int] = (), shortlist_top: int | None = None, arch_ids: Sequence[str] = (),
                 names: Sequence[str] = (), devices: Sequence[str] = (), form: str | None = None) -> list[ExportItem]:
    """Resolve every requested architecture (bad requests raise before anything is written), with
    its measured latencies, the search's prediction, predictions on ``devices`` and published figures.

    ``study``: a stored study's name in ``storage_url``, or the study already loaded.
    ``form`` (FMViT only): ``train`` exports the training form, ``inference`` the fused form;
    ``None`` keeps each architecture's own form (presets and search trials are the inference form).
    """
    loaded = load_study(storage_url, study) if isinstance(study, str) else study
    if (trials or shortlist_top) and loaded is None:
        raise UserError("--trial and --shortlist need --study NAME")
    specs = []
    if loaded is not None:
        specs += [_trial_spec(loaded, n) for n in trials]
        if shortlist_top:
            specs += [_trial_spec(loaded, c.trial) for c in shortlist(loaded, shortlist_top)]
    specs += [_arch_spec(db, loaded, key) for key in arch_ids]
    specs += [_Spec(name, _exportable(resolve(name), name), f"named architecture {name}") for name in names]
    if form is not None:
        specs = [_in_form(spec, form) for spec in specs]
    if not specs:
        raise UserError("nothing to export: give PRESET names, --arch ID or --study NAME with --trial N or --shortlist")
    return [_item(db, spec, devices) for spec in specs]


def _item(db: Database, spec: _Spec, devices: Sequence[str]) -> ExportItem:
    """The export of ``spec`` with every latency known for its deployed network (an FMViT training
    form is measured, predicted and published as its fused inference form)."""
    deployed = inference_form(spec.config)
    latencies = (*measured_records(db, deployed.arch_id), *spec.predicted, *predicted_records(db, deployed, devices),
                 *published_latencies(deployed))
    return ExportItem(spec.label, spec.config, spec.source, latencies, (*spec.scores, *published_top1(deployed)))
