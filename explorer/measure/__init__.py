"""On-device measurements: the protocol (``protocol``), runtimes (``backends``) and campaigns
(``campaign``). See the module docstrings for the extension points."""

from explorer.measure.backends import BACKENDS, Backend, BackendUnavailable, Prepared, get_backend
from explorer.measure.campaign import (
    REFERENCE,
    SAMPLERS,
    CampaignPlan,
    CampaignReport,
    CampaignSpec,
    Job,
    JobResult,
    LocalTransport,
    SampleRequest,
    Transport,
    plan_campaign,
    record_result,
    run_campaign,
)
from explorer.measure.protocol import ProtocolResult, ProtocolSettings, Stats, measure, summarize

__all__ = [
    "BACKENDS",
    "REFERENCE",
    "SAMPLERS",
    "Backend",
    "BackendUnavailable",
    "CampaignPlan",
    "CampaignReport",
    "CampaignSpec",
    "Job",
    "JobResult",
    "LocalTransport",
    "Prepared",
    "ProtocolResult",
    "ProtocolSettings",
    "SampleRequest",
    "Stats",
    "Transport",
    "get_backend",
    "measure",
    "plan_campaign",
    "record_result",
    "run_campaign",
    "summarize",
]
