"""Domain events: CloudEvents envelopes, a transactional outbox, a relay to Redis Streams."""

from servicekit.events.cli import add_events_commands, run_events_command
from servicekit.events.consumer import (
    EventConsumerGroup,
    Handler,
    InboxTables,
    dead_letter_key,
)
from servicekit.events.dlq import DeadLetters
from servicekit.events.envelope import CloudEvent, ConsumedEvent, DomainEvent, EventCatalog
from servicekit.events.outbox import (
    EventRecorder,
    OutboxTables,
    install_relay_wake,
    partition_of,
    record,
)
from servicekit.events.relay import OutboxRelay
from servicekit.events.sealing import Sealed, Sealer, SealError
from servicekit.events.setup import (
    Subscription,
    consumer_group,
    events_startup,
    outbox_relay,
    run_relay,
)
from servicekit.events.streams import EVENT_FIELD, StreamPublisher, stream_key

__all__ = [
    "EVENT_FIELD",
    "CloudEvent",
    "ConsumedEvent",
    "DeadLetters",
    "DomainEvent",
    "EventCatalog",
    "EventConsumerGroup",
    "EventRecorder",
    "Handler",
    "InboxTables",
    "OutboxRelay",
    "OutboxTables",
    "SealError",
    "Sealed",
    "Sealer",
    "StreamPublisher",
    "Subscription",
    "add_events_commands",
    "consumer_group",
    "dead_letter_key",
    "events_startup",
    "install_relay_wake",
    "outbox_relay",
    "partition_of",
    "record",
    "run_events_command",
    "run_relay",
    "stream_key",
]
