"""Options and output helpers shared by the command modules.

A command module registers each command with ``subparsers.add_parser(name, help=...,
declare=fn)``: ``fn(parser)`` adds the command's options when that command is parsed or its help
is printed (:class:`DeferredParser`), so a module may import what its options need (backend
names, sampler names) inside ``fn`` and what its commands run inside their handlers, and
``explorer --help`` or a light command imports neither.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from explorer.remote import SSHTransport

# Piped output is not wrapped at 80 columns: tables stay readable in files and CI logs.
console = Console() if sys.stdout.isatty() else Console(width=200)
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=200)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None,
                        help="SQLAlchemy URL or path of an existing measurement database (default: $EXPLORER_DB, "
                             "else your own database, ~/.local/share/explorer/measurements.db or "
                             "$EXPLORER_HOME/measurements.db, made from the shipped one on first use)")
    parser.add_argument("--create-db", action="store_true",
                        help="create an empty database at --db (or $EXPLORER_DB) if there is none")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def fail(message: str, code: int = 2) -> int:
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # one line, however long
    return code


class DeferredParser(argparse.ArgumentParser):
    """An argument parser whose options are declared by ``declare(parser)`` on first use (parsing,
    usage or help), so that declaring them costs nothing for the other commands."""

    def __init__(self, *args: Any, declare: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._declare = declare

    def _declared(self) -> None:
        if self._declare is not None:
            declare, self._declare = self._declare, None
            declare(self)

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._declared()
        parsed, rest = super().parse_known_args(args, namespace)
        if hasattr(parsed, "create_db") and (parsed.db or os.environ.get("EXPLORER_DB")):
            from explorer.db.database import require_database  # a mistyped path is an error, not a new database

            require_database(parsed.db, parsed.create_db)
        return parsed, rest

    def format_usage(self) -> str:
        self._declared()
        return super().format_usage()

    def format_help(self) -> str:
        self._declared()
        return super().format_help()


def _ssh_spec(value: str) -> str:
    from explorer.remote import SSHTarget

    try:
        SSHTarget.parse(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def add_ssh_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that send a command's campaign to a host reachable over SSH (``measure``, ``study``)."""
    group = parser.add_argument_group("remote device over SSH")
    group.add_argument("--ssh", metavar="USER@HOST", type=_ssh_spec,
                       help="measure on this host through a bundle (needs Python 3.9+, numpy, onnxruntime there)")
    group.add_argument("--port", type=int, default=22, help="SSH port (default 22)")
    group.add_argument("--identity", type=Path, help="private key file (default: ssh agent and ~/.ssh keys)")
    group.add_argument("--remote-python", default="python3", help="Python on the remote host (default python3)")
    group.add_argument("--known-hosts", type=Path, default=Path("~/.ssh/known_hosts"),
                       help="known-hosts file; a new host's key is added, a changed key is refused")
    group.add_argument("--remote-dir", default=".explorer",
                       help="remote directory for bundles and results (default ~/.explorer)")


def ssh_transport(args: argparse.Namespace) -> SSHTransport | None:
    """The SSH transport the options ask for, or None to measure on this host."""
    if not getattr(args, "ssh", None):
        return None
    from explorer.remote import SSHTarget, SSHTransport

    target = SSHTarget.parse(args.ssh, port=args.port, identity=args.identity, python=args.remote_python,
                             known_hosts=args.known_hosts, remote_dir=args.remote_dir)
    return SSHTransport(target, args.device,
                        on_progress=lambda text: errors.print(text, highlight=False, markup=False))
