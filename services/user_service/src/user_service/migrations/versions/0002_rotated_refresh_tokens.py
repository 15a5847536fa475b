"""rotated refresh tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rotated_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_rotated_refresh_tokens_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_rotated_refresh_tokens")),
    )
    op.create_index(
        op.f("ix_rotated_refresh_tokens_session_id"), "rotated_refresh_tokens", ["session_id"]
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_rotated_refresh_tokens_session_id"), table_name="rotated_refresh_tokens"
    )
    op.drop_table("rotated_refresh_tokens")
