"""Every log line — ours, uvicorn's, SQLAlchemy's — is structured and carries the request id."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI

from servicekit.app import create_app
from servicekit.settings import DatabaseSettings, LoggingSettings, ServiceSettings
from servicekit.testing import app_client

from .utils.items import items_router

pytestmark = pytest.mark.integration


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def json_app(test_settings: ServiceSettings, kit_tables: None) -> FastAPI:
    settings = test_settings.model_copy(
        update={
            "logging": LoggingSettings(json_format=True),
            "database": DatabaseSettings(url=test_settings.database.url, echo=True),
        }
    )
    return create_app(settings, [items_router()])


class TestLogging:
    async def test_request_lines_carry_the_request_id(
        self, capsys: pytest.CaptureFixture[str], json_app: FastAPI
    ) -> None:
        async with app_client(json_app) as client:
            capsys.readouterr()
            response = await client.get("/items/999999", headers={"x-request-id": "req-12345678"})
            assert response.status_code == 500  # scalar_one on a missing row
        lines = _json_lines(capsys.readouterr().err)
        in_request = [line for line in lines if line.get("request_id") == "req-12345678"]
        loggers = {line["logger"] for line in in_request}
        assert "sqlalchemy.engine.Engine" in loggers, loggers  # SQLAlchemy routed through us
        assert "servicekit.access" in loggers
        access = next(line for line in in_request if line["event"] == "http.request")
        assert access["status"] == 500
        assert access["route"] == "/items/{item_id}"
        assert access["queries"] >= 1
        assert all(line["service"] == "servicekit-test" for line in lines)

    async def test_uvicorn_logs_share_the_format(
        self, capsys: pytest.CaptureFixture[str], json_app: FastAPI
    ) -> None:
        async with app_client(json_app):
            capsys.readouterr()
            logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        lines = _json_lines(capsys.readouterr().err)
        line = next(line for line in lines if line["logger"] == "uvicorn.error")
        assert line["event"] == "Started server process [42]"
        assert line["level"] == "info"
        assert "timestamp" in line

    async def test_unhandled_exception_is_logged_with_its_traceback(
        self, capsys: pytest.CaptureFixture[str], json_app: FastAPI
    ) -> None:
        async with app_client(json_app) as client:
            capsys.readouterr()
            await client.get("/items/boom/now", headers={"x-request-id": "req-boom-0001"})
        lines = _json_lines(capsys.readouterr().err)
        error = next(line for line in lines if line["event"] == "request.unhandled_exception")
        assert error["request_id"] == "req-boom-0001"
        assert "RuntimeError" in error["exception"]
