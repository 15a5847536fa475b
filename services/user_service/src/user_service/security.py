"""Password hashing: argon2id at OWASP parameters in a bounded thread pool.

bcrypt hashes (imported from another system) are accepted for verification and replaced
by argon2id at the next successful login, as are argon2 hashes with outdated parameters.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from user_service.addresses import normalize_email
from user_service.errors import PasswordPolicyViolation

if TYPE_CHECKING:
    from collections.abc import Callable

    from user_service.config import PasswordSettings

T = TypeVar("T")


def _lower_thread_priority(nice: int) -> None:
    """Raise this thread's niceness by ``nice`` (Linux schedules threads one by one)."""
    if nice and sys.platform == "linux":
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


def _rule(rule: str, message: str, **limits: int) -> dict[str, object]:
    """One broken policy rule in the shape of a validation error (``FieldError``)."""
    return {"field": "password", "type": "password_policy", "rule": rule, "message": message,
            **limits}  # fmt: skip


class PasswordHasher:
    """Hash and verify off the event loop; at most ``hash_workers`` hashes run at once."""

    def __init__(self, settings: PasswordSettings) -> None:
        self.settings = settings
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    memory_cost=settings.argon2_memory_kib,
                    time_cost=settings.argon2_time_cost,
                    parallelism=settings.argon2_parallelism,
                ),
                BcryptHasher(),
            )
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.hash_workers,
            thread_name_prefix="password-hash",
            initializer=_lower_thread_priority,
            initargs=(settings.hash_nice,),
        )
        # Verified against for unknown emails so they cost the same time as known ones.
        self._dummy_hash = self._hash.hash("dummy password, never matches")

    def check_policy(self, password: str, *, email: str) -> None:
        """Raise :class:`PasswordPolicyViolation` naming the first broken rule."""
        low, high = self.settings.min_length, self.settings.max_length
        if not low <= len(password) <= high:
            message = f"The password must be {low} to {high} characters long."
            raise PasswordPolicyViolation(
                message, extra={"errors": [_rule("length", message, min=low, max=high)]}
            )
        if normalize_email(password) == normalize_email(email):
            message = "The password must not be the email address."
            raise PasswordPolicyViolation(message, extra={"errors": [_rule("not_email", message)]})

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        """A new argon2id hash."""
        return await self._run(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """``(valid, new_hash)``; ``new_hash`` is set when the stored hash must be upgraded."""
        return await self._run(self._hash.verify_and_update, password, password_hash)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one verification without any account (no timing oracle)."""
        await self._run(self._hash.verify, password, self._dummy_hash)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
