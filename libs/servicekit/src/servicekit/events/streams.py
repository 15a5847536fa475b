"""Redis Streams as the event broker: the one module that knows how events reach Redis.

One stream per partition, ``{prefix}{service}:events:v1:{<partition>}``: the partition is
the hash tag, so on a Redis Cluster the partitions spread over the slots while each stream
stays whole on one node. An entry holds the structured CloudEvents JSON in its ``event``
field and the type in ``type`` (for inspection without parsing). Publishing goes through
the service's own redis-py client, with its timeouts, retries and Cluster support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from servicekit.redis.client import AnyRedis
    from servicekit.redis.keys import KeySpace

#: The field of a stream entry that holds the event.
EVENT_FIELD = "event"


def stream_key(keys: KeySpace, partition: int) -> str:
    """The stream of ``partition`` in a service's key space."""
    return keys.tagged("events", partition)


class StreamPublisher:
    """Appends envelopes to a service's partition streams, trimmed to about ``maxlen``."""

    def __init__(self, redis: AnyRedis, keys: KeySpace, *, maxlen: int) -> None:
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen

    async def publish(self, partition: int, entries: Sequence[tuple[str, str]]) -> None:
        """Append ``(type, envelope JSON)`` pairs to one partition's stream, in order.

        One round trip for the batch; raises the client's Redis errors, after which any
        part of the batch may have been appended (the relay publishes it again: consumers
        drop repeated event ids).
        """
        stream = stream_key(self.keys, partition)
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_type, envelope in entries:
                pipe.xadd(
                    stream,
                    {"type": event_type, EVENT_FIELD: envelope},
                    maxlen=self.maxlen,
                    approximate=True,
                )
            await pipe.execute()
