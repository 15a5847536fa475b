"""problem+json error responses."""

from __future__ import annotations

import httpx

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, error: str) -> None:
    """``response`` is a problem+json of this status and ``error`` code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == error
