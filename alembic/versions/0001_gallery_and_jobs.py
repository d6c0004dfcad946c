"""Gallery entries and evaluation jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gallery_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("identity", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=256), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("image_format", sa.String(length=8), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gallery_entries"),
        sa.UniqueConstraint("sha256", name="uq_gallery_entries_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gallery_entries_identity_id", "gallery_entries", ["identity", "id"])
    op.create_index("ix_gallery_entries_camera_id", "gallery_entries", ["camera", "id"])
    op.create_index("ix_gallery_entries_model_version", "gallery_entries", ["model_version"])

    op.create_table(
        "evaluation_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_evaluation_jobs"),
    )
    op.create_index("ix_evaluation_jobs_status", "evaluation_jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_jobs_status", table_name="evaluation_jobs")
    op.drop_table("evaluation_jobs")
    op.drop_index("ix_gallery_entries_model_version", table_name="gallery_entries")
    op.drop_index("ix_gallery_entries_camera_id", table_name="gallery_entries")
    op.drop_index("ix_gallery_entries_identity_id", table_name="gallery_entries")
    op.drop_table("gallery_entries")
