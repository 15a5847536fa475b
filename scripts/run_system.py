"""``make run``: the whole system in one process tree, on a laptop or in a test.

Starts one embedded Redis (unless ``REDIS_URL`` is set) shared by both services, then
``user-service serve`` on ``PORT`` (8000) and ``notification-service serve`` on
``NOTIFICATION_PORT`` (8001), each with its relay or its event consumers and courier in
process, and each on a SQLite file of its own in ``DATA_DIR`` unless ``DATABASE_URL`` (the
user service) / ``NOTIFICATION_DATABASE_URL`` (the notification service) are set: every
service owns its database. The notification service trusts the user service's tokens and
points the links in its mails at the user service's pages.

Ctrl-C (or SIGTERM) stops both services gracefully, then the Redis; if one service exits,
the other is stopped too. Children die with this process even when it is killed (Linux's
parent-death signal), so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from servicekit.redis.embedded import EmbeddedRedis, die_with_parent

STOP_TIMEOUT_S = 30.0


def _environments(base: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The command and environment of each service."""
    host = base.get("HOST", "127.0.0.1")
    user_port = base.get("PORT", "8000")
    users_url = f"http://{host}:{user_port}"
    issuer = base.get("USER_SERVICE_JWT__ISSUER", users_url)
    user_env = {**base, "PORT": user_port, "USER_SERVICE_JWT__ISSUER": issuer}
    notification_env = {
        **base,
        "PORT": base.get("NOTIFICATION_PORT", "8001"),
        "NOTIFICATION_SERVICE_USERS__URL": base.get("NOTIFICATION_SERVICE_USERS__URL", users_url),
        "NOTIFICATION_SERVICE_USERS__ISSUER": issuer,
        "NOTIFICATION_SERVICE_EMAIL__FRONTEND_URL": base.get(
            "NOTIFICATION_SERVICE_EMAIL__FRONTEND_URL", users_url
        ),
    }
    notification_env.pop("DATABASE_URL", None)  # its own database, never the user service's
    if base.get("NOTIFICATION_DATABASE_URL"):
        notification_env["DATABASE_URL"] = base["NOTIFICATION_DATABASE_URL"]
    return [("user_service", user_env), ("notification_service", notification_env)]


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    """Run until interrupted or until a service exits; returns that service's status."""
    env = dict(os.environ)
    data_dir = Path(env.get("DATA_DIR", "data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    redis: EmbeddedRedis | None = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(data_dir)
        env["REDIS_URL"] = redis.start()
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        for package, child_env in _environments(env):
            command = [sys.executable, "-m", f"{package}.cli", "serve"]
            # A session of its own: a terminal's Ctrl-C reaches this process alone, which
            # then stops each service once (a second signal would cut uvicorn's drain short).
            children.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    command, env=child_env, preexec_fn=die_with_parent, start_new_session=True
                )
            )
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        _stop(children)
        if redis is not None:
            redis.stop()
    return next((child.returncode for child in children if child.returncode), 0)


if __name__ == "__main__":
    sys.exit(main())
