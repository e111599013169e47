"""The upload function on functions-framework, with the real database (both transports) and the
real OpenAI SDK against the stand-in."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import flask
import flask.testing
import pytest

from common.runtime import Runtime
from tests.support.functions import TEST_MAX_UPLOAD_BYTES, build_function_app
from tests.support.users import AppUser

MAX_UPLOAD_BYTES = TEST_MAX_UPLOAD_BYTES


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
    return client.post("/", headers=auth(user, **headers), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name)})


def store_of(database_url: str, user_id: str) -> str | None:
    """A user's vector store id, as recorded (no user-facing answer carries it)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("select vector_store_id from public.user_profiles where id = %s", [user_id]).fetchone()
    return row[0] if row else None


def file_of(db: Any, user: AppUser, document_id: str) -> str | None:
    """The OpenAI file of a user's document, through the backend API."""
    from common.db.base import Identity

    return db.call("get_document_placement", {"p_document_id": document_id}, Identity.backend(user.id))["openai_file_id"]
