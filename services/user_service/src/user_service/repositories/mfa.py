"""Queries on the MFA tables: TOTP credentials, recovery codes, sign-in challenges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from servicekit.db.repository import Repository
from user_service.models import MfaChallenge, RecoveryCode, TotpCredential

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable
    from datetime import datetime


class TotpCredentialRepository(Repository[TotpCredential]):
    """A user's TOTP credential (pending or confirmed)."""

    model = TotpCredential

    async def get_locked(self, user_id: uuid.UUID) -> TotpCredential | None:
        """The credential, row-locked: concurrent uses of one code serialise on it."""
        return await self.get_one_or_none(
            self.select().where(TotpCredential.user_id == user_id).with_for_update()
        )

    async def is_enabled(self, user_id: uuid.UUID) -> bool:
        """Whether the user has a confirmed credential."""
        found = await self.session.scalar(
            select(TotpCredential.user_id).where(
                TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None)
            )
        )
        return found is not None

    async def remove(self, user_id: uuid.UUID) -> bool:
        """Delete the credential and the recovery codes; whether a credential existed."""
        await self.session.execute(
            delete(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            delete(TotpCredential)
            .where(TotpCredential.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


class RecoveryCodeRepository(Repository[RecoveryCode]):
    """A user's single-use recovery codes, by keyed hash."""

    model = RecoveryCode

    async def replace(self, user_id: uuid.UUID, hashes: Iterable[str], now: datetime) -> None:
        """Drop the user's codes and store these instead."""
        await self.session.execute(
            delete(RecoveryCode)
            .where(RecoveryCode.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        self.session.add_all(
            RecoveryCode(code_hash=code_hash, user_id=user_id, created_at=now)
            for code_hash in hashes
        )
        await self.flush()

    async def use(self, user_id: uuid.UUID, code_hash: str, now: datetime) -> bool:
        """Mark the user's unused code with this hash used; whether there was one.

        One conditional ``UPDATE``: two concurrent uses of a code cannot both succeed.
        """
        result = await self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.user_id == user_id,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def remaining(self, user_id: uuid.UUID) -> int:
        """How many unused codes the user has."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(count or 0)


class MfaChallengeRepository(Repository[MfaChallenge]):
    """Pending second steps of sign-ins."""

    model = MfaChallenge

    async def get_locked(self, token_hash: str) -> MfaChallenge | None:
        """The challenge with this hash, row-locked (a token completes one sign-in)."""
        return await self.get_one_or_none(
            self.select().where(MfaChallenge.token_hash == token_hash).with_for_update()
        )

    async def purge_expired(self, now: datetime) -> int:
        """Delete expired challenges; returns how many went."""
        result = await self.session.execute(
            delete(MfaChallenge)
            .where(MfaChallenge.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
