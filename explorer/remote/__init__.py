"""Measuring on devices that do not have the tool: bundles, their standalone runner, result
ingestion and the SSH transport.

``write_bundle`` exports models with a manifest and ``runner.py`` (the local measuring protocol
plus a small main; Python 3.9+, numpy and onnxruntime are all it needs); ``ingest_results``
stores the runner's JSON lines; ``SSHTransport`` is a campaign transport that does both over
SSH and resumes after a dropped connection.
"""

from explorer.remote.bundle import BundleError, BundleModel, Manifest, render_runner, write_bundle
from explorer.remote.ingest import IngestReport, LineError, ingest_results, parse_result
from explorer.remote.ssh import ConnectionLost, RemoteError, SSHRunner, SSHTarget, SSHTransport

__all__ = [
    "BundleError",
    "BundleModel",
    "ConnectionLost",
    "IngestReport",
    "LineError",
    "Manifest",
    "RemoteError",
    "SSHRunner",
    "SSHTarget",
    "SSHTransport",
    "ingest_results",
    "parse_result",
    "render_runner",
    "write_bundle",
]
