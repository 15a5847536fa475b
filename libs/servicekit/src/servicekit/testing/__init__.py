"""Test support: the pytest plugin (registered as ``servicekit``) and its helpers."""

from servicekit.testing.backends import (
    BackendPlan,
    Backends,
    plan_backends,
    start_backends,
)
from servicekit.testing.client import app_client, override_db_session

__all__ = [
    "BackendPlan",
    "Backends",
    "app_client",
    "override_db_session",
    "plan_backends",
    "start_backends",
]
