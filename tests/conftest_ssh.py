"""A real OpenSSH server on 127.0.0.1 for the SSH transport tests (loaded via ``pytest_plugins``).

The server runs ``sshd -D`` with a temporary host key and a temporary authorized client key, so
tests exercise the same code path as a Raspberry Pi on a desk. Tests that use it are marked
``ssh`` and skipped only when sshd is not installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
import psutil
import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SSHServer:
    host: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    pid: int

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}"

    def drop_connections(self) -> int:
        """Kill the per-connection sshd processes: the client sees the link die mid-session
        while the remote commands keep running, as on a real network drop."""
        sessions = psutil.Process(self.pid).children(recursive=False)
        for session in sessions:
            session.send_signal(signal.SIGKILL)
        return len(sessions)


def _sshd_binary() -> str | None:
    found = shutil.which("sshd")
    return found or next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_key(path: Path) -> paramiko.RSAKey:
    key = paramiko.RSAKey.generate(2048)
    key.write_private_key_file(str(path))
    path.chmod(0o600)
    return key


def _wait_for_port(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {process.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on port {port} within {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory):
    binary = _sshd_binary()
    if binary is None:
        pytest.skip("OpenSSH server (sshd) is not installed")
    if os.geteuid() == 0:
        # sshd running as root insists on its privilege-separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    tmp = tmp_path_factory.mktemp("sshd")
    host_key, client_key = tmp / "host_rsa", tmp / "client_rsa"
    _write_key(host_key)
    client = _write_key(client_key)
    (tmp / "authorized_keys").write_text(f"{client.get_name()} {client.get_base64()}\n")
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        f"PidFile {tmp / 'sshd.pid'}",
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
    ]))
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(process, port)
        yield SSHServer("127.0.0.1", port, getpass.getuser(), client_key, tmp / "known_hosts",
                        process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
