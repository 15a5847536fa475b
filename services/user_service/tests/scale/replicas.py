"""The replicas of the scale-out tests: their configuration and the clients talking to them.

Each instance is a real process configured like a production replica (production
environment, a signing key file shared by all, nginx as the only trusted proxy); only the
pool sizes are small, because the test machine's PostgreSQL is shared.
"""

from __future__ import annotations

import itertools
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from servicekit.testing import Backends
from servicekit.testing.process import ServiceProcess

SERVE = Path(sys.executable).parent / "user-service"
INSTANCES = 3
#: Failed sign-ins that lock an account (the instances' USER_SERVICE_LOCKOUT__THRESHOLD).
LOCKOUT_THRESHOLD = 3
#: Sign-in attempts per client address and minute (the instances' ``login_ip`` rule).
LOGIN_IP_LIMIT = 4
#: Shared by every instance (derives rotated refresh tokens); production wants >= 32 chars.
SECRET_KEY = secrets.token_urlsafe(48)
RULES = {
    "login_ip": {"limit": LOGIN_IP_LIMIT, "period_s": 60},
    # The kill test registers through nginx, so every registration comes from one address.
    "register_ip": {"limit": 100_000},
}


@dataclass(frozen=True)
class Cluster:
    """The running instances and the proxy in front of them."""

    instances: list[ServiceProcess]
    proxy: ServiceProcess

    @property
    def proxy_url(self) -> str:
        return self.proxy.base_url

    @property
    def a(self) -> str:
        return self.instances[0].base_url

    @property
    def b(self) -> str:
        return self.instances[1].base_url

    def proxy_log(self, name: str) -> str:
        """Nginx's ``access.log`` or ``error.log``."""
        return (self.proxy.log_path.parent / name).read_text(errors="replace")

    @property
    def victim(self) -> ServiceProcess:
        """The instance the kill test may kill; the other tests talk to A and B only."""
        return self.instances[-1]


_addresses = itertools.count(1)


def forwarded_client() -> dict[str, str]:
    """Headers of a new client behind the trusted proxy (a fresh documentation address).

    The instances trust 127.0.0.1, so requests sent to them directly with this header count
    as this client's, exactly as when nginx forwards them: every test gets its own budget.
    """
    n = next(_addresses)
    return {"X-Forwarded-For": f"198.51.{100 + n // 250}.{n % 250 + 1}"}


def instance_env(
    backends: Backends, database_url: str, key_file: Path, public_url: str, data_dir: Path
) -> dict[str, str | None]:
    """The environment of one replica (compare deploy/docker-compose.yml)."""
    return {
        "USER_SERVICE_ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": backends.redis_url,
        # Under the run's prefix, apart from the keys other tests of the run clean up.
        "USER_SERVICE_REDIS__KEY_PREFIX": f"{backends.redis_key_prefix}scale:",
        "WORKERS": "1",
        "DATA_DIR": str(data_dir),
        "USER_SERVICE_DATABASE__POOL_SIZE": "4",
        "USER_SERVICE_DATABASE__MAX_OVERFLOW": "4",
        "USER_SERVICE_SECRET_KEY": SECRET_KEY,
        "EVENT_SEAL_KEYS": json.dumps([SECRET_KEY]),
        "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
        "USER_SERVICE_JWT__ISSUER": public_url,
        "USER_SERVICE_EMAIL__FRONTEND_URL": public_url,
        "USER_SERVICE_HTTP__TRUSTED_HOSTS": '["127.0.0.1"]',
        "USER_SERVICE_HTTP__TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "USER_SERVICE_RATE_LIMIT__RULES": json.dumps(RULES),
        "USER_SERVICE_LOCKOUT__THRESHOLD": str(LOCKOUT_THRESHOLD),
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
