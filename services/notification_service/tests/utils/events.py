"""User events put on the user service's streams as the user service's relay would."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from notification_service.config import NotificationServiceSettings
from servicekit.db.orm import utcnow
from servicekit.events import EVENT_FIELD, CloudEvent, Sealer, partition_of, stream_key
from servicekit.redis import AnyRedis, KeySpace


async def publish(
    redis: AnyRedis,
    settings: NotificationServiceSettings,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
) -> CloudEvent:
    """Append one user-service event (``user.registered.v1``…) about ``data["user_id"]``."""
    subject = f"user/{data['user_id']}"
    envelope = CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source="/user_service",
        type=event_type,
        subject=subject,
        partitionkey=subject,
        data={k: str(v) if isinstance(v, uuid.UUID | datetime) else v for k, v in data.items()},
    )
    keys = KeySpace.of(settings, settings.users.namespace)
    stream = stream_key(keys, partition_of(subject, settings.consumer.partitions))
    await redis.xadd(stream, {"type": event_type, EVENT_FIELD: envelope.model_dump_json()})
    return envelope


def link_request(
    settings: NotificationServiceSettings, user_id: uuid.UUID, email: str, token: str
) -> dict[str, Any]:
    """The data of a verification or reset request whose token is ``token``, sealed."""
    return {
        "user_id": user_id,
        "email": email,
        "full_name": "Ada Lovelace",
        "token": Sealer(settings.events.seal_keys).seal(token),
        "expires_at": utcnow() + timedelta(hours=1),
    }
