"""OAuth clients; sessions remember the client they were opened by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `oauth_clients` and give each session the client it was opened by."""
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("revocation_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("revocation_id", name=op.f("uq_oauth_clients_revocation_id")),
    )
    op.create_index("ix_oauth_clients_disabled_at", "oauth_clients", ["disabled_at"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop the sessions' client column and `oauth_clients`."""
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("client_id")
    op.drop_index("ix_oauth_clients_disabled_at", table_name="oauth_clients")
    op.drop_table("oauth_clients")
