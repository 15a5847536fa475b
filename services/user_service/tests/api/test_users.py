"""Registration and the signed-in user's own account."""

from __future__ import annotations

import uuid

import httpx
import pytest

from ..utils.auth import bearer, login
from ..utils.problems import assert_problem
from ..utils.users import PASSWORD, register

pytestmark = pytest.mark.integration


class TestRegister:
    async def test_created_with_location_and_no_secrets(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/users",
            json={"email": "New.User@Example.com", "password": PASSWORD, "full_name": "New"},
        )
        assert response.status_code == 201
        body = response.json()
        assert response.headers["location"] == f"/api/v1/users/{body['id']}"
        assert body["email"] == "new.user@example.com"
        assert body["role"] == "user"
        assert body["is_verified"] is False
        assert "password" not in response.text
        assert "argon2" not in response.text

    async def test_duplicate_email_is_409(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        response = await client.post(
            "/api/v1/users", json={"email": user["email"].upper(), "password": PASSWORD}
        )
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["error"] == "email_already_registered"

    @pytest.mark.parametrize(
        ("password", "rule"),
        [("short", "length"), ("x" * 129, "length"), ("same@example.com", "not_email")],
    )
    async def test_password_policy_is_422_per_rule(
        self, client: httpx.AsyncClient, password: str, rule: str
    ) -> None:
        response = await client.post(
            "/api/v1/users", json={"email": "same@example.com", "password": password}
        )
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "password_policy"
        assert body["errors"][0]["rule"] == rule

    async def test_invalid_email_and_unknown_fields_are_422(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/api/v1/users", json={"email": "nope", "password": PASSWORD})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "email"
        response = await client.post(
            "/api/v1/users",
            json={"email": "a@example.com", "password": PASSWORD, "role": "admin"},
        )
        assert response.status_code == 422

    async def test_a_nul_in_the_name_is_422_and_creates_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        email = f"nul-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": "Ada\x00"}
        response = await client.post("/api/v1/users", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "full_name"
        retry = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        assert retry.status_code == 201  # nothing half-written blocks the address


class TestEmailForms:
    """Every path reduces an address to one canonical form (``user_service.addresses``)."""

    @pytest.mark.parametrize(
        "template",
        [
            "{u}@xn--bcher-kva.test",  # an A-label domain
            "cafe\u0301-{u}@example.test",  # a decomposed e-acute
            "{u}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test",  # a full-width domain
        ],
        ids=["a-label", "decomposed", "full-width-domain"],
    )
    async def test_the_registered_string_signs_in(
        self, client: httpx.AsyncClient, template: str
    ) -> None:
        email = template.format(u=uuid.uuid4().hex[:10])
        await register(client, email)
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text

    async def test_a_full_width_local_part_is_the_same_account(
        self, client: httpx.AsyncClient
    ) -> None:
        local = f"dupe{uuid.uuid4().hex[:8]}"
        await register(client, f"{local}@example.com")
        full_width = "".join(chr(ord(c) + 0xFEE0) for c in local)  # ASCII to full-width forms
        response = await client.post(
            "/api/v1/users", json={"email": f"{full_width}@example.com", "password": PASSWORD}
        )
        assert_problem(response, 409, "email_already_registered")

    async def test_a_cross_script_look_alike_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/users", json={"email": "du\u0440e@example.com", "password": PASSWORD}
        )
        assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in response.json()["errors"]] == ["email"]


class TestMe:
    async def test_etag_and_if_match(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        headers = bearer(await login(client, user["email"]))
        read = await client.get("/api/v1/users/me", headers=headers)
        etag = read.headers["etag"]
        updated = await client.patch(
            "/api/v1/users/me",
            json={"full_name": "Ada Lovelace"},
            headers={**headers, "If-Match": etag},
        )
        assert updated.status_code == 200
        assert updated.json()["full_name"] == "Ada Lovelace"
        assert updated.headers["etag"] != etag
        stale = await client.patch(
            "/api/v1/users/me", json={"full_name": "Lost"}, headers={**headers, "If-Match": etag}
        )
        assert stale.status_code == 412
        assert stale.json()["error"] == "precondition_failed"
        current = await client.get("/api/v1/users/me", headers=headers)
        assert current.json()["full_name"] == "Ada Lovelace"

    async def test_patch_without_if_match_applies(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        headers = bearer(await login(client, user["email"]))
        response = await client.patch("/api/v1/users/me", json={"full_name": "B"}, headers=headers)
        assert response.status_code == 200
        response = await client.patch("/api/v1/users/me", json={"email": "x@y.z"}, headers=headers)
        assert response.status_code == 422

    async def test_delete_requires_the_password_and_ends_every_session(
        self, client: httpx.AsyncClient
    ) -> None:
        user = await register(client)
        tokens = await login(client, user["email"])
        other = await login(client, user["email"])
        wrong = await client.request(
            "DELETE",
            "/api/v1/users/me",
            json={"password": "wrong password"},
            headers=bearer(tokens),
        )
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "wrong_password"
        deleted = await client.request(
            "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(tokens)
        )
        assert deleted.status_code == 204
        for t in (tokens, other):
            assert (await client.get("/api/v1/users/me", headers=bearer(t))).status_code == 401
        response = await client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert response.status_code == 401


class TestPasswordChange:
    async def test_signs_out_other_sessions_only(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        current = await login(client, user["email"])
        other = await login(client, user["email"])
        new_password = "a brand new passphrase"
        response = await client.post(
            "/api/v1/auth/password/change",
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=bearer(current),
        )
        assert response.status_code == 204
        assert (await client.get("/api/v1/users/me", headers=bearer(current))).status_code == 200
        assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 401
        await login(client, user["email"], new_password)
        old = await client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
        )
        assert old.status_code == 401

    async def test_wrong_current_password_and_policy(self, client: httpx.AsyncClient) -> None:
        user = await register(client)
        headers = bearer(await login(client, user["email"]))
        wrong = await client.post(
            "/api/v1/auth/password/change",
            json={"current_password": "nope nope", "new_password": "another passphrase"},
            headers=headers,
        )
        assert wrong.status_code == 403
        weak = await client.post(
            "/api/v1/auth/password/change",
            json={"current_password": PASSWORD, "new_password": "short"},
            headers=headers,
        )
        assert weak.status_code == 422
        assert weak.json()["error"] == "password_policy"
