"""Optimistic concurrency: writes conditioned on the version a client read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.errors import PreconditionFailed

if TYPE_CHECKING:
    from collections.abc import Collection

    from user_service.models import User


def check_version(user: User, if_match: Collection[int] | None) -> None:
    """Refuse a write based on a stale read; ``None`` means no precondition was sent.

    This catches clients that read long ago; the ``version`` column still catches two
    writers racing from the same read (``StaleDataError`` → 412 in the repository).
    """
    if if_match is not None and user.version not in if_match:
        raise PreconditionFailed
