"""A warning repeated on every request is written once per interval, with the count it held."""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from servicekit.observability.logging import get_logger
from servicekit.observability.throttled import ThrottledWarnings


def test_repeats_are_held_back_and_counted_on_the_next_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    warnings = ThrottledWarnings(get_logger("test.throttled"), interval_s=10.0)
    with capture_logs() as lines:
        written = [warnings.warning("cache.redis_error", key="user:read", op="read")]
        written += [warnings.warning("cache.redis_error", key="user:read") for _ in range(99)]
        written.append(warnings.warning("cache.redis_error", key="user:write"))  # its own key
        clock[0] += 10.0
        written.append(warnings.warning("cache.redis_error", key="user:read", op="read"))
        written.append(warnings.warning("cache.redis_error", key="user:read", op="read"))
    assert written == [True] + [False] * 99 + [True, True, False]
    assert [(line["event"], line.get("suppressed")) for line in lines] == [
        ("cache.redis_error", None),
        ("cache.redis_error", None),
        ("cache.redis_error", 99),
    ]
    assert lines[0]["op"] == "read"
    assert all("key" not in line for line in lines)
