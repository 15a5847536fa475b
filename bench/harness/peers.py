"""The peer, fastapi-users: its own locked environment, seeding, servers, sign-ins, logout.

The peer is fastapi-users' SQLAlchemy example in ``bench/peers/fastapi-users/``, with its own
``pyproject.toml`` and ``uv.lock``: its bounds (SQLAlchemy < 2.1, redis-py < 8) conflict with
the workspace's, so it cannot share the workspace's lock. The run builds that environment
with ``uv sync --frozen`` and starts the peer with that environment's Python.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from typing import IO, TYPE_CHECKING, Any

import httpx

from harness.common import PASSWORD, PEER, PEER_PYTHON, SEEDED_USERS, WORK, log
from harness.load import write_list
from harness.servers import Server
from servicekit.testing.process import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


def uv_command() -> list[str]:
    """The uv that runs this harness (``uv run`` exports ``UV``), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def build_environment(log_file: IO[bytes]) -> None:
    """Install the peer's locked environment into ``bench/peers/fastapi-users/.venv``.

    ``--frozen``: exactly what its ``uv.lock`` records, never a new resolution. The
    workspace's own environment variables are dropped, so uv picks the peer's ``.venv``.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}  # fmt: skip
    subprocess.run(
        [*uv_command(), "sync", "--frozen", "--project", str(PEER)],
        env=env, check=True, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log(f"peer environment ready: {PEER_PYTHON}")


def environment(base_env: dict[str, str], database_url: str, redis_url: str) -> dict[str, str]:
    """The peer's settings: its own database, the run's Redis, a secret made up for the run."""
    return {
        **base_env,
        "PEER_DATABASE_URL": database_url,
        "PEER_REDIS_URL": redis_url,
        "PEER_SECRET": secrets.token_urlsafe(48),
        "PEER_PASSWORD": PASSWORD,
        "HOST": "127.0.0.1",
        "WORKERS": "1",
        "GRACEFUL_TIMEOUT_S": "5",
    }


def seed(peer_env: dict[str, str], log_file: IO[bytes]) -> None:
    """The example's table with the same 10,000 users as the service, one shared hash."""
    subprocess.run(
        [str(PEER_PYTHON), str(PEER / "seed.py"), str(SEEDED_USERS)],
        env=peer_env, cwd=PEER, check=True, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log(f"peer: seeded {SEEDED_USERS} users")


def server(name: str, strategy: str, peer_env: dict[str, str]) -> Server:
    """A peer server (not started) with one strategy's backend, ready once ``/docs`` answers.

    The example has no health route; uvicorn accepts connections only after the lifespan
    (which connects to PostgreSQL to create the table) has run, so any answer means ready.
    """
    env = {**peer_env, "PORT": str(free_port()), "PEER_STRATEGY": strategy}
    return Server(name, [str(PEER_PYTHON), str(PEER / "main.py")], env, ready="/docs", kind="peer")


def login(client: httpx.Client, base_url: str, strategy: str, email: str) -> str:
    """Sign in through the peer's auth router (an OAuth 2 password form) and return the token."""
    response = client.post(
        f"{base_url}/auth/{strategy}/login",
        data={"username": email, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def token_list(srv: Server, strategy: str, emails: Sequence[str]) -> Path:
    """``GET /users/me`` with the tokens of ``emails``, each request tried once first."""
    with httpx.Client() as client:
        tokens = [login(client, srv.url, strategy, email) for email in emails]
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            client.get(f"{srv.url}/users/me", headers=headers).raise_for_status()
    return write_list(f"me-{srv.name}", [("GET", "/users/me", t, "") for t in tokens])


def refused_after_logout(
    base_url: str, sign_in: Callable[[httpx.Client], str], me_path: str, logout_path: str
) -> dict[str, Any]:
    """Sign in, read the profile, log out, read it again: is the logged-out token refused?

    The second read goes to the same process right after the logout answered.
    """
    with httpx.Client(base_url=base_url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {sign_in(client)}"}
        before = client.get(me_path, headers=headers).status_code
        logout = client.post(logout_path, headers=headers).status_code
        after = client.get(me_path, headers=headers).status_code
    return {
        "me_before_logout": before,
        "logout": logout,
        "me_after_logout": after,
        "refused_after_logout": before == 200 and logout < 300 and after == 401,
    }


def warm_bytecode(peer_env: dict[str, str]) -> None:
    """Import each app once before anything is timed, so both start from compiled bytecode.

    uv installs without compiling (``.pyc`` files are written on first import); without
    this, an app whose libraries were never imported would pay for compiling them at every
    timed start (and in its peak RSS). ``PYTHONDONTWRITEBYTECODE`` is dropped for these
    imports only: the servers read the files whatever it says.
    """
    env = {k: v for k, v in peer_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with open(WORK / "logs" / "setup.log", "ab") as log_file:
        for python, module, cwd in (
            (sys.executable, "user_service.main", WORK),
            (str(PEER_PYTHON), "app.app", PEER),
        ):
            subprocess.run([python, "-c", f"import {module}"], env=env, cwd=cwd,
                           check=True, stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip


def versions() -> str:
    """What the peer's environment runs: fastapi-users and the libraries that bound it."""
    code = (
        "from importlib.metadata import version as v; print(', '.join(f'{p} {v(p)}' for p in "
        "('fastapi-users', 'fastapi-users-db-sqlalchemy', 'fastapi', 'sqlalchemy', 'redis', "
        "'uvicorn', 'uvloop', 'httptools')))"
    )
    done = subprocess.run([str(PEER_PYTHON), "-c", code], capture_output=True, text=True,
                          check=False, timeout=30)  # fmt: skip
    return done.stdout.strip()
