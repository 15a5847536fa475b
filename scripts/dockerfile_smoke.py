"""Run deploy/Dockerfile's steps without Docker, then start what it built.

There is no Docker engine on the CI machine, so the image itself cannot be built here.
This script checks what can be checked on the host, reading the Dockerfile and
.dockerignore rather than repeating them:

1. Build stage: every ``COPY`` source is in the build context (.dockerignore applied, the
   way Docker matches it) and only the files Docker would send are copied; every ``RUN`` is
   executed in a scratch folder that stands in for ``/`` (``--mount`` flags dropped, the uv
   cache of the host used), with the stage's ``ENV``. So the ``uv sync`` commands run
   against the real lockfile and produce the non-editable virtualenv the image ships.
2. Runtime stage: ``COPY --from`` is replayed; ``RUN`` steps (creating the system user) are
   skipped; the stage's ``ENV`` applies. Then, through ``ENTRYPOINT``, with production
   settings and throw-away secrets: ``keys generate``, ``migrate``, ``create-admin``, and
   ``CMD`` (``serve``) polled with the image's own ``HEALTHCHECK`` command until healthy,
   ``/health/ready`` answering 200, and finally a ``STOPSIGNAL`` that must end it cleanly.

Not covered (needs Docker): the base images, the user/permissions, the real file system
layout and Docker's own instruction semantics.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dockerfile_model import (
    ROOT,
    Instruction,
    Stage,
    copy_from_context,
    exec_form,
    load_dockerignore,
    parse_dockerfile,
    split_flags,
)

from servicekit.testing.process import free_port

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: Container paths that live under the scratch root instead of the host's ``/``.
SCRATCH_PREFIXES = ("/app", "/src", "/var/lib/user-service", "/run/secrets")
#: Values that must differ on the host: its own Python 3.11, and loopback only.
HOST_OVERRIDES = {"UV_PYTHON": "3.11", "HOST": "127.0.0.1"}
START_TIMEOUT_S = 60.0
#: Host variables that would change what the steps or the service do.
LEAKY_VARIABLES = frozenset(
    {
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "DATABASE_URL",
        "REDIS_URL",
        "HOST",
        "PORT",
        "WORKERS",
        "DATA_DIR",
        "PROMETHEUS_MULTIPROC_DIR",
        "UV_PROJECT_ENVIRONMENT",
    }
)
LEAKY_PREFIXES = ("USER_SERVICE_", "SERVICEKIT_", "TEST_", "OTEL_")


def say(message: str) -> None:
    """Print a line prefixed with ``dockerfile-smoke:``."""
    sys.stdout.write(f"dockerfile-smoke: {message}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- Dockerfile


# ---------------------------------------------------------------- .dockerignore


# ---------------------------------------------------------------- simulation
class Simulation:
    """The scratch root standing in for the image's file system, and the current stage."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rules = load_dockerignore(DOCKERIGNORE)
        self.env: dict[str, str] = {}
        self.workdir = "/"
        self.simulated: set[str] = set()
        #: Folders of host tools standing in for skipped ``COPY --from`` binaries.
        self.tool_dirs: list[str] = []

    def path(self, container_path: str) -> Path:
        """Where a container path lives: scratch paths under the root, others on the host."""
        if container_path.startswith(SCRATCH_PREFIXES):
            return self.root / container_path.lstrip("/")
        return Path(container_path)

    def remap(self, value: str) -> str:
        """Rewrite every scratch path inside a value (``PATH`` lists included)."""
        return ":".join(
            str(self.path(part)) if part.startswith(SCRATCH_PREFIXES) else part
            for part in value.split(":")
        )

    def expand(self, value: str) -> str:
        """Substitute ``$NAME`` and ``${NAME}`` from the stage's ``ENV``, else the host's."""

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return self.env.get(name, os.environ.get(name, ""))

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, value)

    def base_env(self) -> dict[str, str]:
        """The host environment (proxies, CA bundles), less what would leak into the run.

        Without the service's settings or an active virtualenv, which would leak into the
        steps and the smoke run.
        """
        return {
            k: v
            for k, v in os.environ.items()
            if k not in LEAKY_VARIABLES and not k.startswith(LEAKY_PREFIXES)
        }

    def run_env(self) -> dict[str, str]:
        """A ``RUN`` step's environment: the stage's ``ENV`` over the host's.

        The host tools found for skipped ``COPY --from`` steps come first on ``PATH``.
        """
        env = {**self.base_env(), **self.env}
        env["PATH"] = os.pathsep.join([*self.tool_dirs, env.get("PATH", os.defpath)])
        return env

    def host_tool(self, ins: Instruction, dest: str) -> None:
        """Find the host's copy of a binary the image takes from another image.

        uv installed with pip is reached as ``python3 -m uv`` and is not on ``PATH``;
        ``uv run`` names the running binary in ``$UV``.
        """
        name = Path(dest).name
        found = shutil.which(name) or (os.environ.get("UV") if name == "uv" else None)
        if found is None:
            raise SystemExit(f"line {ins.line}: COPY --from needs {name} on the host")
        self.tool_dirs.append(str(Path(found).parent))
        say(f"  line {ins.line}: COPY --from skipped, host {name} used: {found}")

    def run_stage(self, stage: Stage, *, execute_run: bool) -> None:
        """Replay a stage's ``ENV``, ``WORKDIR``, ``COPY`` and (if ``execute_run``) ``RUN``."""
        self.env, self.workdir, self.tool_dirs = {}, "/", []
        for ins in stage.instructions:
            if ins.keyword == "ENV":
                for word in shlex.split(ins.args):
                    key, _, value = word.partition("=")
                    self.env[key] = HOST_OVERRIDES.get(key, self.remap(self.expand(value)))
            elif ins.keyword == "WORKDIR":
                self.workdir = ins.args
                self.path(self.workdir).mkdir(parents=True, exist_ok=True)
            elif ins.keyword == "COPY":
                self.copy(ins)
            elif ins.keyword == "RUN":
                if not execute_run:
                    say(f"  line {ins.line}: RUN skipped (system user and folders)")
                    continue
                command = re.sub(r"^(?:--\S+\s+)*", "", ins.args)  # drop --mount=…
                say(f"  line {ins.line}: RUN {' '.join(command.split())}")
                step = subprocess.run(  # noqa: S603 - the Dockerfile's own command
                    ["bash", "-euo", "pipefail", "-c", command],  # noqa: S607
                    cwd=self.path(self.workdir),
                    env=self.run_env(),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if step.returncode != 0:
                    sys.stderr.write(step.stdout + step.stderr)
                    raise SystemExit(f"line {ins.line}: RUN failed with {step.returncode}")
        self.simulated.add(stage.name)

    def copy(self, ins: Instruction) -> None:
        """Replay a ``COPY`` from the build context or an earlier stage (else a host tool)."""
        flags, words = split_flags(ins.args)
        *sources, dest = words
        source_stage = flags.get("from")
        if source_stage is not None:
            if source_stage not in self.simulated:
                self.host_tool(ins, dest)
                return
            for source in sources:
                src, dst = self.path(source), self.path(dest)
                if src != dst:
                    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
            say(f"  line {ins.line}: COPY --from={source_stage} {' '.join(sources)}")
            return
        base = dest if dest.startswith("/") else f"{self.workdir.rstrip('/')}/{dest}"
        for source in sources:
            target = self.path(base)
            if dest.endswith("/") or len(sources) > 1:
                target = target / Path(source).name
            count = copy_from_context(source, target, self.rules)
            say(f"  line {ins.line}: COPY {source} ({count} files)")


def smoke(sim: Simulation, runtime: Stage) -> None:
    """Run the runtime stage's entrypoint: set-up commands, then serve, health-check and stop."""
    entrypoint = exec_form(runtime, "ENTRYPOINT")
    cmd = exec_form(runtime, "CMD")
    healthcheck = exec_form(runtime, "HEALTHCHECK")
    stop = next(i.args for i in runtime.instructions if i.keyword == "STOPSIGNAL")
    key_file = sim.path("/run/secrets/jwt_private_key")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    Path(sim.env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)  # `RUN install -d` in the image
    port = free_port()
    env = {
        **sim.base_env(),
        **sim.env,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{sim.root / 'smoke.db'}",
        "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
        "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
        "USER_SERVICE_JWT__PRIVATE_KEY_FILE": str(key_file),
    }
    if env.get("USER_SERVICE_ENVIRONMENT") != "production":
        raise SystemExit("the image does not default to USER_SERVICE_ENVIRONMENT=production")
    cwd = sim.path(sim.workdir)

    def run(*args: str, stdin: str | None = None) -> None:
        say(f"  {' '.join([*entrypoint, *args])}")
        done = subprocess.run(  # noqa: S603 - the image's entrypoint
            [*entrypoint, *args],
            cwd=cwd,
            env=env,
            input=stdin,
            text=True,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"`{' '.join(args)}` failed with {done.returncode}")

    run("keys", "generate", "--out", str(key_file))
    run("migrate")
    run(
        "create-admin",
        "--email",
        "admin@example.com",
        "--password-stdin",
        stdin="smoke-test-password-1\n",
    )

    say(f"  {' '.join([*entrypoint, *cmd])} on 127.0.0.1:{port}")
    log_path = sim.root / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(  # noqa: S603 - the image's entrypoint
        [*entrypoint, *cmd],
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def fail(message: str) -> SystemExit:
        log.flush()
        sys.stderr.write(log_path.read_text())
        return SystemExit(message)

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                raise fail(f"serve exited with {server.returncode}")
            check = subprocess.run(  # noqa: S603 - the image's HEALTHCHECK
                healthcheck, cwd=cwd, env=env, capture_output=True, check=False
            )
            if check.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise fail("HEALTHCHECK never passed")
            time.sleep(0.3)
        say("  HEALTHCHECK passed")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as r:
            if r.status != 200:
                raise fail(f"/health/ready answered {r.status}")
        say("  /health/ready 200")
        started = time.monotonic()
        server.send_signal(getattr(signal, stop))
        code = server.wait(timeout=40)
        say(f"  {stop}: exited {code} after {time.monotonic() - started:.1f}s")
        if code != 0:
            raise fail(f"serve exited with {code} on {stop}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def main() -> int:
    """Simulate the build stage, then the runtime stage, then run the smoke test."""
    stages = parse_dockerfile(DOCKERFILE.read_text())
    build = next(s for s in stages if s.name == "build")
    runtime = stages[-1]
    with tempfile.TemporaryDirectory(prefix="dockerfile-smoke-") as tmp:
        sim = Simulation(Path(tmp))
        say(f"stage {build.name} (scratch root {tmp})")
        sim.run_stage(build, execute_run=True)
        say(f"stage {runtime.name}")
        sim.run_stage(runtime, execute_run=False)
        smoke(sim, runtime)
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
