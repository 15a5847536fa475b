"""The grace-window rule for replayed refresh tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from user_service.services.auth import within_grace

pytestmark = pytest.mark.unit

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("elapsed", "grace", "expected"),
    [
        (0 * S, 10 * S, True),
        (9.9 * S, 10 * S, True),
        (10 * S, 10 * S, False),
        (-0.05 * S, 10 * S, True),  # rotated on an instance whose clock runs ahead
        (0 * S, 0 * S, False),  # no grace: even a simultaneous replay is a reuse
        (-0.05 * S, 0 * S, False),  # ... including one stamped by a clock ahead of ours
    ],
)
def test_within_grace(elapsed: timedelta, grace: timedelta, expected: bool) -> None:
    assert within_grace(elapsed, grace) is expected
