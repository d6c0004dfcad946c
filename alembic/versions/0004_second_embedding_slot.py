"""A second embedding slot per entry, so two model versions can serve side by side during
a zero-downtime upgrade; replicas record a clean stop.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gallery_entries") as batch:
        batch.add_column(sa.Column("alt_embedding", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("alt_model_version", sa.String(length=64), nullable=True))
        batch.create_index("ix_gallery_entries_alt_model_version", ["alt_model_version"])
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_column("stopped_at")
    with op.batch_alter_table("gallery_entries") as batch:
        batch.drop_index("ix_gallery_entries_alt_model_version")
        batch.drop_column("alt_model_version")
        batch.drop_column("alt_embedding")
