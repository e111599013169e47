"""The upload function on functions-framework, with the real database (both transports) and the
real OpenAI SDK against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import flask.testing
import pytest

from common.db.base import Database
from common.openai import build_gateway
from common.runtime import Runtime
from common.settings import AuthSettings, DatabaseSettings, OpenAISettings, RegistrySettings, Settings
from tests.support.functions import build_function_app
from tests.support.users import TEST_ISSUER, TEST_JWT_SECRET, AppUser

MAX_UPLOAD_BYTES = 256 * 1024


def make_settings(database_url: str, openai_base_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(database_url=database_url),
        auth=AuthSettings(issuer=TEST_ISSUER, jwt_secret=TEST_JWT_SECRET),
        openai_settings=OpenAISettings(api_key="sk-local", base_url=openai_base_url, timeout_seconds=5.0,
                                       max_retries=1),
        registry=RegistrySettings(service_token="registry-test-token", grace_seconds=0),
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )


def make_runtime(database: Database, database_url: str, standin: Any) -> Runtime:
    return Runtime(make_settings(database_url, standin.base_url), database=database,
                   openai_factory=lambda s: build_gateway(s.openai))


@pytest.fixture(scope="module")
def runtime(psycopg_db: Database, database_url: str, standin: Any) -> Iterator[Runtime]:
    rt = make_runtime(psycopg_db, database_url, standin)
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def upload_app(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> flask.Flask:
    return build_function_app(tmp_path_factory.mktemp("functions"), "upload", runtime)


@pytest.fixture
def client(upload_app: flask.Flask) -> flask.testing.FlaskClient:
    return upload_app.test_client()


@pytest.fixture(autouse=True)
def _no_leftover_faults(standin: Any) -> Iterator[None]:
    yield
    standin.clear_faults()


def auth(user: AppUser, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}", **extra}


def upload(client: flask.testing.FlaskClient, user: AppUser, name: str, content: bytes,
           **headers: str) -> Any:
    import io

    return client.post("/", headers=auth(user, **headers), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name)})
