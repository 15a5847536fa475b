"""Operating the events: traces across the stream, consumer metrics, the dead-letter CLI."""

from __future__ import annotations

import argparse
import json
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.db import AsyncSession, commit
from servicekit.events import add_events_commands, run_events_command
from servicekit.redis import AnyRedis, KeySpace

from .utils.events import (
    GROUP,
    RECORD,
    ThingHappened,
    applied,
    consumer_group,
    group_state,
    make_relay,
    publish_things,
    running,
    stream_events,
    wait_for,
)

pytestmark = pytest.mark.integration


async def test_the_consumer_continues_the_producers_trace(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("request") as request_span:
        async with sessionmaker() as session:
            await RECORD(session, ThingHappened(thing_id=uuid.uuid4(), n=0), subject="thing/t")
            await commit(session)
    await make_relay(sessionmaker, redis_client, keys).drain()
    (envelope,) = await stream_events(redis_client, keys, "thing/t")
    context = request_span.get_span_context()
    assert envelope.traceparent is not None
    assert envelope.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    async with running(consumer_group(sessionmaker, redis_client, keys, tracer_provider=provider)):
        await wait_for(lambda: _applied_one(sessionmaker))
    (span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert span.name == "thing.happened.v2 process"
    assert span.context is not None
    assert span.context.trace_id == context.trace_id
    assert span.parent is not None
    assert span.parent.span_id == context.span_id
    assert span.attributes is not None
    assert span.attributes["event_id"] == envelope.id


async def test_an_event_recorded_outside_a_trace_carries_none(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    await publish_things(sessionmaker, redis_client, keys, "thing/u", 1)
    (envelope,) = await stream_events(redis_client, keys, "thing/u")
    assert envelope.traceparent is None


async def test_lag_pending_failures_and_dead_letters_are_reported(
    sessionmaker: async_sessionmaker[AsyncSession], redis_client: AnyRedis, keys: KeySpace
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/v", 3)
    group = consumer_group(sessionmaker, redis_client, keys, fail_on=1)
    await group.create_group(stream)
    await group.observe(stream)
    assert _sample("events_consumer_lag", group=GROUP, stream=stream) == 3
    failed_before = _sample("events_consumed_total", group=GROUP, outcome="failed") or 0
    async with running(group):
        await wait_for(group_state(redis_client, stream, pending=0, read=3))
        await group.observe(stream)
    assert _sample("events_consumer_lag", group=GROUP, stream=stream) == 0
    assert _sample("events_consumer_pending", group=GROUP, stream=stream) == 0
    assert _sample("events_dead_letters", group=GROUP) == 1
    failed = _sample("events_consumed_total", group=GROUP, outcome="failed") or 0
    assert failed - failed_before == 2  # max_attempts tries of the poison event


async def test_the_dlq_commands_list_show_replay_and_drop(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis_client: AnyRedis,
    keys: KeySpace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = await publish_things(sessionmaker, redis_client, keys, "thing/w", 2)
    async with running(consumer_group(sessionmaker, redis_client, keys, fail_on=1)):
        await wait_for(group_state(redis_client, stream, pending=0, read=2))
    capsys.readouterr()

    async def run(*argv: str) -> tuple[int, str, str]:
        status = await run_events_command(
            _parser().parse_args(["events", "dlq", *argv]), redis_client, source=keys, group=GROUP
        )
        out, err = capsys.readouterr()
        return status, out, err

    status, out, _ = await run("list")
    (line,) = out.splitlines()
    entry_id, event_type, event_id, error = line.split("\t")
    assert (status, event_type) == (0, "thing.happened.v2")
    assert "poison" in error
    status, out, _ = await run("show", entry_id)
    shown = json.loads(out)
    assert json.loads(shown["event"])["id"] == event_id
    assert shown["stream"] == stream
    assert (await run("replay", entry_id))[0] == 0
    async with running(consumer_group(sessionmaker, redis_client, keys)):  # handler fixed
        await wait_for(group_state(redis_client, stream, pending=0, read=3))
    assert await applied(sessionmaker) == [0, 1]
    assert await run("list") == (0, "", "")
    status, _, err = await run("drop", entry_id)
    assert status == 1
    assert f"no entry {entry_id}" in err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svc")
    add_events_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _sample(name: str, **labels: str) -> float | None:
    if "outcome" in labels:  # summed over event types
        total = 0.0
        for metric in REGISTRY.collect():
            for sample in metric.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total
    return REGISTRY.get_sample_value(name, labels)


async def _applied_one(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    return len(await applied(sessionmaker)) == 1
