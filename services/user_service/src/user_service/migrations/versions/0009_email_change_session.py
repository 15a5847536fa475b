"""An email-change link remembers the session that asked for it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``email_tokens.session_id``: the session kept when the change is confirmed."""
    with op.batch_alter_table("email_tokens") as batch:
        batch.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    """Drop ``email_tokens.session_id``."""
    with op.batch_alter_table("email_tokens") as batch:
        batch.drop_column("session_id")
