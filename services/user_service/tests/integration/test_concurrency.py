"""Races with real concurrent transactions (no shared test session)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing import app_client
from user_service.config import UserServiceSettings
from user_service.main import create_app
from user_service.models import User

from ..utils.auth import bearer, login
from ..utils.mfa import enable_totp, first_step, oathtool_code, second_step
from ..utils.users import PASSWORD, live_email

pytestmark = pytest.mark.integration


async def _register(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})


class TestRaces:
    async def test_twenty_concurrent_registrations_create_one_user(
        self, live_client: httpx.AsyncClient
    ) -> None:
        email = live_email()
        responses = await asyncio.gather(*(_register(live_client, email) for _ in range(20)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 19, statuses
        assert all(
            r.json()["error"] == "email_already_registered"
            for r in responses
            if r.status_code == 409
        )

    async def test_parallel_refreshes_in_the_grace_window_share_one_successor(
        self, live_client: httpx.AsyncClient
    ) -> None:
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        tokens = await login(live_client, email)
        body = {"refresh_token": tokens["refresh_token"]}
        responses = await asyncio.gather(
            *(live_client.post("/api/v1/auth/refresh", json=body) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [200] * 8
        successors = {r.json()["refresh_token"] for r in responses}
        assert len(successors) == 1
        # And the successor is live: it rotates once more.
        again = await live_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": successors.pop()}
        )
        assert again.status_code == 200

    async def test_logout_racing_refresh_never_500s(self, live_client: httpx.AsyncClient) -> None:
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        tokens = await login(live_client, email)
        logout, refresh = await asyncio.gather(
            live_client.post("/api/v1/auth/logout", headers=bearer(tokens)),
            live_client.post(
                "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            ),
        )
        assert logout.status_code == 204
        assert refresh.status_code in {200, 401}
        if refresh.status_code == 200:  # refreshed first: the logout still ended the session
            me = await live_client.get("/api/v1/users/me", headers=bearer(refresh.json()))
            assert me.status_code == 401

    async def test_two_patches_with_one_if_match_one_wins_one_412(
        self, live_client: httpx.AsyncClient
    ) -> None:
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        headers = bearer(await login(live_client, email))
        for round_ in range(5):  # several rounds: at least some truly overlap
            etag = (await live_client.get("/api/v1/users/me", headers=headers)).headers["etag"]
            a, b = await asyncio.gather(
                *(
                    live_client.patch(
                        "/api/v1/users/me",
                        json={"full_name": f"writer {w} round {round_}"},
                        headers={**headers, "If-Match": etag},
                    )
                    for w in "ab"
                )
            )
            assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
            winner, loser = (a, b) if a.status_code == 200 else (b, a)
            assert loser.json()["error"] == "precondition_failed"
            # The winner's write is what is stored: no lost update.
            me = await live_client.get("/api/v1/users/me", headers=headers)
            assert me.json()["full_name"] == winner.json()["full_name"]
            assert me.headers["etag"] == winner.headers["etag"] != etag

    async def test_without_grace_parallel_refreshes_count_as_reuse(
        self, settings: UserServiceSettings, live_client: httpx.AsyncClient
    ) -> None:
        # With no grace window, every refresh after the first is a replay of a rotated
        # token, however close together they arrive: one wins, and the replays end the
        # session, the winner's successor included.
        no_grace = settings.jwt.model_copy(update={"refresh_grace_seconds": 0})
        async with app_client(create_app(settings.model_copy(update={"jwt": no_grace}))) as client:
            email = live_email()  # removed by live_client's clean-up
            assert (await _register(client, email)).status_code == 201
            body = {"refresh_token": (await login(client, email))["refresh_token"]}
            responses = await asyncio.gather(
                *(client.post("/api/v1/auth/refresh", json=body) for _ in range(8))
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [401] * 7, [r.text for r in responses]
            winner = next(r.json() for r in responses if r.status_code == 200)
            again = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]}
            )
            assert again.status_code == 401

    async def test_reuse_racing_a_legitimate_refresh_outside_grace_revokes_the_session(
        self, settings: UserServiceSettings, live_client: httpx.AsyncClient
    ) -> None:
        no_grace = settings.jwt.model_copy(update={"refresh_grace_seconds": 0})
        async with app_client(create_app(settings.model_copy(update={"jwt": no_grace}))) as client:
            email = live_email()  # removed by live_client's clean-up
            assert (await _register(client, email)).status_code == 201
            old = await login(client, email)
            current = (
                await client.post(
                    "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
                )
            ).json()
            await asyncio.sleep(0.01)  # past the (zero) grace window
            reuse = {"refresh_token": old["refresh_token"]}
            legit = {"refresh_token": current["refresh_token"]}
            responses = await asyncio.gather(
                *(client.post("/api/v1/auth/refresh", json=reuse) for _ in range(3)),
                *(client.post("/api/v1/auth/refresh", json=legit) for _ in range(3)),
            )
            reuses, legits = responses[:3], responses[3:]
            assert [r.status_code for r in reuses] == [401] * 3
            assert all(r.json()["error"] == "invalid_grant" for r in reuses)
            # A legitimate refresh may win the lock before the reuse is seen (200), or not;
            # either way the session ends revoked, whatever token it was refreshed to.
            assert {r.status_code for r in legits} <= {200, 401}, [r.text for r in legits]
            for token in [current, *(r.json() for r in legits if r.status_code == 200)]:
                me = await client.get("/api/v1/users/me", headers=bearer(token))
                assert me.status_code == 401
                again = await client.post(
                    "/api/v1/auth/refresh", json={"refresh_token": token["refresh_token"]}
                )
                assert again.status_code == 401


class TestCodeRace:
    async def test_one_totp_code_sent_twice_at_once_signs_in_once(
        self, live_client: httpx.AsyncClient
    ) -> None:
        """The credential's row lock serialises the two; the second sees the step used."""
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        secret, _ = await enable_totp(live_client, await login(live_client, email))
        challenges = [await first_step(live_client, email) for _ in range(4)]
        code = oathtool_code(secret)
        responses = await asyncio.gather(*(second_step(live_client, c, code) for c in challenges))
        assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]


class TestRehashRace:
    async def test_parallel_logins_needing_a_rehash_all_succeed(
        self, settings: UserServiceSettings, live_client: httpx.AsyncClient, db_engine: AsyncEngine
    ) -> None:
        # Each login holds FOR SHARE on the user row; upgrading that to write the new hash
        # while another login holds it too was a deadlock (a 500) for all but one.
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        cost = settings.password  # any other parameters make the stored hash outdated
        old_parameters = Argon2Hasher(
            memory_cost=cost.argon2_memory_kib * 2, time_cost=cost.argon2_time_cost
        ).hash(PASSWORD)
        async with db_engine.begin() as conn:
            await conn.execute(
                update(User).where(User.email == email).values(password_hash=old_parameters)
            )
            version = await conn.scalar(select(User.version).where(User.email == email))
        body = {"email": email, "password": PASSWORD}
        responses = await asyncio.gather(
            *(live_client.post("/api/v1/auth/login", json=body) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        # A login that finds the row busy leaves the upgrade to the next one; when all eight
        # overlapped, none could take the lock. A sign-in on its own always does it.
        await login(live_client, email)
        async with db_engine.connect() as conn:
            row = (
                await conn.execute(
                    select(User.password_hash, User.version).where(User.email == email)
                )
            ).one()
        assert row.password_hash != old_parameters  # upgraded...
        assert row.password_hash.startswith("$argon2id$")
        assert row.version == version  # ...without changing what clients see (the ETag)
        await login(live_client, email)  # and the new hash verifies


class TestLoginStorm:
    async def test_32_parallel_logins_do_not_stall_the_event_loop(
        self, live_client: httpx.AsyncClient
    ) -> None:
        email = live_email()
        assert (await _register(live_client, email)).status_code == 201
        latencies: list[float] = []
        storm_done = asyncio.Event()

        async def probe() -> None:
            while not storm_done.is_set():
                started = time.perf_counter()
                response = await live_client.get("/health/live")
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
                await asyncio.sleep(0.01)

        async def storm() -> list[httpx.Response]:
            try:
                return await asyncio.gather(
                    *(
                        live_client.post(
                            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
                        )
                        for _ in range(32)
                    )
                )
            finally:
                storm_done.set()

        responses, _ = await asyncio.gather(storm(), probe())
        assert all(r.status_code == 200 for r in responses)
        assert len(latencies) >= 5
        assert max(latencies) < 0.1, f"slowest /health/live during the storm: {max(latencies):.3f}s"
