"""Check the settings the deployment files pass against each service's settings class.

A service ignores unknown variables, so a misspelt ``USER_SERVICE_HTTP__TRUSTED_PROXIE``
in a Compose file or ConfigMap would silently do nothing. This script collects the
environment of every service container in ``docker-compose config`` (told apart by image)
and of every rendered Kubernetes ConfigMap (by name), then, with that service's settings
class (``UserServiceSettings``, ``NotificationServiceSettings``):

1. resolves every name with the service's prefix to a field (nested groups through ``__``),
   and accepts only the documented unprefixed platform variables;
2. builds the settings from exactly that environment in a fresh interpreter (secrets that
   come from Secrets or ``.env`` replaced by placeholders), so the values parse and the
   production start-up checks pass.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = {"DATABASE_URL", "REDIS_URL", "HOST", "PORT", "WORKERS", "DATA_DIR", "EVENT_SEAL_KEYS"}
SEAL_KEYS = json.dumps([secrets.token_urlsafe(48)])
COMPOSE_PLACEHOLDERS = {
    "POSTGRES_PASSWORD": "placeholder-password",
    "NOTIFICATION_DB_PASSWORD": "placeholder-password-2",
    "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
    "NOTIFICATION_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
    "EVENT_SEAL_KEYS": SEAL_KEYS,
}


@dataclass(frozen=True)
class Service:
    """A service as the deployment files name it, and its settings class."""

    #: ``module:Class`` of its settings.
    settings: str
    #: Its variables' prefix.
    prefix: str
    #: Substrings of its Compose image name.
    image_hints: tuple[str, ...]
    #: Its Kubernetes ConfigMap (before kustomize appends the content hash).
    config_map: str
    #: What its Kubernetes Secret provides (placeholders here; never in the manifests).
    k8s_secrets: dict[str, str]

    def settings_class(self) -> type[BaseModel]:
        """The settings class itself."""
        module, _, name = self.settings.partition(":")
        cls: type[BaseModel] = getattr(importlib.import_module(module), name)
        return cls


SERVICES = (
    Service(
        "user_service.config:UserServiceSettings",
        "USER_SERVICE_",
        ("user-service", "user_service"),
        "user-service-config",
        {
            "DATABASE_URL": "postgresql+asyncpg://users:placeholder@postgres:5432/users",
            "REDIS_URL": "redis://redis:6379/0",
            "USER_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
            "EVENT_SEAL_KEYS": SEAL_KEYS,
        },
    ),
    Service(
        "notification_service.config:NotificationServiceSettings",
        "NOTIFICATION_SERVICE_",
        ("notification-service", "notification_service"),
        "notification-service-config",
        {
            "DATABASE_URL": "postgresql+asyncpg://notifications:placeholder@postgres:5432/n",
            "REDIS_URL": "redis://redis:6379/0",
            "NOTIFICATION_SERVICE_SECRET_KEY": secrets.token_urlsafe(48),
            "EVENT_SEAL_KEYS": SEAL_KEYS,
        },
    ),
)


def say(message: str) -> None:
    """Print a line prefixed with ``deploy-env:``."""
    sys.stdout.write(f"deploy-env: {message}\n")


def resolve(service: Service, name: str) -> str | None:
    """The problem with a variable name, or None when it names one of the service's settings."""
    if name in PLATFORM:
        return None
    if not name.startswith(service.prefix):
        return f"not a {service.prefix} setting nor a platform variable"
    model = service.settings_class()
    parts = name[len(service.prefix) :].lower().split("__")
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


def compose_service(image: str) -> Service | None:
    """The service a Compose image runs, if it is one of ours."""
    for service in SERVICES:
        if any(hint in image for hint in service.image_hints):
            return service
    return None


Found = dict[str, tuple[Service, dict[str, str]]]


def compose_environments() -> Found:
    """The service and environment of each of our containers in ``docker-compose config``."""
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
    found: Found = {}
    for name, container in config["services"].items():
        service = compose_service(str(container.get("image", "")))
        if service is not None:
            environment = container.get("environment") or {}
            found[f"compose service {name}"] = (
                service,
                {k: str(v) for k, v in environment.items()},
            )
    return found


def kubernetes_environments() -> Found:
    """Each rendered ConfigMap's service, and its data plus what Secrets provide (kubectl)."""
    if not shutil.which("kubectl"):
        say("WARNING: no kubectl; the Kubernetes ConfigMaps were not checked")
        return {}
    found: Found = {}
    for kustomization in sorted((ROOT / "deploy" / "k8s").rglob("kustomization.yaml")):
        directory = kustomization.parent
        out = subprocess.run(  # noqa: S603 - our own directory
            ["kubectl", "kustomize", str(directory)],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
        for doc in yaml.safe_load_all(out.stdout):
            if not (isinstance(doc, dict) and doc.get("kind") == "ConfigMap"):
                continue
            name = doc["metadata"]["name"]
            service = next((s for s in SERVICES if name.rsplit("-", 1)[0] == s.config_map), None)
            if service is None:
                continue
            data = {k: str(v) for k, v in doc["data"].items()}
            label = f"{directory.relative_to(ROOT)} ConfigMap {name}"
            found[label] = (service, {**data, **service.k8s_secrets})
    return found


def builds(service: Service, environment: dict[str, str]) -> str | None:
    """Build the service's settings from exactly ``environment``; the error text, or None."""
    module, _, name = service.settings.partition(":")
    code = (
        "import sys\n"
        "from servicekit.http.client_ip import parse_networks\n"
        f"from {module} import {name}\n"
        "try:\n"
        f"    settings = {name}(_env_file=None)\n"
        "    if not settings.is_production:\n"
        "        sys.exit('not production: the start-up checks did not run')\n"
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
    for where, (service, environment) in environments.items():
        for name in sorted(environment):
            problem = resolve(service, name)
            if problem:
                problems.append(f"{where}: {name}: {problem}")
        error = builds(service, environment)
        if error:
            problems.append(f"{where}: settings do not build: {error}")
        say(f"{where}: {service.settings.partition(':')[2]}, {len(environment)} variables")
    for problem in problems:
        say(problem)
    checked = {service.prefix for service, _ in environments.values()}
    missing = [s.prefix for s in SERVICES if s.prefix not in checked]
    if missing:
        say(f"found no environment to check for {', '.join(missing)}")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
