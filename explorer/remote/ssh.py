"""Run a bundle on a machine reachable over SSH, streaming its result lines back.

The remote side needs only what the bundle's runner needs (Python 3.9+, numpy, onnxruntime).
Files go over SFTP into ``~/.explorer/bundles/<bundle id>/`` (``SSHTarget.remote_dir``); each is
uploaded under a temporary name and renamed, so an upload cut by a dropped link never looks
complete. The runner appends
every finished measurement to ``~/.explorer/results/<measurement key>.jsonl`` (one file per
device and settings) and echoes it on stdout. After a dropped connection, running again starts
a runner that waits for the one left behind (if still busy), echoes what the file holds, so
results measured while the link was down are collected too, and measures the rest.
"""

from __future__ import annotations

import posixpath
import select
import shlex
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from explorer.db import Device
from explorer.errors import UserError
from explorer.measure.campaign import Job, JobResult, Transport
from explorer.measure.protocol import ProtocolSettings
from explorer.remote.bundle import BACKEND, MODELS_DIR, RUNNER_NAME, Manifest, write_bundle
from explorer.remote.ingest import LineError, parse_result
from search_spaces.base import ArchConfig

STDERR_TAIL = 20
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
READ_CHUNK = 1 << 16
POLL_S = 0.5
KEEPALIVE_S = 5


class RemoteError(UserError, RuntimeError):
    """The remote side refused or failed (authentication, missing packages, runner error)."""


class ConnectionLost(RemoteError):
    """The link dropped mid-run; running again resumes where it stopped."""


@dataclass(frozen=True)
class SSHTarget:
    """Where to run: ``user@host``, port, key file, the remote Python interpreter and the remote
    working directory (relative to the remote home unless absolute)."""

    host: str
    user: str | None = None
    port: int = 22
    identity: Path | None = None
    python: str = "python3"
    known_hosts: Path = DEFAULT_KNOWN_HOSTS
    remote_dir: str = ".explorer"
    connect_timeout_s: float = 15.0

    @classmethod
    def parse(cls, spec: str, **options) -> SSHTarget:
        """``host`` or ``user@host``; ``options`` are the remaining fields."""
        user, _, host = spec.rpartition("@")
        if not host or any(c.isspace() for c in spec):
            raise ValueError(f"invalid SSH target {spec!r}; expected host or user@host")
        return cls(host=host, user=user or None, **options)

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def _connect(target: SSHTarget) -> paramiko.SSHClient:
    """An authenticated client. Unknown host keys are accepted and remembered (OpenSSH's
    ``accept-new``); a changed key is refused, as it would be by ``ssh``. A given identity file
    is used instead of the ``~/.ssh`` keys (the agent is still asked)."""
    known_hosts = target.known_hosts.expanduser()
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    known_hosts.touch(exist_ok=True)
    pkey = None
    if target.identity is not None:
        path = target.identity.expanduser()
        try:
            pkey = paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException:
            raise RemoteError(f"identity file {str(path)!r} is encrypted; add it to ssh-agent "
                              "(ssh-add) and leave out --identity") from None
        except (OSError, paramiko.SSHException, ValueError) as err:
            raise RemoteError(f"cannot read identity file {str(path)!r}: {err}") from None
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(target.host, port=target.port, username=target.user,
                       pkey=pkey, look_for_keys=pkey is None,
                       timeout=target.connect_timeout_s, banner_timeout=target.connect_timeout_s,
                       auth_timeout=target.connect_timeout_s)
    except paramiko.BadHostKeyException as err:
        raise RemoteError(f"host key of {target} changed (see {known_hosts}): {err}") from None
    except paramiko.AuthenticationException as err:
        raise RemoteError(f"authentication to {target} failed: {err}") from None
    except (OSError, paramiko.SSHException) as err:
        raise ConnectionLost(f"cannot connect to {target}: {err}") from None
    client.get_transport().set_keepalive(KEEPALIVE_S)
    return client


class SSHRunner:
    """A connection to ``target`` that pushes bundles, runs them and yields their result lines.

    A context manager: entering connects and checks the remote Python, so a wrong host, key or
    interpreter fails before any model is exported.
    """

    def __init__(self, target: SSHTarget, on_progress: Callable[[str], None] = lambda text: None):
        self.target = target
        self.on_progress = on_progress
        self._client: paramiko.SSHClient | None = None

    def __enter__(self) -> SSHRunner:
        self._client = _connect(self.target)
        try:
            self._guarded(self._check_python, self._client)
        except BaseException:
            self._client.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def lines(self, bundle_dir: str | Path, manifest: Manifest) -> Iterator[str]:
        """Push the bundle, run it and yield its result lines as they arrive: first those the
        remote results file already holds (measured by an earlier, perhaps interrupted run),
        then the new ones. Raises :class:`ConnectionLost` on a dropped link (run again to
        resume) and :class:`RemoteError` when the runner fails."""
        if self._client is None:
            raise RuntimeError("use SSHRunner as a context manager: with SSHRunner(target) as runner: ...")
        client = self._client
        remote_dir = posixpath.join(self.target.remote_dir, "bundles", manifest.bundle_id)
        results = posixpath.join(self.target.remote_dir, "results", f"{manifest.measurement_key}.jsonl")
        self.on_progress(f"uploading bundle {manifest.bundle_id} to {self.target}")
        self._guarded(self._push, client, Path(bundle_dir), remote_dir, posixpath.dirname(results))
        relative = posixpath.relpath(results, remote_dir)
        command = (f"cd {shlex.quote(remote_dir)} && exec {shlex.quote(self.target.python)} "
                   f"{RUNNER_NAME} . --output {shlex.quote(relative)}")
        stream = self._stream(client, command)
        while True:
            line = self._guarded(next, stream, None)
            if line is None:
                return
            yield line

    def _guarded(self, function, *args):
        """Call ``function``, turning a broken link into :class:`ConnectionLost`."""
        try:
            return function(*args)
        except (OSError, EOFError, paramiko.SSHException) as err:
            raise ConnectionLost(f"connection to {self.target} lost: {err or type(err).__name__}; "
                                 "run again to resume") from None

    def _check_python(self, client: paramiko.SSHClient) -> None:
        probe = "import sys, numpy, onnxruntime; assert sys.version_info >= (3, 9)"
        command = f"{shlex.quote(self.target.python)} -c {shlex.quote(probe)}"
        _, stdout, stderr = client.exec_command(command, timeout=120)
        if stdout.channel.recv_exit_status() != 0:
            raise RemoteError(
                f"remote Python {self.target.python!r} on {self.target} cannot run the bundle "
                f"(needs Python 3.9+, numpy and onnxruntime: pip install numpy onnxruntime; "
                f"or pass --remote-python): {stderr.read().decode(errors='replace').strip()}")

    @staticmethod
    def _push(client: paramiko.SSHClient, bundle_dir: Path, remote_dir: str, results_dir: str) -> None:
        with client.open_sftp() as sftp:
            _makedirs(sftp, results_dir)
            for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
                destination = posixpath.join(remote_dir, path.relative_to(bundle_dir).as_posix())
                _makedirs(sftp, posixpath.dirname(destination))
                # model files are named by their hash: one of the right size is the right one
                if path.parent.name == MODELS_DIR and _remote_size(sftp, destination) == path.stat().st_size:
                    continue
                partial = destination + ".partial"
                sftp.put(str(path), partial)
                sftp.posix_rename(partial, destination)

    def _stream(self, client: paramiko.SSHClient, command: str) -> Iterator[str]:
        channel = client.get_transport().open_session()
        channel.exec_command(command)
        out, err = b"", b""
        tail: list[str] = []
        while True:
            select.select([channel], [], [], POLL_S)
            got_data = False
            if channel.recv_ready():
                lines = (out + channel.recv(READ_CHUNK)).split(b"\n")
                out = lines.pop()
                yield from (line.decode(errors="replace") for line in lines)
                got_data = True
            if channel.recv_stderr_ready():
                lines = (err + channel.recv_stderr(READ_CHUNK)).split(b"\n")
                err = lines.pop()
                for line in lines:
                    text = line.decode(errors="replace")
                    tail[:] = (tail + [text])[-STDERR_TAIL:]
                    self.on_progress(text)
                got_data = True
            if not got_data and channel.exit_status_ready():
                break
        status = channel.recv_exit_status()
        if status == -1 or not client.get_transport().is_active():
            raise ConnectionLost(f"connection to {self.target} lost while measuring "
                                 "(or the runner was killed); run again to resume")
        if status != 0:
            raise RemoteError(f"remote runner on {self.target} exited with {status}:\n" + "\n".join(tail))


class SSHTransport(Transport):
    """A campaign transport measuring on a host reachable over SSH, through a bundle.

    ``device`` (name or alias) is the profile the host is measured as. Results already measured
    there under the same settings, by an earlier interrupted run, are collected instead of
    measured again.
    """

    def __init__(self, target: SSHTarget, device: str,
                 on_progress: Callable[[str], None] = lambda text: None):
        self.target = target
        self.device = device
        self.on_progress = on_progress

    def check(self, device: Device, backend: str) -> None:
        """Accept the profile this transport was made for (adopting its canonical name) and the
        runner's backend."""
        if self.device not in (device.name, *device.aliases):
            raise UserError(f"this SSH transport measures device {self.device!r}, not {device.name!r}")
        if backend != BACKEND:
            raise UserError(f"the SSH transport measures with backend {BACKEND!r} (onnxruntime CPU); "
                            f"device {device.name!r} uses {backend!r}: pass --backend {BACKEND}")
        self.device = device.name

    def run(self, jobs: Sequence[Job], protocol: ProtocolSettings,
            reference: ArchConfig | None) -> Iterator[JobResult]:
        if not jobs:
            return
        with SSHRunner(self.target, self.on_progress) as runner, \
                tempfile.TemporaryDirectory(prefix="explorer-bundle-") as tmp:
            self.on_progress(f"exporting {len(jobs)} models for {self.target}")
            manifest = write_bundle(jobs, tmp, device=self.device, reference=reference, settings=protocol)
            pending = {entry.key: job for entry, job in zip(manifest.models, jobs)}
            for line in runner.lines(tmp, manifest):
                outcome = self._outcome(line, manifest, pending)
                if outcome is not None:
                    yield outcome

    def _outcome(self, line: str, manifest: Manifest, pending: dict[str, Job]) -> JobResult | None:
        """The result of a pending job, or None for a line of another job or a bad line."""
        try:
            parsed = parse_result(line)
        except LineError as err:
            self.on_progress(f"ignored an invalid result line: {err}")
            return None
        if (parsed.measurement_key != manifest.measurement_key or parsed.key not in pending
                or parsed.device != self.device):
            return None
        return replace(parsed.outcome, job=pending.pop(parsed.key))


def _remote_size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    current = "/" if path.startswith("/") else ""
    for part in filter(None, path.split("/")):
        current = posixpath.join(current, part)
        if _remote_size(sftp, current) is None:
            sftp.mkdir(current)
