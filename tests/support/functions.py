"""Function apps for tests, built by functions-framework from a real ``main.py`` per scenario (as
functions-framework's own tests do), each served with a Runtime the test builds (explicit settings,
database and OpenAI collaborators) instead of the process environment."""

from __future__ import annotations

import sys
import types
import uuid
from collections.abc import Callable
from pathlib import Path

import flask
import pytest

from common.db.base import Database
from common.runtime import Runtime
from common.settings import AuthSettings, ChatSettings, DatabaseSettings, OpenAISettings, RegistrySettings, Settings
from tests.support.users import TEST_ISSUER, TEST_JWT_SECRET

_RUNTIMES: dict[str, Runtime] = {}
TEST_MAX_UPLOAD_BYTES = 256 * 1024
REGISTRY_TOKEN = "registry-test-token"


def make_runtime(database: Database, database_url: str, openai_base_url: str, *,
                 chat: ChatSettings | None = None, openai_timeout_seconds: float = 5.0,
                 max_output_tokens: int | None = None) -> Runtime:
    """A Runtime with explicit test settings: the given database, the test project's JWT secret, the
    OpenAI stand-in, the scheduler's test token, a small upload limit, the given chat limits and,
    when given, a turn's output cap."""
    from common.openai import build_gateway

    settings = Settings(
        database=DatabaseSettings(database_url=database_url),
        auth=AuthSettings(issuer=TEST_ISSUER, jwt_secret=TEST_JWT_SECRET),
        openai_settings=OpenAISettings(api_key="sk-local", base_url=openai_base_url,
                                       timeout_seconds=openai_timeout_seconds, max_retries=1,
                                       **({"max_output_tokens": max_output_tokens} if max_output_tokens else {})),
        registry=RegistrySettings(service_token=REGISTRY_TOKEN, grace_seconds=0),
        max_upload_bytes=TEST_MAX_UPLOAD_BYTES,
        chat=chat or ChatSettings(),
    )
    return Runtime(settings, database=database, openai_factory=lambda s: build_gateway(s.openai))

MAIN_PY = '''\
from common.http import FunctionApp
from {module} import ROUTES
from tests.support.functions import runtime_for

_app = FunctionApp("{name}", ROUTES, runtime_factory=runtime_for("{key}"))


def {name}(request):
    return _app.handle(request)
'''


def runtime_for(key: str) -> Callable[[], Runtime]:
    return lambda: _RUNTIMES[key]


def build_function_app(directory: Path, name: str, runtime: Runtime) -> flask.Flask:
    """functions-framework's app for ``common.api.<name>`` with ``runtime``; undoes the framework's
    process-wide side effects (env vars, sys.path, sys.modules['main'])."""
    import functions_framework

    key = uuid.uuid4().hex
    _RUNTIMES[key] = runtime
    source = directory / name / "main.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(MAIN_PY.format(module=f"common.api.{name}", name=name, key=key))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUNCTION_TARGET", name)
        patch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
        patch.setattr(sys, "path", list(sys.path))
        patch.setitem(sys.modules, "main", types.ModuleType("main"))
        return functions_framework.create_app(name, str(source))

