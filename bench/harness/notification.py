"""The notification service in the run: its settings, its database and its server.

It is the resource-service path of ``servicekit.auth``: it verifies the user service's access
tokens against that service's JWKS and its denylist in the same Redis.
"""

from __future__ import annotations

import secrets
import subprocess

from harness.common import METRICS_TOKEN, NOTIFICATION_SERVICE, WORK, log
from harness.servers import Server
from servicekit.testing.process import free_port

PREFERENCES = "/api/v1/notification-preferences"


def environment(service_env: dict[str, str], database_url: str) -> dict[str, str]:
    """Production settings beside the user service's: its Redis, key prefix and seal keys.

    ``service_env`` is the user service's environment; its ``REDIS_URL``, ``HOST``,
    ``WORKERS``, ``DATA_DIR`` and ``EVENT_SEAL_KEYS`` (production needs them equal) are
    kept, its ``USER_SERVICE_*`` settings are not. The secret is made up for the run.
    """
    from user_service.config import UserServiceSettings

    jwt = UserServiceSettings.model_fields["jwt"].get_default(call_default_factory=True)
    env = {k: v for k, v in service_env.items() if not k.upper().startswith("USER_SERVICE_")}
    return {
        **env,
        "DATABASE_URL": database_url,
        "NOTIFICATION_SERVICE_ENVIRONMENT": "production",
        "NOTIFICATION_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
        "NOTIFICATION_SERVICE_LOGGING__ACCESS_LOG": "false",
        "NOTIFICATION_SERVICE_LOGGING__LEVEL": "WARNING",
        "NOTIFICATION_SERVICE_SERVER__GRACEFUL_TIMEOUT_S": "5",
        "NOTIFICATION_SERVICE_HTTP__METRICS_TOKEN": METRICS_TOKEN,
        # The denylist the user service writes is read under the same prefix.
        "NOTIFICATION_SERVICE_REDIS__KEY_PREFIX": service_env.get(
            "USER_SERVICE_REDIS__KEY_PREFIX", ""
        ),
        "NOTIFICATION_SERVICE_USERS__AUDIENCE": service_env.get(
            "USER_SERVICE_JWT__AUDIENCE", jwt.audience
        ),
    }


def migrate(env: dict[str, str]) -> None:
    """``notification-service migrate`` on the run's notification database."""
    with open(WORK / "logs" / "setup.log", "ab") as log_file:
        subprocess.run(
            [NOTIFICATION_SERVICE, "migrate"],
            env=env, cwd=WORK, check=True, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    log("notification database migrated")


def server(name: str, env: dict[str, str], users: Server) -> Server:
    """A one-worker notification service (not started) trusting the tokens of ``users``."""
    env = {
        **env,
        "PORT": str(free_port()),
        "WORKERS": "1",
        "NOTIFICATION_SERVICE_USERS__URL": users.url,
        # The user service's issuer defaults to its served address (HOST and PORT).
        "NOTIFICATION_SERVICE_USERS__ISSUER": users.env.get("USER_SERVICE_JWT__ISSUER", users.url),
    }
    cmd = [NOTIFICATION_SERVICE, "serve"]
    return Server(name, cmd, env, ready="/health/ready", kind="notification")
