"""Several ``user-service serve`` processes behind nginx, sharing one PostgreSQL and one Redis.

Each instance is a real process configured like a production replica (production
environment, a signing key file shared by all, nginx as the only trusted proxy); only the
pool sizes are small, because the test machine's PostgreSQL is shared.
"""

from __future__ import annotations

import itertools
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from servicekit.testing import Backends
from servicekit.testing.process import ServiceProcess, free_port

from .nginx import start_nginx

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
        """nginx's ``access.log`` or ``error.log``."""
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
        "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
        "USER_SERVICE_JWT__ISSUER": public_url,
        "USER_SERVICE_EMAIL__FRONTEND_URL": public_url,
        "USER_SERVICE_HTTP__TRUSTED_HOSTS": '["127.0.0.1"]',
        "USER_SERVICE_HTTP__TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "USER_SERVICE_RATE_LIMIT__RULES": json.dumps(RULES),
        "USER_SERVICE_LOCKOUT__THRESHOLD": str(LOCKOUT_THRESHOLD),
        "PROMETHEUS_MULTIPROC_DIR": None,
    }


@pytest.fixture(scope="session")
def cluster(
    servicekit_backends: Backends,
    database_url: str,
    migrated_database: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """``INSTANCES`` replicas behind nginx; every process is killed at the end, whatever happens."""
    if servicekit_backends.database_kind != "postgresql":
        pytest.skip(
            "scale-out needs PostgreSQL: replicas share one database server, and SQLite is "
            "the single-process quick start (start PostgreSQL on 127.0.0.1:5432 or set "
            "TEST_DATABASE_URL)"
        )
    root = tmp_path_factory.mktemp("scale")
    key_file = root / "jwt_private_key.pem"
    # The real command an operator runs; every replica reads the same file.
    subprocess.run([str(SERVE), "keys", "generate", "--out", str(key_file)], check=True)
    proxy_port = free_port()
    public_url = f"http://127.0.0.1:{proxy_port}"
    with ExitStack() as stack:
        instances: list[ServiceProcess] = []
        for i in range(INSTANCES):
            env = instance_env(
                servicekit_backends, database_url, key_file, public_url, root / f"data-{i}"
            )
            log_path = root / f"instance-{i}.log"
            instance = ServiceProcess([str(SERVE), "serve"], log_path=log_path, env=env)
            stack.callback(instance.kill)
            instances.append(instance)
        for instance in instances:  # started together, so they boot in parallel
            instance.wait_ready()
        proxy = start_nginx(root / "nginx", proxy_port, [i.port for i in instances])
        stack.callback(proxy.kill)
        proxy.wait_ready()
        yield Cluster(instances=instances, proxy=proxy)
