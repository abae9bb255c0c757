"""Recomputable results kept as plain JSON files (never pickles) in the user's cache directory
(:func:`explorer.db.database.user_cache_dir`), under a key that names everything they depend on.

A file that cannot be read or written costs only a recomputation; writes are atomic, so a
concurrent reader sees the old file or the new one.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from explorer.db.database import user_cache_dir


def cache_path(kind: str, key: str) -> Path:
    """The file of ``key`` among the cached results of ``kind`` (a subdirectory)."""
    return user_cache_dir() / kind / f"{key}.json"


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        scratch.write_text(text)
        os.replace(scratch, path)
    except OSError:
        pass


@lru_cache(maxsize=8)
def source_digest(directory: Path) -> str:
    """SHA-256 of the Python sources under ``directory``: what a result computed by that code is
    keyed by, so that a changed implementation never reads an old result (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
