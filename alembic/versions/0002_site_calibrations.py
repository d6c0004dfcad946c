"""Open-set calibrations fitted on the live gallery, one per model version; the index that
covers counting the identities a query's filters leave.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_calibrations",
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_version", name="pk_site_calibrations"),
    )
    op.create_index(
        "ix_gallery_entries_model_version_identity_camera_captured_at",
        "gallery_entries",
        ["model_version", "identity", "camera", "captured_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_gallery_entries_model_version_identity_camera_captured_at",
        table_name="gallery_entries",
    )
    op.drop_table("site_calibrations")
