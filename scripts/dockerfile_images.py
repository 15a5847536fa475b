"""What the smoke run does with each image deploy/Dockerfile builds, once its stages are replayed.

Each image is run through its own ``ENTRYPOINT`` with the runtime stages' ``ENV``, production
settings and throw-away secrets, the way Compose and Kubernetes run it: its one-off commands,
then ``CMD`` (``serve``) polled with the image's own ``HEALTHCHECK`` until healthy,
``/health/ready`` answering 200, and ``STOPSIGNAL`` ending it cleanly. Both images share one
Redis, as in Compose. A new image needs a plan in :data:`PLANS` (the smoke run refuses an
image without one).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from servicekit.testing.process import free_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockerfile_model import Stage
    from dockerfile_smoke import Simulation

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


def say(message: str) -> None:
    """Print a line prefixed with ``dockerfile-smoke:``."""
    sys.stdout.write(f"dockerfile-smoke: {message}\n")
    sys.stdout.flush()


class Image:
    """One image's entrypoint, command, health check and stop signal, run on the host."""

    def __init__(self, sim: Simulation, chain: list[Stage], redis_url: str) -> None:
        from dockerfile_model import exec_form, last

        self.sim = sim
        self.name = chain[-1].name
        self.entrypoint = exec_form(chain, "ENTRYPOINT")
        self.cmd = exec_form(chain, "CMD")
        self.healthcheck = exec_form(chain, "HEALTHCHECK")
        self.stop_signal = getattr(signal, last(chain, "STOPSIGNAL"))
        self.cwd = sim.path(sim.workdir)
        self.port = free_port()
        sim.path(sim.env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)  # `RUN install -d`
        self.env = {
            **sim.base_env(),
            **sim.env,
            "PORT": str(self.port),
            "DATABASE_URL": f"sqlite+aiosqlite:///{sim.root / 'smoke.db'}",
            "REDIS_URL": redis_url,
            "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
        }

    def require_production(self, variable: str) -> None:
        """Fail unless the image itself sets ``variable=production``."""
        if self.sim.env.get(variable) != "production":
            raise SystemExit(f"the {self.name} image does not default to {variable}=production")

    def lacks(self, package: str) -> None:
        """Fail if the image's Python can import ``package`` (another service's code)."""
        python = self.sim.path("/app/.venv/bin/python")
        probe = subprocess.run(  # noqa: S603 - the image's own interpreter
            [str(python), "-c", f"import {package}"], env=self.env, capture_output=True, check=False
        )
        if probe.returncode == 0:
            raise SystemExit(f"the {self.name} image carries {package}")
        say(f"  {package} is not in the image")

    def run(self, *args: str, stdin: str | None = None) -> str:
        """Run a one-off command through the entrypoint; its output, or exit on failure."""
        say(f"  {' '.join([*self.entrypoint, *args])}")
        done = subprocess.run(  # noqa: S603 - the image's entrypoint
            [*self.entrypoint, *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            text=True,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"{self.name}: `{' '.join(args)}` failed with {done.returncode}")
        return done.stdout

    def start(self, args: list[str], log_name: str, **env: str) -> Process:
        """Start a long-running command through the entrypoint (``env`` added)."""
        say(f"  {' '.join([*self.entrypoint, *args])}")
        return Process(self, args, log_name, env)

    def serve(self, **env: str) -> None:
        """``CMD`` until the ``HEALTHCHECK`` passes and ``/health/ready`` is 200, then stop it."""
        server = self.start(self.cmd, "serve.log", **env)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not server.healthy():
                if time.monotonic() > deadline:
                    raise server.fail("HEALTHCHECK never passed")
                time.sleep(0.3)
            say(f"  HEALTHCHECK passed (127.0.0.1:{self.port})")
            url = f"http://127.0.0.1:{self.port}/health/ready"
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status != 200:
                    raise server.fail(f"/health/ready answered {response.status}")
            say("  /health/ready 200")
            server.stop()
        finally:
            server.kill()


class Process:
    """A command of an image running in the background, its output in a log file."""

    def __init__(self, image: Image, args: list[str], log_name: str, env: dict[str, str]) -> None:
        self.image = image
        self.args = args
        self.log_path = image.sim.root / log_name
        self.env = {**image.env, **env}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the image's entrypoint
                [*image.entrypoint, *args],
                cwd=image.cwd,
                env=self.env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def fail(self, message: str) -> SystemExit:
        """An exit carrying the process's output."""
        sys.stderr.write(self.log_path.read_text(errors="replace"))
        return SystemExit(f"{self.image.name} {' '.join(self.args)}: {message}")

    def healthy(self) -> bool:
        """Whether the image's ``HEALTHCHECK`` command passes now (fails if it exited)."""
        if self.process.poll() is not None:
            raise self.fail(f"exited with {self.process.returncode}")
        check = subprocess.run(  # noqa: S603 - the image's HEALTHCHECK
            self.image.healthcheck,
            cwd=self.image.cwd,
            env=self.env,
            capture_output=True,
            check=False,
        )
        return check.returncode == 0

    def wait_for_log(self, text: str) -> None:
        """Wait until ``text`` appears in the output (fails if the process exits first)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while text not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise self.fail(f"exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise self.fail(f"never logged {text!r}")
            time.sleep(0.2)
        say(f"  logged {text!r}")

    def stop(self) -> None:
        """Send the image's ``STOPSIGNAL``; fail unless it exits 0 in time."""
        started = time.monotonic()
        self.process.send_signal(self.image.stop_signal)
        code = self.process.wait(timeout=STOP_TIMEOUT_S)
        name = self.image.stop_signal.name
        took = time.monotonic() - started
        say(f"  {' '.join(self.args)}: {name}: exited {code} after {took:.1f}s")
        if code != 0:
            raise self.fail(f"exited with {code} on {name}")

    def kill(self) -> None:
        """Kill the process group if it still runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def user_service(image: Image) -> None:
    """Key generation, migration, an administrator, then ``serve``."""
    image.require_production("USER_SERVICE_ENVIRONMENT")
    image.lacks("notification_service")
    key_file = image.sim.path("/run/secrets/jwt_private_key")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    image.env["USER_SERVICE_SECRET_KEY"] = secrets.token_urlsafe(48)
    image.env["USER_SERVICE_JWT__PRIVATE_KEY_FILE"] = str(key_file)
    image.run("keys", "generate", "--out", str(key_file))
    image.run("migrate")
    image.run(
        "create-admin",
        "--email",
        "admin@example.com",
        "--password-stdin",
        stdin="smoke-test-password-1\n",
    )
    image.serve()


def notification_service(image: Image) -> None:
    """Migration, the dead-letter listing, ``worker``, then ``serve`` without in-process loops.

    As in Compose and Kubernetes: the API processes leave the consumers and the courier to
    the worker, which must start (consumer group and courier up) and stop cleanly.
    """
    image.require_production("NOTIFICATION_SERVICE_ENVIRONMENT")
    image.lacks("user_service")
    image.env["NOTIFICATION_SERVICE_SECRET_KEY"] = secrets.token_urlsafe(48)
    image.env["NOTIFICATION_SERVICE_EMAIL__BACKEND"] = "smtp"
    image.env["NOTIFICATION_SERVICE_EMAIL__SMTP__HOST"] = "127.0.0.1"
    image.env["NOTIFICATION_SERVICE_EMAIL__SMTP__PORT"] = str(free_port())
    image.run("migrate")
    listing = image.run("events", "dlq", "list")
    say(f"  dead letters: {listing.strip() or '(none)'}")
    worker = image.start(["worker"], "worker.log")
    try:
        worker.wait_for_log("notification.worker.started")
        image.serve(
            NOTIFICATION_SERVICE_CONSUMER__IN_PROCESS="false",
            NOTIFICATION_SERVICE_COURIER__IN_PROCESS="false",
        )
        worker.stop()
    finally:
        worker.kill()


#: The image (its final stage's name) → how to smoke-test it.
PLANS: dict[str, Callable[[Image], Any]] = {
    "user-service": user_service,
    "notification-service": notification_service,
}
