"""The gallery's change log (backfilled with every existing entry), the replicas that
follow it, and the replica that runs each job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gallery_changes",
        sa.Column("seq", _ID, autoincrement=True, nullable=False),
        sa.Column("entry_id", _ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_gallery_changes"),
        sqlite_autoincrement=True,
    )
    # Existing galleries: one change per entry, so a replica that starts from an empty
    # index and replays the whole log holds every row.
    op.execute(
        "INSERT INTO gallery_changes (entry_id, created_at) "
        "SELECT id, CURRENT_TIMESTAMP FROM gallery_entries ORDER BY id"
    )
    op.create_table(
        "replicas",
        sa.Column("replica_id", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_seq", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name="pk_replicas"),
    )
    with op.batch_alter_table("evaluation_jobs") as batch:
        batch.add_column(sa.Column("replica_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evaluation_jobs") as batch:
        batch.drop_column("replica_id")
    op.drop_table("replicas")
    op.drop_table("gallery_changes")
