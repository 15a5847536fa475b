"""One key layout for everything a service keeps in Redis.

Every key is ``{prefix}{namespace}:{entity}:v{version}:{rest}``: ``prefix`` separates
deployments or test runs sharing a server (``RedisSettings.key_prefix``), ``namespace`` is
the owning service, and the version changes when an entity's encoding does, so old and new
instances never read each other's values during a rolling deploy. In a Redis Cluster, keys
used together by one script must share a hash slot: :meth:`KeySpace.entity` with
``hash_tag=True`` tags the whole entity, and :meth:`KeySpace.tagged` tags one id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servicekit.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Where one service's keys live; build each key through it, never by hand."""

    namespace: str
    prefix: str = ""

    @classmethod
    def of(cls, settings: ServiceSettings, namespace: str | None = None) -> KeySpace:
        """The key space of ``settings``' service (or of ``namespace`` on the same server)."""
        return cls(namespace or settings.service_name, settings.redis.key_prefix)

    def entity(self, entity: str, *, version: int = 1, hash_tag: bool = False) -> str:
        """The start of every key of ``entity``; ``hash_tag`` puts all of them in one slot."""
        body = f"{self.namespace}:{entity}:v{version}"
        return f"{self.prefix}{{{body}}}:" if hash_tag else f"{self.prefix}{body}:"

    def key(self, entity: str, ident: object, *, version: int = 1) -> str:
        """The key of one ``entity`` by id."""
        return f"{self.entity(entity, version=version)}{ident}"

    def tagged(self, entity: str, ident: object, *, version: int = 1) -> str:
        """The key of one ``entity`` with its id as hash tag.

        Keys derived from it by a suffix (``…}:lock``) land in the same slot.
        """
        return f"{self.entity(entity, version=version)}{{{ident}}}"
