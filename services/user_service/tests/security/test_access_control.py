"""Every admin route answers 403 to a user's token and 401 without one.

The routes come from ``app.routes``: any route whose dependencies require the ``admin``
scope is tested, so a new admin route is covered without editing this file.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from user_service.config import UserServiceSettings
from user_service.main import create_app

from ..utils.auth import bearer, login
from ..utils.users import register

pytestmark = pytest.mark.integration


def _required_scopes(dependant: Dependant) -> Iterator[str]:
    """Scopes demanded anywhere in the dependency tree (``require_scopes`` closures)."""
    for dep in dependant.dependencies:
        if dep.call is not None and inspect.isfunction(dep.call):
            scopes = inspect.getclosurevars(dep.call).nonlocals.get("scopes")
            if isinstance(scopes, tuple):
                yield from scopes
        yield from _required_scopes(dep)


def admin_routes(settings: UserServiceSettings) -> list[tuple[str, str]]:
    """(method, concrete path) of every route that requires the admin scope."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(create_app(settings).routes):  # included routers too
        if isinstance(route.original_route, APIRoute) and "admin" in set(
            _required_scopes(route.dependant)
        ):
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path or "")
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


@pytest.fixture(scope="module")
def routes(settings: UserServiceSettings) -> list[tuple[str, str]]:
    found = admin_routes(settings)
    # The discovery itself must work: the admin API has at least these.
    labels = {f"{m} {re.sub(r'[0-9a-f-]{36}', '{id}', p)}" for m, p in found}
    assert {"GET /api/v1/users", "DELETE /api/v1/users/{id}"} <= labels, labels
    return found


async def test_user_tokens_get_403_everywhere(
    client: httpx.AsyncClient, routes: list[tuple[str, str]]
) -> None:
    user = await register(client)
    headers = bearer(await login(client, user["email"]))
    for method, path in routes:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "insufficient_scope"


async def test_no_token_gets_401_everywhere(
    client: httpx.AsyncClient, routes: list[tuple[str, str]]
) -> None:
    for method, path in routes:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_plain_user_routes_are_not_mistaken_for_admin_routes(
    routes: list[tuple[str, str]],
) -> None:
    assert all("/users/me" not in path and "/auth/" not in path for _, path in routes)
