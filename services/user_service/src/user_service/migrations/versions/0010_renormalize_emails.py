"""Stored addresses take the canonical form, so the string a user registered with signs in.

Rows written before ``user_service.addresses`` existed were normalised by email-validator and
lower-cased only; an address holding compatibility characters (full-width letters, a
decomposed accent, an ``xn--`` domain) is stored in a form sign-in no longer produces.

- ``users.email`` is rewritten to its canonical form (``version`` bumped, ``updated_at``
  set, as any write through the model does) unless another row holds that form, or two or
  more rows would: such a **collision** is left as it is and logged as a warning
  (``migrate.email_collision``, with the users' ids, never their addresses) for an operator
  to resolve. A stored address the policy now refuses (a mixed-script look-alike) is left as
  it is and logged (``migrate.email_invalid``).
- ``email_tokens.email`` follows its user: it is rewritten where it held the user's old
  address, so a pending link keeps working exactly when it did before.
- ``email_tokens.new_email`` of an unused email-change link takes the canonical form;
  a link to an address the policy refuses is discarded (``migrate.email_change_discarded``).

Rows are read in batches, keyset by primary key. The canonical form of the rows that change
is held in memory until every row has been read (collisions span batches); unchanged rows
are not kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.exc import IntegrityError

# The service's own function rather than a copy frozen here: the rows must take exactly the
# form sign-in looks up. The canonical form is a stable policy (docs/architecture.md, "Email
# addresses"); a change to it changes what every stored address should be, so it comes with
# a migration of its own that re-normalises the rows to the new form.
from user_service.addresses import InvalidEmailAddress, canonical_email

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("user_service.migrations")

#: Rows read per query: enough to keep round trips few, small enough for any table.
BATCH_SIZE = 500

# The tables as this revision knows them (SQLAlchemy Core): the models may change later.
_users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String(320)),
    sa.column("version", sa.Integer()),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_tokens = sa.table(
    "email_tokens",
    sa.column("token_hash", sa.String(64)),
    sa.column("user_id", sa.Uuid()),
    sa.column("email", sa.String(320)),
    sa.column("new_email", sa.String(320)),
    sa.column("used_at", sa.DateTime(timezone=True)),
)


@dataclass
class _Scan:
    """What reading every user found: the rows to rewrite and the ones the policy refuses."""

    #: Canonical form -> the (id, stored address) of every row that would take it.
    pending: dict[str, list[tuple[uuid.UUID, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    invalid: list[uuid.UUID] = field(default_factory=list)
    rows: int = 0


def upgrade() -> None:
    """Rewrite stored addresses to the canonical form; log the rows left for an operator."""
    if context.is_offline_mode():
        # Each row's canonical form is computed in Python: there is no SQL script to emit.
        raise RuntimeError("revision 0010 re-normalises rows and needs a database connection")
    bind = op.get_bind()
    scan = _scan_users(bind)
    for user_id in scan.invalid:
        log.warning(
            "migrate.email_invalid: user %s holds an address the policy refuses; left unchanged",
            user_id,
            extra={"revision": revision, "user_ids": [str(user_id)]},
        )
    updated = collided = 0
    for canonical, rows in scan.pending.items():
        if len(rows) == 1 and _rewrite(bind, canonical, *rows[0]):
            updated += 1
        elif _report_collision(bind, canonical, [user_id for user_id, _ in rows]):
            collided += 1
    links = _renormalize_email_change_links(bind)
    log.info(
        "migrate.emails_renormalized: %d users read, %d rewritten, %d collisions, %d refused, "
        "%d email-change links rewritten",
        scan.rows,
        updated,
        collided,
        len(scan.invalid),
        links,
        extra={
            "revision": revision,
            "users_read": scan.rows,
            "users_rewritten": updated,
            "collisions": collided,
            "refused": len(scan.invalid),
            "links_rewritten": links,
        },
    )


def _batches(
    bind: sa.Connection, key: sa.ColumnElement[Any], query: sa.Select[Any]
) -> Iterator[Sequence[Any]]:
    """``query``'s rows, ``BATCH_SIZE`` at a time, in ``key`` order (its first column)."""
    last: Any = None
    while True:
        page = query if last is None else query.where(key > last)
        rows = bind.execute(page.order_by(key).limit(BATCH_SIZE)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _scan_users(bind: sa.Connection) -> _Scan:
    scan = _Scan()
    query = sa.select(_users.c.id, _users.c.email)
    for rows in _batches(bind, _users.c.id, query):
        for user_id, stored in rows:
            scan.rows += 1
            try:
                canonical = canonical_email(stored)
            except InvalidEmailAddress:
                scan.invalid.append(user_id)
                continue
            if canonical != stored:
                scan.pending[canonical].append((user_id, stored))
    return scan


def _guard(bind: sa.Connection) -> AbstractContextManager[object]:
    """A SAVEPOINT on PostgreSQL; nothing on SQLite, whose writers never interleave.

    The previous release keeps serving while this runs. On PostgreSQL a registration of the
    canonical form that is not yet committed when the update checks for it makes the update
    fail with a unique violation once it commits: that must undo this row's statements only,
    not abort the migration. On SQLite the check and the write are one statement and one
    writer runs at a time.
    """
    return bind.begin_nested() if bind.dialect.name == "postgresql" else nullcontext()


def _rewrite(bind: sa.Connection, canonical: str, user_id: uuid.UUID, stored: str) -> bool:
    """Move one user to ``canonical`` unless a row holds it; whether it was moved."""
    taken = sa.exists().where(_users.c.email == canonical)
    try:
        with _guard(bind):
            result = bind.execute(
                _users.update()
                .where(_users.c.id == user_id, _users.c.email == stored, ~taken)
                .values(
                    email=canonical,
                    # The model's optimistic lock: a request that read the row before this
                    # write must not save it back over the new address.
                    version=_users.c.version + 1,
                    updated_at=datetime.now(UTC),
                )
            )
            if result.rowcount != 1:
                return False
            # A verification or reset link is valid while its `email` is the user's address
            # (services/email_links.py). It follows the user: rewritten only where it held
            # the old address, so a link that worked still works and a link an earlier
            # address change voided stays void. Tokens of rows left as they are keep
            # matching them. No uniqueness applies to token rows.
            bind.execute(
                _tokens.update()
                .where(_tokens.c.user_id == user_id, _tokens.c.email == stored)
                .values(email=canonical)
            )
    except IntegrityError:
        return False  # another row took the form meanwhile: a collision after all
    return True


def _report_collision(bind: sa.Connection, canonical: str, user_ids: list[uuid.UUID]) -> bool:
    """Log the users whose addresses share ``canonical`` (its holder, if any, first).

    Whether they collide: a lone row that was not rewritten and whose form nobody holds
    changed address while this ran (a request of the release still serving).
    """
    holders = bind.execute(sa.select(_users.c.id).where(_users.c.email == canonical)).scalars()
    ids = [str(user_id) for user_id in [*holders, *user_ids]]
    if len(ids) == 1:
        log.info(
            "migrate.email_skipped: user %s changed address during the migration",
            ids[0],
            extra={"revision": revision, "user_ids": ids},
        )
        return False
    log.warning(
        "migrate.email_collision: users %s hold addresses of one canonical form; left "
        'unchanged for an operator to resolve (docs/operations.md, "Address collisions")',
        ", ".join(ids),
        extra={"revision": revision, "user_ids": ids},
    )
    return True


def _renormalize_email_change_links(bind: sa.Connection) -> int:
    """Give unused email-change links the canonical form of their target; how many changed.

    Confirming a link writes its ``new_email`` into ``users.email`` as stored, so it must
    be the form sign-in looks up (the request path normalises it today; a link issued
    before that may not be). No uniqueness applies here: confirming checks again that no
    other account holds the address. A link to an address the policy now refuses is
    discarded, as a newer request would: confirming it would give the account an address
    registration refuses. The user can ask again.
    """
    changed = 0
    query = sa.select(_tokens.c.token_hash, _tokens.c.user_id, _tokens.c.new_email).where(
        _tokens.c.new_email.is_not(None), _tokens.c.used_at.is_(None)
    )
    for rows in _batches(bind, _tokens.c.token_hash, query):
        for token_hash, user_id, stored in rows:
            current = _tokens.c.token_hash == token_hash, _tokens.c.new_email == stored
            try:
                canonical = canonical_email(stored)
            except InvalidEmailAddress:
                bind.execute(_tokens.delete().where(*current))
                log.warning(
                    "migrate.email_change_discarded: a pending email-change link of user %s "
                    "names an address the policy refuses; discarded",
                    user_id,
                    extra={"revision": revision, "user_ids": [str(user_id)]},
                )
                continue
            if canonical != stored:
                bind.execute(_tokens.update().where(*current).values(new_email=canonical))
                changed += 1
    return changed


def downgrade() -> None:
    """Nothing to undo: the fold does not keep the stored spelling, which no sign-in finds.

    Every release since the canonical form looks up that form, so the rows 0010 rewrote stay
    right under 0009's code; the rows it left are as they were.
    """
