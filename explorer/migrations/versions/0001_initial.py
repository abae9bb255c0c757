"""Initial schema: devices, architectures and measurements with their raw samples.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("aliases", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("hardware", sa.Text, nullable=False),
        sa.Column("runtime", sa.String(128), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("default_threads", sa.Integer),
        sa.Column("default_batch", sa.Integer, nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
    )
    op.create_table(
        "architectures",
        sa.Column("arch_id", sa.String(16), primary_key=True),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("config_json", sa.JSON, nullable=False),
        sa.Column("resolution", sa.Integer, nullable=False),
        sa.Column("params", sa.BigInteger),
        sa.Column("macs", sa.BigInteger),
        sa.Column("op_summary", sa.JSON),
        sa.Column("exact", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arch_id", sa.String(16), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("device", sa.String(64), sa.ForeignKey("devices.name"), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("threads", sa.Integer),
        sa.Column("resolution", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("median_ms", sa.Float),
        sa.Column("mean_ms", sa.Float),
        sa.Column("std_ms", sa.Float),
        sa.Column("p5_ms", sa.Float),
        sa.Column("p95_ms", sa.Float),
        sa.Column("cv", sa.Float),
        sa.Column("samples", sa.JSON, nullable=False),
        sa.Column("n_samples", sa.Integer, nullable=False),
        sa.Column("warmup", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("host", sa.JSON, nullable=False),
        sa.Column("model_sha256", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_measurements_arch_id", "measurements", ["arch_id"])
    op.create_index("ix_measurements_key", "measurements",
                    ["device", "backend", "batch", "threads", "arch_id"])


def downgrade() -> None:
    op.drop_table("measurements")
    op.drop_table("architectures")
    op.drop_table("devices")
