"""Which host runs this command: a stable random id per user and machine, so that ``local``
means this host and measurements of two hosts never mix under one device profile.

The id lives in ``$EXPLORER_HOST_ID`` if set, else in ``$XDG_CONFIG_HOME/explorer/host-id``
(``~/.config/explorer/host-id``), made on first use. CPU model and core count are not an
identity: two rented machines of one type report the same ones.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

HOST_ID_ENV = "EXPLORER_HOST_ID"


def host_id_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "explorer" / "host-id"


def host_id() -> str:
    """This host's id (created and stored on first use)."""
    given = os.environ.get(HOST_ID_ENV)
    if given:
        return given.strip()
    path = host_id_path()
    try:
        stored = path.read_text().strip()
        if stored:
            return stored
    except OSError:
        pass
    new = uuid.uuid4().hex
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x") as handle:
            handle.write(new + "\n")
    except FileExistsError:
        return path.read_text().strip() or new
    except OSError:
        pass  # a read-only home: the id holds for this process only
    return new
