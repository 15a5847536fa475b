"""Check the settings the deployment files pass against the service's settings classes.

The service ignores unknown variables, so a misspelt ``USER_SERVICE_HTTP__TRUSTED_PROXIE``
in a Compose file or ConfigMap would silently do nothing. This script collects the
environment of every user-service container in ``docker-compose config`` and in the
rendered Kubernetes ConfigMaps, then:

1. resolves every ``USER_SERVICE_*`` name to a field of ``UserServiceSettings`` (nested
   groups through ``__``), and accepts only the documented unprefixed platform variables;
2. builds ``UserServiceSettings`` from exactly that environment in a fresh interpreter
   (secrets that come from Secrets or ``.env`` replaced by placeholders), so the values
   parse and the production start-up checks pass.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from user_service.config import UserServiceSettings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "USER_SERVICE_"
PLATFORM = {"DATABASE_URL", "REDIS_URL", "HOST", "PORT", "WORKERS", "DATA_DIR", "EVENT_SEAL_KEYS"}
#: What Kubernetes Secrets provide (placeholders here; never in the manifests).
K8S_SECRETS = {
    "DATABASE_URL": "postgresql+asyncpg://users:placeholder@postgres:5432/users",
    "REDIS_URL": "redis://redis:6379/0",
    "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
    "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
}
COMPOSE_PLACEHOLDERS = {
    "POSTGRES_PASSWORD": "placeholder-password",
    "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
    "EVENT_SEAL_KEYS": json.dumps([secrets.token_urlsafe(48)]),
}
SERVICE_IMAGE_HINTS = ("user-service", "user_service")


def say(message: str) -> None:
    """Print a line prefixed with ``deploy-env:``."""
    sys.stdout.write(f"deploy-env: {message}\n")


def resolve(name: str) -> str | None:
    """The problem with a variable name, or None when it names a setting."""
    if name in PLATFORM:
        return None
    if not name.startswith(PREFIX):
        return "not a USER_SERVICE_ setting nor a platform variable"
    model: type[BaseModel] = UserServiceSettings
    parts = name[len(PREFIX) :].lower().split("__")
    for i, part in enumerate(parts):
        fields = {n.lower(): f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return f"{model.__name__} has no field {part!r}"
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return f"{part!r} is not a settings group"
            model = annotation
    return None


def compose_environments() -> dict[str, dict[str, str]]:
    """The environment of each user-service container in ``docker-compose config``."""
    env = {**os.environ, **COMPOSE_PLACEHOLDERS}
    out = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],  # noqa: S607
        cwd=ROOT / "deploy",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    found = {}
    for name, service in config["services"].items():
        if any(hint in str(service.get("image", "")) for hint in SERVICE_IMAGE_HINTS):
            found[f"compose service {name}"] = {
                k: str(v) for k, v in (service.get("environment") or {}).items()
            }
    return found


def kubernetes_environments() -> dict[str, dict[str, str]]:
    """The data of each rendered ConfigMap plus the variables Secrets provide (needs kubectl)."""
    if not shutil.which("kubectl"):
        say("WARNING: no kubectl; the Kubernetes ConfigMaps were not checked")
        return {}
    found = {}
    for kustomization in sorted((ROOT / "deploy" / "k8s").rglob("kustomization.yaml")):
        directory = kustomization.parent
        out = subprocess.run(  # noqa: S603 - our own directory
            ["kubectl", "kustomize", str(directory)],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
        for doc in yaml.safe_load_all(out.stdout):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                label = f"{directory.relative_to(ROOT)} ConfigMap {doc['metadata']['name']}"
                found[label] = {**{k: str(v) for k, v in doc["data"].items()}, **K8S_SECRETS}
    return found


def builds(environment: dict[str, str]) -> str | None:
    """Build the settings from exactly ``environment``; the error text, or None."""
    code = (
        "import sys\n"
        "from servicekit.http.client_ip import parse_networks\n"
        "from user_service.config import UserServiceSettings\n"
        "try:\n"
        "    settings = UserServiceSettings(_env_file=None)\n"
        "    parse_networks(settings.http.trusted_proxies)\n"
        "except ValueError as exc:\n"  # pydantic's ValidationError is a ValueError
        "    sys.exit(str(exc))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), **environment}
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    lines = [line.strip() for line in done.stderr.splitlines() if "errors.pydantic" not in line]
    return None if done.returncode == 0 else " | ".join(line for line in lines if line)


def main() -> int:
    """Check every environment found; 1 when one has a problem or none was found."""
    environments = {**compose_environments(), **kubernetes_environments()}
    problems = []
    for where, environment in environments.items():
        for name in sorted(environment):
            problem = resolve(name)
            if problem:
                problems.append(f"{where}: {name}: {problem}")
        error = builds(environment)
        if error:
            problems.append(f"{where}: settings do not build: {error}")
        say(f"{where}: {len(environment)} variables")
    for problem in problems:
        say(problem)
    if not environments:
        say("found no user-service environment to check")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
