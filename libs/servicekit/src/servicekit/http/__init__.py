"""The HTTP edge: the chassis middleware, problem+json errors, client address and health."""

from servicekit.http.client_ip import client_ip, parse_networks
from servicekit.http.error_handlers import install_error_handlers
from servicekit.http.health import Readiness, health_router
from servicekit.http.middleware import ChassisMiddleware
from servicekit.http.problem import Problem, problem_body, problem_response, problem_responses

__all__ = [
    "ChassisMiddleware",
    "Problem",
    "Readiness",
    "client_ip",
    "health_router",
    "install_error_handlers",
    "parse_networks",
    "problem_body",
    "problem_response",
    "problem_responses",
]
