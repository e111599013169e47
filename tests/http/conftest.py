"""Fixtures for the HTTP plumbing tests: a loopback JWKS, the environment of a test project, demo
functions built by functions-framework from a real ``main.py``, and captured structured logs."""

from __future__ import annotations

import io
import json
import logging
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask.testing
import pytest

from common.logging import configure_logging
from common.settings import Settings
from tests.http.demo import main_py_source
from tests.support.jwt_keys import HS256_SECRET, ISSUER, JwksServer, KeyPair, new_es256_key, new_rs256_key

ALLOWED_ORIGIN = "https://app.example.test"
SERVICE_TOKEN = "scheduler-test-token-6f1c2a9e"


@pytest.fixture
def es_key() -> KeyPair:
    return new_es256_key("es-key-1")


@pytest.fixture(scope="session")
def rs_key() -> KeyPair:
    return new_rs256_key("rs-key-1")


@pytest.fixture
def jwks(es_key: KeyPair, rs_key: KeyPair) -> Iterator[JwksServer]:
    with JwksServer([es_key, rs_key]) as server:
        yield server


@pytest.fixture
def project_env(jwks: JwksServer) -> dict[str, str]:
    """The environment of a test project: HS256 secret and JWKS, one CORS origin, a service token."""
    return {
        "DATABASE_URL": "postgresql://docchat@127.0.0.1:9/unused",
        "JWT_ISSUER": ISSUER,
        "SUPABASE_JWT_SECRET": HS256_SECRET,
        "SUPABASE_JWKS_URL": jwks.url,
        "CORS_ORIGINS": ALLOWED_ORIGIN,
        "REGISTRY_SERVICE_TOKEN": SERVICE_TOKEN,
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def settings(project_env: dict[str, str]) -> Settings:
    return Settings.from_env(project_env)


@pytest.fixture
def isolate_function_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """functions-framework's create_app sets env vars, appends to sys.path and replaces sys.modules
    ['main']: undo all three after the test."""
    monkeypatch.setenv("FUNCTION_TARGET", "demo")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "main", types.ModuleType("main"))


@pytest.fixture
def write_function(tmp_path: Path, isolate_function_loading: None) -> Callable[..., Path]:
    """Write ``<tmp>/<name>/main.py`` serving demo routes; returns its path."""
    def write(name: str = "demo", routes: str = "ROUTES") -> Path:
        directory = tmp_path / "functions" / name
        directory.mkdir(parents=True)
        source = directory / "main.py"
        source.write_text(main_py_source(name, routes))
        return source
    return write


@pytest.fixture
def use_env(project_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Put ``project_env`` plus ``overrides`` (None removes a variable) in the process environment,
    where the demo functions' settings are read on their first request."""
    def apply(**overrides: str | None) -> None:
        for name, value in {**project_env, **overrides}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
    return apply


@pytest.fixture
def make_client(write_function: Callable[..., Path],
                use_env: Callable[..., None]) -> Callable[..., flask.testing.FlaskClient]:
    """A test client of the demo function built by functions-framework from its main.py."""
    import functions_framework

    def make(**overrides: str | None) -> flask.testing.FlaskClient:
        use_env(**overrides)
        return functions_framework.create_app("demo", str(write_function("demo"))).test_client()
    return make


@pytest.fixture
def client(make_client: Callable[..., flask.testing.FlaskClient]) -> flask.testing.FlaskClient:
    return make_client()


@dataclass
class StructuredLog:
    stream: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def structured_log(settings: Settings) -> Iterator[StructuredLog]:
    """The process's structured log handler writing into a buffer for the test's duration."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(settings, stream=stream)
    try:
        yield StructuredLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
