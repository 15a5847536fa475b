"""Redis: the one client factory, the embedded server, the change feed and the cache."""

from servicekit.redis.cache import Cache
from servicekit.redis.change_feed import ChangeFeed
from servicekit.redis.client import REDIS_ERRORS, AnyRedis, create_redis, discover, ping
from servicekit.redis.embedded import EmbeddedRedis
from servicekit.redis.keys import KeySpace
from servicekit.redis.local_tier import LocalTier

__all__ = [
    "REDIS_ERRORS",
    "AnyRedis",
    "Cache",
    "ChangeFeed",
    "EmbeddedRedis",
    "KeySpace",
    "LocalTier",
    "create_redis",
    "discover",
    "ping",
]
