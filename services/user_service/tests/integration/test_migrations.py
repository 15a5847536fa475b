from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, delete, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.db.orm import utcnow
from servicekit.testing.migrations import schema_drift
from user_service.addresses import normalize_email
from user_service.models import Base, EmailToken, TokenPurpose, User

pytestmark = pytest.mark.integration


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _current_revision(engine: AsyncEngine) -> str | None:
    """The revision Alembic has recorded in the database (``None``: base)."""

    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(current)


class TestMigrations:
    async def test_migrations_are_reversible(
        self, alembic_config: Config, db_engine: AsyncEngine
    ) -> None:
        head = ScriptDirectory.from_config(alembic_config).get_current_head()
        ours = set(Base.metadata.tables)
        assert head is not None
        assert await _current_revision(db_engine) == head
        # Alembic's commands run their own event loop (env.py): off this one, in a thread.
        await asyncio.to_thread(command.downgrade, alembic_config, "base")
        assert await _current_revision(db_engine) is None
        assert (await _tables(db_engine)) & ours == set(), "base still has service tables"
        await asyncio.to_thread(command.upgrade, alembic_config, "head")
        assert await _current_revision(db_engine) == head
        assert ours <= await _tables(db_engine)
        assert await schema_drift(db_engine, Base.metadata) == [], (
            "the re-created schema differs from the models"
        )

    async def test_models_and_migrations_do_not_drift(self, db_engine: AsyncEngine) -> None:
        assert await schema_drift(db_engine, Base.metadata) == []


def _full_width(text: str) -> str:
    """``text`` (printable ASCII) in full-width forms (U+FF01 ...), as NFKC folds them back."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def _id(prefix: str) -> uuid.UUID:
    """A random id starting with ``prefix``: the first or the last in the table's id order."""
    return uuid.UUID(prefix + uuid.uuid4().hex[len(prefix) :])


class TestRenormalizeEmails:
    """0010 gives stored addresses the canonical form and leaves conflicts to an operator."""

    async def test_stored_addresses_take_the_form_sign_in_looks_up(
        self, alembic_config: Config, db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
    ) -> None:
        script = ScriptDirectory.from_config(alembic_config).get_revision("0010")
        assert script is not None
        batch: int = script.module.BATCH_SIZE
        tag = uuid.uuid4().hex[:8]
        cyrillic_er = "\u0440"  # looks like a Latin "p"
        # Rows as the service stored them before the canonical form: email-validator's
        # form, lower-cased. Over two batches of fillers, ids starting "00" and "ff" are
        # read in different batches.
        original = {
            "full_width": (_id("0"), f"{_full_width('fw' + tag)}@example.test"),
            "decomposed": (_id("1"), f"cafe\u0301{tag}@example.test"),
            "a_label": (_id("f"), f"x{tag}@xn--bcher-kva.test"),
            # Two rows that fold to one form, read in different batches: neither may take it.
            "pair_first": (_id("00"), f"{_full_width('pair' + tag)}@example.test"),
            "pair_last": (_id("ff"), f"pair{tag}@{_full_width('example')}.test"),
            # A row whose form another row already holds.
            "holder": (_id("2"), f"held{tag}@example.test"),
            "held": (_id("3"), f"{_full_width('held' + tag)}@example.test"),
            # A look-alike registered before mixed scripts were refused.
            "look_alike": (_id("4"), f"du{cyrillic_er}e{tag}@example.test"),
        }
        ids = {name: user_id for name, (user_id, _) in original.items()}
        stored = {name: email for name, (_, email) in original.items()}
        fillers = [
            {"email": f"fill{i}-{tag}@example.test", "password_hash": "x"}
            for i in range(2 * batch + 1)
        ]
        expires = utcnow() + timedelta(hours=1)

        def token(
            name: str, purpose: TokenPurpose, email: str, new: str | None = None
        ) -> dict[str, Any]:
            return {
                "token_hash": uuid.uuid4().hex,
                "user_id": ids[name],
                "purpose": purpose,
                "email": email,
                "new_email": new,
                "expires_at": expires,
            }

        tokens = {
            "pending": token("full_width", TokenPurpose.VERIFY_EMAIL, stored["full_width"]),
            # Issued for an address the user has changed since: void, and stays void.
            "stale": token(
                "full_width",
                TokenPurpose.PASSWORD_RESET,
                f"{_full_width('old' + tag)}@example.test",
            ),
            "collided": token("pair_first", TokenPurpose.VERIFY_EMAIL, stored["pair_first"]),
            "change": token(
                "a_label",
                TokenPurpose.EMAIL_CHANGE,
                stored["a_label"],
                f"{_full_width('new' + tag)}@example.test",
            ),
            "change_to_look_alike": token(
                "decomposed",
                TokenPurpose.EMAIL_CHANGE,
                stored["decomposed"],
                f"ne{cyrillic_er}{tag}@example.test",
            ),
        }
        all_ids = list(ids.values())
        await asyncio.to_thread(command.downgrade, alembic_config, "0009")
        try:
            async with db_engine.begin() as conn:
                await conn.execute(
                    insert(User),
                    [
                        {"id": user_id, "email": email, "password_hash": "x"}
                        for user_id, email in original.values()
                    ],
                )
                filler_ids = (
                    await conn.execute(insert(User).returning(User.id), fillers)
                ).scalars()
                all_ids += list(filler_ids)
                await conn.execute(insert(EmailToken), list(tokens.values()))

            caplog.set_level(logging.INFO, logger="user_service.migrations")
            await asyncio.to_thread(command.upgrade, alembic_config, "head")

            async with db_engine.connect() as conn:
                users = {
                    row.id: (row.email, row.version)
                    for row in await conn.execute(
                        select(User.id, User.email, User.version).where(User.id.in_(ids.values()))
                    )
                }
                links = {
                    row.token_hash: (row.email, row.new_email)
                    for row in await conn.execute(
                        select(EmailToken.token_hash, EmailToken.email, EmailToken.new_email).where(
                            EmailToken.user_id.in_(ids.values())
                        )
                    )
                }
        finally:
            async with db_engine.begin() as conn:
                await conn.execute(delete(EmailToken).where(EmailToken.user_id.in_(all_ids)))
                await conn.execute(delete(User).where(User.id.in_(all_ids)))

        # The exact string each registered with now finds its row; the write bumped `version`.
        for name in ("full_width", "decomposed", "a_label"):
            assert users[ids[name]] == (normalize_email(stored[name]), 2), name
        assert users[ids["a_label"]][0] == f"x{tag}@b\u00fccher.test"
        # Collisions and the refused look-alike are left exactly as they were.
        for name in ("pair_first", "pair_last", "holder", "held", "look_alike"):
            assert users[ids[name]] == (stored[name], 1), name
        # A look-alike still signs in with its own string (a refused address is looked up
        # folded and lower-cased), though registration now refuses it.
        assert normalize_email(stored["look_alike"]) == stored["look_alike"]

        # Links follow their user: a link that worked still matches the user's address.
        assert links[tokens["pending"]["token_hash"]] == (users[ids["full_width"]][0], None)
        assert links[tokens["stale"]["token_hash"]] == (tokens["stale"]["email"], None)
        assert links[tokens["collided"]["token_hash"]] == (stored["pair_first"], None)
        # An email-change link's target is what confirming stores: canonical too.
        assert links[tokens["change"]["token_hash"]] == (
            users[ids["a_label"]][0],
            f"new{tag}@example.test",
        )
        # A link to an address the policy refuses is discarded.
        assert tokens["change_to_look_alike"]["token_hash"] not in links

        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "user_service.migrations" and r.levelno == logging.WARNING
        ]

        def reported(*names: str) -> bool:
            return any(all(str(ids[n]) in message for n in names) for message in warnings)

        assert reported("pair_first", "pair_last")
        assert reported("holder", "held")
        assert reported("look_alike")
        assert reported("decomposed")  # its discarded email-change link
        assert not reported("full_width"), "a rewritten row is no collision"
        # Ids only: no address reaches the log.
        assert not [m for m in warnings if tag in m or "example" in m]

    async def test_an_address_registered_while_it_runs_is_a_collision(
        self, alembic_config: Config, db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
    ) -> None:
        # The previous release serves during the migration: a registration of the canonical
        # form that commits while the rewrite waits on it must not abort the migration.
        if db_engine.dialect.name != "postgresql":
            pytest.skip("SQLite runs one writer at a time: nothing registers meanwhile")
        tag = uuid.uuid4().hex[:8]
        legacy = {"id": uuid.uuid4(), "email": f"{_full_width('late' + tag)}@example.test"}
        newcomer = {"id": uuid.uuid4(), "email": f"late{tag}@example.test"}
        await asyncio.to_thread(command.downgrade, alembic_config, "0009")
        try:
            async with db_engine.begin() as conn:
                await conn.execute(insert(User), [{**legacy, "password_hash": "x"}])
            caplog.set_level(logging.INFO, logger="user_service.migrations")
            async with db_engine.connect() as registration:
                await registration.execute(insert(User), [{**newcomer, "password_hash": "x"}])
                upgrade = asyncio.create_task(
                    asyncio.to_thread(command.upgrade, alembic_config, "head")
                )
                async with db_engine.connect() as observer:
                    for _ in range(200):  # until the rewrite waits on the uncommitted row
                        waiting = await observer.scalar(
                            text(
                                "SELECT count(*) FROM pg_stat_activity WHERE "
                                "datname = current_database() AND wait_event_type = 'Lock'"
                            )
                        )
                        await observer.rollback()
                        if waiting or upgrade.done():
                            break
                        await asyncio.sleep(0.05)
                    assert waiting, "the migration never waited on the registration"
                await registration.commit()
                await upgrade
            async with db_engine.connect() as conn:
                query = select(User.id, User.email).where(
                    User.id.in_([legacy["id"], newcomer["id"]])
                )
                rows = {row.id: row.email for row in await conn.execute(query)}
        finally:
            async with db_engine.begin() as conn:
                await conn.execute(delete(User).where(User.id.in_([legacy["id"], newcomer["id"]])))
        assert rows == {legacy["id"]: legacy["email"], newcomer["id"]: newcomer["email"]}
        assert any(
            str(legacy["id"]) in r.getMessage() and str(newcomer["id"]) in r.getMessage()
            for r in caplog.records
            if r.name == "user_service.migrations" and r.levelno == logging.WARNING
        )
