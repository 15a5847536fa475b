"""Passwords: argon2id at or above OWASP, and sign-in reveals nothing about accounts.

Identical answers for an unknown email and a wrong password:
``tests/api/test_auth.py::TestLogin::test_unknown_email_and_wrong_password_look_the_same``.
"""

from __future__ import annotations

import re
import statistics
import time

import pytest
from pydantic import ValidationError

from user_service.config import PasswordSettings, UserServiceSettings
from user_service.security import PasswordHasher

from ..utils.clients import ClientWith
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration

#: OWASP Password Storage Cheat Sheet, argon2id: one lane and any of these equally strong
#: (memory MiB, iterations) minimums. Written out here, not imported: the test is the spec.
OWASP_PAIRS = ((46, 1), (19, 2), (12, 3), (9, 4), (7, 5))
OWASP_LANES = 1


def meets_owasp(memory_kib: int, iterations: int) -> bool:
    return any(memory_kib >= m * 1024 and iterations >= t for m, t in OWASP_PAIRS)


class TestArgon2Parameters:
    async def test_hashes_are_argon2id_at_or_above_owasp(
        self, settings: UserServiceSettings
    ) -> None:
        hasher = PasswordHasher(settings.password)
        try:
            encoded = await hasher.hash("a password to hash")
        finally:
            hasher.close()
        match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$.+", encoded)
        assert match, encoded
        memory, iterations, lanes = map(int, match.groups())
        assert meets_owasp(memory, iterations), (memory, iterations)
        assert lanes >= OWASP_LANES

    @pytest.mark.parametrize(("memory_mib", "iterations"), OWASP_PAIRS)
    def test_settings_accept_each_owasp_pair_and_refuse_one_iteration_less(
        self, memory_mib: int, iterations: int
    ) -> None:
        PasswordSettings(argon2_memory_kib=memory_mib * 1024, argon2_time_cost=iterations)
        with pytest.raises(ValidationError):
            PasswordSettings(argon2_memory_kib=memory_mib * 1024, argon2_time_cost=iterations - 1)

    @pytest.mark.parametrize(
        "weaker",
        [
            {"argon2_memory_kib": 7 * 1024 - 1, "argon2_time_cost": 10},
            {"argon2_memory_kib": 19 * 1024 - 1, "argon2_time_cost": 2},
            {"argon2_memory_kib": 64 * 1024, "argon2_time_cost": 0},
            {"argon2_parallelism": 0},
        ],
    )
    def test_settings_refuse_weaker_parameters(self, weaker: dict[str, int]) -> None:
        with pytest.raises(ValidationError):
            PasswordSettings(**weaker)


class TestLoginTiming:
    async def test_unknown_email_costs_the_same_as_a_wrong_password(
        self, client_with: ClientWith
    ) -> None:
        # Lockout off: it would answer both cases early after five failures.
        async with client_with(lockout={"enabled": False}) as client:
            user = await register(client)
            known = {"email": user["email"], "password": "not the password"}
            unknown = {"email": "nobody-timing@example.com", "password": PASSWORD}

            async def timed(body: dict[str, str]) -> float:
                started = time.perf_counter()
                response = await client.post("/api/v1/auth/login", json=body)
                elapsed = time.perf_counter() - started
                assert response.status_code == 401
                return elapsed

            await timed(known)  # warm-up: connection pool, caches
            known_s: list[float] = []
            unknown_s: list[float] = []
            for _ in range(20):  # interleaved, so load from elsewhere hits both alike
                known_s.append(await timed(known))
                unknown_s.append(await timed(unknown))
        a, b = statistics.median(known_s), statistics.median(unknown_s)
        assert abs(a - b) <= 0.2 * max(a, b), f"known {a * 1000:.1f} ms, unknown {b * 1000:.1f} ms"


async def test_unknown_email_verifies_the_dummy_hash(settings: UserServiceSettings) -> None:
    """The mechanism behind the timing: an unknown account costs one real verification."""
    hasher = PasswordHasher(settings.password)
    try:
        stored = await hasher.hash(PASSWORD)
        dummy, real = [], []
        for _ in range(5):
            started = time.perf_counter()
            await hasher.verify_dummy(PASSWORD)
            dummy.append(time.perf_counter() - started)
            started = time.perf_counter()
            await hasher.verify("wrong password", stored)
            real.append(time.perf_counter() - started)
    finally:
        hasher.close()
    assert statistics.median(dummy) >= 0.5 * statistics.median(real), (dummy, real)
