"""The dead-letter stream of a consumer group: list, show, replay and drop its entries.

The ``<service> events dlq …`` commands of a consuming service call these. Replaying puts
the entry's event back on the stream it came from, as a new entry the group reads again
(the inbox still drops it if it was applied meanwhile); the dead-letter entry goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servicekit.events.consumer import dead_letter_key
from servicekit.events.streams import EVENT_FIELD

if TYPE_CHECKING:
    from servicekit.redis.client import AnyRedis
    from servicekit.redis.keys import KeySpace

DeadLetter = tuple[str, dict[str, str]]


class DeadLetters:
    """The dead-letter stream of ``group`` consuming the streams of ``source``."""

    def __init__(self, redis: AnyRedis, source: KeySpace, group: str) -> None:
        self.redis = redis
        self.key = dead_letter_key(source, group)

    async def list(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` entries: id and fields (event, type, error, origin)."""
        entries: Any = await self.redis.xrange(self.key, count=count)
        return [(entry_id, dict(fields)) for entry_id, fields in entries or [] if fields]

    async def show(self, entry_id: str) -> dict[str, str] | None:
        """One entry's fields, or ``None``."""
        entries: Any = await self.redis.xrange(self.key, entry_id, entry_id)
        return dict(entries[0][1]) if entries else None

    async def replay(self, entry_id: str) -> bool:
        """Put the entry's event back on its stream and remove it here; ``False`` if absent."""
        fields = await self.show(entry_id)
        if fields is None:
            return False
        entry: dict[Any, Any] = {"type": fields.get("type", ""), EVENT_FIELD: fields[EVENT_FIELD]}
        await self.redis.xadd(fields["stream"], entry)
        await self.redis.xdel(self.key, entry_id)
        return True

    async def drop(self, entry_id: str) -> bool:
        """Delete the entry for good; ``False`` if absent."""
        return bool(await self.redis.xdel(self.key, entry_id))
