"""``<service> events dlq list | show ID | replay ID | drop ID``: a consumer group's dead letters.

A consuming service adds these commands to its own parser with :func:`add_events_commands`
and runs them with :func:`run_events_command`, naming the group and the producer whose
streams it reads. Output is one line per entry for ``list`` and the entry as JSON for
``show``, so both can be piped; the exit status is 1 for an entry that does not exist.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from servicekit.events.dlq import DeadLetters

if TYPE_CHECKING:
    import argparse

    from servicekit.redis.client import AnyRedis
    from servicekit.redis.keys import KeySpace


def add_events_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``events dlq …`` to a service's sub-command parsers."""
    events = sub.add_parser("events", help="inspect the events this service consumes")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    dlq = events_sub.add_parser("dlq", help="the dead-letter stream of a consumer group")
    dlq.add_argument("--group", help="consumer group (default: the service's own)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="one line per entry: id, type, event id, error")
    listing.add_argument("--count", type=int, default=100)
    for name, text in (
        ("show", "an entry's fields as JSON (the event, its error and origin)"),
        ("replay", "put the entry's event back on its stream and remove it here"),
        ("drop", "delete the entry for good"),
    ):
        dlq_sub.add_parser(name, help=text).add_argument("entry_id")


async def run_events_command(
    args: argparse.Namespace, redis: AnyRedis, *, source: KeySpace, group: str
) -> int:
    """Carry out a parsed ``events dlq …`` command; returns the exit status."""
    letters = DeadLetters(redis, source, args.group or group)
    command = args.dlq_command
    if command == "list":
        for entry_id, fields in await letters.list(args.count):
            event_id = _event_id(fields.get("event", ""))
            error = fields.get("error", "").replace("\n", " ")
            sys.stdout.write(f"{entry_id}\t{fields.get('type', '?')}\t{event_id}\t{error}\n")
        return 0
    if command == "show":
        shown = await letters.show(args.entry_id)
        if shown is not None:
            sys.stdout.write(json.dumps(shown, indent=2, sort_keys=True) + "\n")
        found = shown is not None
    elif command == "replay":
        found = await letters.replay(args.entry_id)
    else:
        found = await letters.drop(args.entry_id)
    if not found:
        sys.stderr.write(f"events dlq {command}: no entry {args.entry_id}\n")
        return 1
    return 0


def _event_id(envelope: str) -> str:
    try:
        return str(json.loads(envelope).get("id", "?"))
    except (ValueError, AttributeError):
        return "?"
