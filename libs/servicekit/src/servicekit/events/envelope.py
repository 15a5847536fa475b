"""Domain events and their CloudEvents 1.0 envelope (structured JSON mode).

A service declares each event as a pydantic model subclassing :class:`DomainEvent` with a
versioned type name::

    class UserRegistered(DomainEvent, event_type="user.registered", version=1):
        user_id: uuid.UUID
        email: str

The envelope's ``type`` is ``user.registered.v1``; a change that breaks consumers gets a
new version (and a new class) while the old one is still published for as long as
consumers need it. :class:`EventCatalog` lists the types a service publishes and renders
their JSON Schemas for the documentation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.db.orm import utcnow


class DomainEvent(BaseModel):
    """The payload of one event type; subclasses name the type and version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int]

    def __init_subclass__(cls, *, event_type: str = "", version: int = 1, **kwargs: Any) -> None:
        """Name the subclass's event type (``event_type`` must be given on concrete ones)."""
        super().__init_subclass__(**kwargs)
        if event_type:
            cls.event_type = event_type
            cls.version = version

    @classmethod
    def type_name(cls) -> str:
        """The CloudEvents ``type``: the event name and its version, ``user.registered.v1``."""
        return f"{cls.event_type}.v{cls.version}"


class ConsumedEvent(DomainEvent):
    """A consumer's view of another service's event type: only the fields it uses.

    Fields the producer adds later are ignored, so a backward-compatible change of the
    producer's payload (a new field) does not break its consumers; a consumer declares the
    type with the producer's name and version, never imports the producer's code.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope with the partition-key and distributed-tracing extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    #: The producing service, as a URI reference (``/user_service``).
    source: str
    type: str
    #: What the event is about (``user/<id>``); its partition key unless one is given.
    subject: str
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: Literal["application/json"] = "application/json"
    #: Events with one partition key stay in order (one stream, in commit order).
    partitionkey: str
    #: W3C trace context of the request that caused the event, when tracing is on.
    traceparent: str | None = None
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: DomainEvent,
        *,
        source: str,
        subject: str,
        partition_key: str | None = None,
        traceparent: str | None = None,
    ) -> CloudEvent:
        """The envelope of ``event``; the partition key defaults to the subject."""
        return cls(
            source=source,
            type=event.type_name(),
            subject=subject,
            partitionkey=partition_key or subject,
            traceparent=traceparent,
            data=event.model_dump(mode="json"),
        )


class EventCatalog:
    """The event types one service publishes (or consumes), by CloudEvents ``type``."""

    def __init__(self, *events: type[DomainEvent]) -> None:
        self.types: dict[str, type[DomainEvent]] = {}
        for event in events:
            name = event.type_name()
            if name in self.types:
                raise ValueError(f"event type {name} is declared twice")
            self.types[name] = event

    def parse(self, envelope: CloudEvent) -> DomainEvent:
        """The typed payload of ``envelope``.

        ``KeyError`` for a type not in the catalog, pydantic's ``ValidationError`` for data
        that does not match its schema.
        """
        return self.types[envelope.type].model_validate(envelope.data)

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Each type's payload JSON Schema, by type name."""
        return {name: event.model_json_schema() for name, event in sorted(self.types.items())}
