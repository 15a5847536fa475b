"""Run deploy/Dockerfile's steps without Docker, then start what each image would run.

There is no Docker engine on the CI machine, so the images themselves cannot be built here.
This script checks what can be checked on the host, reading the Dockerfile and
.dockerignore rather than repeating them. For each image the file builds (each final
stage: ``user-service``, ``notification-service``), in a scratch folder of its own that
stands in for ``/``:

1. Build stages (the image's ``COPY --from`` sources and their ``FROM`` ancestors): every
   ``COPY`` source is in the build context (.dockerignore applied, the way Docker matches it)
   and only the files Docker would send are copied; every ``RUN`` is executed in the scratch
   folder (``--mount`` flags dropped, the uv cache of the host used), with the ``ENV`` in
   force, inherited through ``FROM <stage>``. So the ``uv sync`` commands run against the
   real lockfile and produce the non-editable virtualenv the image ships.
2. Runtime stages (the image and its ancestors): ``COPY --from`` is replayed; ``RUN`` steps
   (creating the system user) are skipped; the ``ENV`` applies. Then ``dockerfile_images``
   runs the image's commands through its ``ENTRYPOINT`` with production settings and
   throw-away secrets, ``CMD`` (``serve``) with the image's own ``HEALTHCHECK``, and its
   ``STOPSIGNAL``.

Not covered (needs Docker): the base images, the user/permissions, the real file system
layout and Docker's own instruction semantics.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dockerfile_images import PLANS, Image, say
from dockerfile_model import (
    ROOT,
    Instruction,
    Stage,
    build_order,
    copy_from_context,
    lineage,
    load_dockerignore,
    parse_dockerfile,
    split_flags,
    targets,
)

from servicekit.redis.embedded import EmbeddedRedis

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: Container paths that live under the scratch root instead of the host's ``/``.
SCRATCH_PREFIXES = (
    "/app",
    "/src",
    "/var/lib/user-service",
    "/var/lib/notification-service",
    "/run/secrets",
)
#: Values that must differ on the host: its own Python 3.11, and loopback only.
HOST_OVERRIDES = {"UV_PYTHON": "3.11", "HOST": "127.0.0.1"}
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
        "EVENT_SEAL_KEYS",
        "NOTIFICATION_DATABASE_URL",
        "NOTIFICATION_PORT",
    }
)
LEAKY_PREFIXES = ("USER_SERVICE_", "NOTIFICATION_SERVICE_", "SERVICEKIT_", "TEST_", "OTEL_")


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
        #: Folders of host tools standing in for skipped ``COPY --from`` binaries.
        self.tool_dirs: list[str] = []
        #: Each simulated stage's ``ENV``, ``WORKDIR`` and tool folders at its end: what a
        #: stage built ``FROM`` it starts with.
        self.finished: dict[str, tuple[dict[str, str], str, list[str]]] = {}

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
        """Replay a stage's ``ENV``, ``WORKDIR``, ``COPY`` and (if ``execute_run``) ``RUN``.

        A stage built ``FROM`` an earlier one starts with that stage's ``ENV`` and ``WORKDIR``.
        """
        env, workdir, tools = self.finished.get(stage.base, ({}, "/", []))
        self.env, self.workdir, self.tool_dirs = dict(env), workdir, list(tools)
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
        self.finished[stage.name] = (dict(self.env), self.workdir, list(self.tool_dirs))

    def copy(self, ins: Instruction) -> None:
        """Replay a ``COPY`` from the build context or an earlier stage (else a host tool)."""
        flags, words = split_flags(ins.args)
        *sources, dest = words
        source_stage = flags.get("from")
        if source_stage is not None:
            if source_stage not in self.finished:
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


def main() -> int:
    """For each image: simulate the stages it is built from, then run it (``dockerfile_images``)."""
    stages = parse_dockerfile(DOCKERFILE.read_text())
    images = targets(stages)
    unknown = [t.name for t in images if t.name not in PLANS]
    if unknown:
        raise SystemExit(f"no smoke plan for the image(s) {', '.join(unknown)}: add one")
    with tempfile.TemporaryDirectory(prefix="dockerfile-smoke-") as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis")
        redis_url = redis.start()  # shared by the images, as in Compose
        try:
            for target in images:
                sim = Simulation(Path(tmp) / target.name)
                chain = lineage(stages, target)
                for stage in build_order(stages, target):
                    say(f"image {target.name}: stage {stage.name} (scratch root {sim.root})")
                    sim.run_stage(stage, execute_run=stage not in chain)
                PLANS[target.name](Image(sim, chain, redis_url))
        finally:
            redis.stop()
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
