"""Several ``user-service serve`` processes behind nginx, sharing one PostgreSQL and one Redis.

The fixture starting them is here; how each replica is configured is in ``replicas.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from servicekit.testing import Backends
from servicekit.testing.process import ServiceProcess, free_port

from .nginx import start_nginx
from .replicas import INSTANCES, SERVE, Cluster, instance_env


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
