"""The OpenAPI document: the shared ``Problem`` schema and the errors every operation may answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi

from servicekit.http.problem import Problem, problem_responses

if TYPE_CHECKING:
    from fastapi import FastAPI


def install_openapi(app: FastAPI, *, rate_limited_prefix: str | None = None) -> None:
    """Publish the shared ``Problem`` schema and the errors every operation may answer.

    ``rate_limited_prefix``: paths the middleware's ``global_ip`` limit covers (429), or
    ``None`` when rate limiting is off.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            # Nested models (FieldError) become components too, so every `$ref` resolves.
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            _document_common_errors(schema, rate_limited_prefix)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_common_errors(schema: dict[str, Any], rate_limited_prefix: str | None) -> None:
    """Document the errors every operation may answer, as problem+json.

    An operation with a body may answer 400: FastAPI refuses a body it cannot decode (e.g.
    JSON that is not UTF-8) before validation runs. FastAPI's default 422 entry names its own
    ``HTTPValidationError`` JSON; the handlers answer a ``Problem`` instead. Any operation may
    answer 503 (a request cut off by a shutdown, a database that cannot be reached), and one
    under the rate-limited prefix 429 (the middleware's ``global_ip`` limit).
    """
    problems = problem_responses(400, 422, 429, 503)
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", problems[400])
            if rate_limited_prefix is not None and path.startswith(rate_limited_prefix):
                responses.setdefault("429", problems[429])
            responses.setdefault("503", problems[503])
            if "application/json" in responses.get("422", {}).get("content", {}):
                responses["422"] = problems[422]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
