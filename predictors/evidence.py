"""The accuracy evidence by digest, and the fitted surrogate cached by it across processes.

The surrogate is refitted (tens of seconds on a busy host) whenever its evidence changes: the
ImageNet results it is fitted on (:func:`predictors.results.surrogate_training_results`) or the
surrogate itself (:data:`predictors.surrogate.SURROGATE_VERSION`) and the published reference it
is anchored in (:func:`predictors.reference.reference_digest`). :func:`evidence_digest_of`
names that evidence without fitting anything (:func:`predictors.results.evidence_digest` reads it
from a database), so a stored search can tell that its scores are stale; :func:`cached_fit` keeps
each fit as plain JSON (never a pickle) in the user's cache directory under that digest, so only
the first command after a change pays for the fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from predictors import surrogate as surrogate_module
from predictors.disk_cache import cache_path, read_text, write_text
from predictors.reference import reference_digest
from search_spaces.base import ArchConfig

CACHE_SUBDIR = "surrogates"
MEMO_SIZE = 8


def evidence_digest_of(arch_ids: Sequence[str], top1: Sequence[float], labels: Sequence[str]) -> str:
    """SHA-256 of the results (one mean top-1 % and label per architecture), the surrogate's
    version and the reference files: it changes whenever a fit would."""
    payload = json.dumps({"surrogate_version": surrogate_module.SURROGATE_VERSION, "reference": reference_digest(),
                          "results": [[a, float(t), label] for a, t, label in zip(arch_ids, top1, labels)]})
    return hashlib.sha256(payload.encode()).hexdigest()


_memo: dict[str, str] = {}  # cache key -> surrogate JSON, for the batches of one search


def _remember(key: str, text: str) -> None:
    if len(_memo) >= MEMO_SIZE:
        _memo.pop(next(iter(_memo)))
    _memo[key] = text


def _read(path: Path) -> str | None:
    text = read_text(path)
    try:
        if text is not None:
            surrogate_module.AccuracySurrogate.from_json(text)
        return text
    except (ValueError, KeyError, TypeError):  # written by another version: refit
        return None


def cached_fit(configs: Sequence[ArchConfig], top1: Sequence[float], variant: str | None, labels: Sequence[str],
               arch_ids: Sequence[str]) -> surrogate_module.AccuracySurrogate:
    """:func:`predictors.surrogate.fit_surrogate`, from the cache when the same evidence was
    fitted before (by any process); otherwise fitted now, with a line on stderr saying so."""
    key = hashlib.sha256(f"{evidence_digest_of(arch_ids, top1, labels)}|{variant}".encode()).hexdigest()[:32]
    path = cache_path(CACHE_SUBDIR, key)
    text = _memo.get(key) or _read(path)
    if text is None:
        Console(stderr=True).print(f"fitting the accuracy surrogate on {len(top1)} results (first use after a "
                                   "change) ...", highlight=False, soft_wrap=True)
        text = surrogate_module.fit_surrogate(configs, top1, variant, labels=labels).to_json()
        write_text(path, text)
    _remember(key, text)
    return surrogate_module.AccuracySurrogate.from_json(text)
