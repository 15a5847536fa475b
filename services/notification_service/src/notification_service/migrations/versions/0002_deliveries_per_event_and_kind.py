"""An event may make one delivery of each kind (an email change mails two addresses).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Make ``deliveries`` unique per event and kind instead of per event."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_event_id", type_="unique")
        batch.create_unique_constraint(op.f("uq_deliveries_event_id_kind"), ["event_id", "kind"])


def downgrade() -> None:
    """Make ``deliveries`` unique per event again.

    Of an event's deliveries, the one whose kind sorts first stays (an email change's link
    mail; its notice to the previous address goes), or the old constraint could not be made.
    """
    op.execute(
        sa.text(
            "DELETE FROM deliveries WHERE EXISTS (SELECT 1 FROM deliveries AS earlier"
            " WHERE earlier.event_id = deliveries.event_id AND earlier.kind < deliveries.kind)"
        )
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_event_id_kind", type_="unique")
        batch.create_unique_constraint(op.f("uq_deliveries_event_id"), ["event_id"])
