"""Measurement protocol columns (CI of the median, reference-relative latency, backend settings,
campaign, flags) and the tables of the later pipeline steps: predictors, proxy scores, accuracies.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("ci_low_ms", sa.Float))
        batch.add_column(sa.Column("ci_high_ms", sa.Float))
        batch.add_column(sa.Column("relative_to_reference", sa.Float))
        batch.add_column(sa.Column("settings", sa.JSON, nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("campaign", sa.String(128)))
        batch.add_column(sa.Column("flags", sa.JSON, nullable=False, server_default=sa.text("'[]'")))
        batch.create_index("ix_measurements_campaign", ["campaign"])
    op.create_table(
        "predictors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device", sa.String(64), sa.ForeignKey("devices.name"), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("threads", sa.Integer),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("feature_version", sa.String(32), nullable=False),
        sa.Column("model_format", sa.String(32), nullable=False),
        sa.Column("model_blob", sa.Text, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("training_arch_ids", sa.JSON, nullable=False),
        sa.Column("library_versions", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
    )
    op.create_index("ix_predictors_device", "predictors", ["device"])
    op.create_table(
        "proxy_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arch_id", sa.String(16), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("score", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("resolution", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("arch_id", "score", "version", "resolution"),
    )
    op.create_index("ix_proxy_scores_arch_id", "proxy_scores", ["arch_id"])
    op.create_table(
        "accuracy_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arch_id", sa.String(16), sa.ForeignKey("architectures.arch_id"), nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("top1", sa.Float, nullable=False),
        sa.Column("epochs", sa.Integer),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("arch_id", "dataset", "source", "epochs"),
    )
    op.create_index("ix_accuracy_results_arch_id", "accuracy_results", ["arch_id"])


def downgrade() -> None:
    op.drop_table("accuracy_results")
    op.drop_table("proxy_scores")
    op.drop_table("predictors")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_index("ix_measurements_campaign")
        for column in ("flags", "campaign", "settings", "relative_to_reference", "ci_high_ms", "ci_low_ms"):
            batch.drop_column(column)
