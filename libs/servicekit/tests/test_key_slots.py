"""Keys used together (by one Lua script, MGET or DEL) hash to one Redis Cluster slot.

(A rate-limit bucket is a single key: see test_rate_limit.py.)

The cluster backend (``make cluster-test``) proves it against a real cluster, which refuses
cross-slot scripts; this checks the same key sets in every run, with no server.
"""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.crc import key_slot

from servicekit.auth import SessionDenylist
from servicekit.ratelimit.lockout import Lockout, LockoutSettings
from servicekit.redis.cache import Cache
from servicekit.redis.keys import KeySpace

pytestmark = pytest.mark.unit

PREFIX = "stack:"


class Thing(BaseModel):
    id: int


@pytest.fixture
def offline() -> Redis:
    """A client that is never used to connect: scripts register without a server."""
    return Redis(host="127.0.0.1", port=1)


def _slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_a_cache_entry_and_its_generation_share_a_slot(offline: Redis) -> None:
    cache = Cache(offline, name="thing", model=Thing, keys=KeySpace("svc", PREFIX))
    for ident in (1, "abc", uuid.uuid4()):
        key = cache.key(ident)
        assert len(_slots([key, f"{key}:gen"])) == 1
    assert len(_slots([cache.key(n) for n in range(50)])) > 1  # entries still spread out


def test_the_lockout_keys_of_an_account_share_a_slot(offline: Redis) -> None:
    lockout = Lockout(offline, LockoutSettings(), keys=KeySpace("svc", PREFIX))
    for account in ("a@example.com", "b@example.com"):
        assert len(_slots(lockout._keys(account))) == 1


def test_the_whole_denylist_shares_a_slot(offline: Redis) -> None:
    denylist = SessionDenylist(offline, keys=KeySpace("svc", PREFIX))
    keys = [denylist.sentinel_key, denylist.index_key, denylist.feed.generation_key]
    keys += [denylist.key(uuid.uuid4()) for _ in range(20)]
    assert len(_slots(keys)) == 1
    other = SessionDenylist(offline, keys=KeySpace("other", PREFIX))
    assert _slots([other.sentinel_key]) != _slots(keys)
