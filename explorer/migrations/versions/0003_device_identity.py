"""Device identity: a device profile records the host it belongs to (``host``) and what a
thread-count probe found (``probe``). Rows stored as ``local`` before hosts had an identity move
to a named profile of the host that measured them (CPU and cores from their fingerprints), and
the rows measured while the load average exceeded the host's cores get the ``busy`` flag, which
keeps them readable but out of predictor training. ``local`` is left unbound: the next host that
measures under that name claims it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import re
from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEGACY_SUFFIX = "legacy"


def _json(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "host"


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("host", sa.JSON))
        batch.add_column(sa.Column("probe", sa.JSON))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, host, flags FROM measurements "
                                "WHERE device = 'local' AND provenance = 'measured'")).all()
    if not rows:
        return
    hosts = [_json(r.host) or {} for r in rows]
    (cpu, cores), _ = Counter((h.get("cpu") or "unknown cpu", h.get("cores")) for h in hosts).most_common(1)[0]
    local = bind.execute(sa.text("SELECT backend, runtime FROM devices WHERE name = 'local'")).one()
    name = f"{_slug(cpu)}-{cores or 0}c-{local.backend}-{LEGACY_SUFFIX}"[:64]
    busy = sum(1 for h in hosts if (h.get("load_before") or {}).get("loadavg")
               and cores and h["load_before"]["loadavg"][0] > cores)
    bind.execute(sa.text(
        "INSERT INTO devices (name, aliases, description, hardware, runtime, backend, default_threads, "
        "default_batch, provenance, source, host) VALUES (:name, :aliases, :description, :hardware, :runtime, "
        ":backend, NULL, 1, 'measured', NULL, :host)"),
        {"name": name, "aliases": "[]", "runtime": local.runtime, "backend": local.backend,
         "description": (f"measurements stored as 'local' before device profiles had a host identity "
                         f"({len(rows)} rows; {busy} measured with a load average above the {cores} cores, "
                         "flagged busy and left out of predictor training)"),
         "hardware": f"{cpu}, {cores} cores",
         "host": json.dumps({"cpu": cpu, "cores": cores, "host_id": None})})
    for row, host in zip(rows, hosts):
        loadavg = (host.get("load_before") or {}).get("loadavg")
        if loadavg and cores and loadavg[0] > cores:
            flags = _json(row.flags) or []
            if "busy" not in flags:
                bind.execute(sa.text("UPDATE measurements SET flags = :flags WHERE id = :id"),
                             {"flags": json.dumps([*flags, "busy"]), "id": row.id})
    for table in ("measurements", "predictors"):
        bind.execute(sa.text(f"UPDATE {table} SET device = :name WHERE device = 'local'"), {"name": name})
    bind.execute(sa.text("UPDATE devices SET default_threads = 1 WHERE name = 'local'"))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("probe")
        batch.drop_column("host")
