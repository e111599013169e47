"""A failure at each step of an upload leaves no document the user cannot see and no OpenAI file
that nothing records or can find; the user gets a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import flask.testing
import pytest

from common.db.base import Database
from common.openai.files import document_id_from_filename
from common.registry import RegistryRun
from common.runtime import Runtime
from tests.support.functions import build_function_app, make_runtime
from tests.support.users import UserFactory
from tests.upload.conftest import auth, file_of, store_of, upload


def _files_named_for(runtime: Runtime, doc_id: str) -> list[Any]:
    return [f for page in runtime.openai.files.file_pages() for f in page if document_id_from_filename(f.filename) == doc_id]


def _only_document(client: flask.testing.FlaskClient, user: Any) -> dict[str, Any]:
    items = client.get("/", headers=auth(user)).json["items"]
    assert len(items) == 1
    return items[0]


def test_openai_file_upload_fails(client: flask.testing.FlaskClient, users: UserFactory, standin: Any,
                                  runtime: Runtime) -> None:
    user = users.create()
    standin.inject_fault(r"^/files$", method="POST", status=500)
    response = upload(client, user, "a.txt", b"the provider is down for uploads")
    assert response.status_code == 503 and response.json["code"] == "upstream_unavailable"
    doc = _only_document(client, user)
    assert doc["status"] == "failed" and doc["error"].startswith("upstream_unavailable")
    assert _files_named_for(runtime, doc["id"]) == []
    # Uploading the same bytes again retries the failed document instead of making a second one.
    again = upload(client, user, "a.txt", b"the provider is down for uploads")
    assert again.status_code == 201 and again.json["id"] == doc["id"] and again.json["status"] in ("processing", "ready")


def test_vector_store_add_fails(client: flask.testing.FlaskClient, users: UserFactory, standin: Any,
                                runtime: Runtime, psycopg_db: Database) -> None:
    user = users.create()
    standin.inject_fault(r"^/vector_stores/[^/]+/files$", method="POST", status=503, times=2)
    response = upload(client, user, "b.txt", b"the store refuses the file")
    assert response.status_code == 503 and response.json["code"] == "upstream_unavailable"
    doc = _only_document(client, user)
    assert doc["status"] == "failed"
    files = _files_named_for(runtime, doc["id"])
    assert [f.file_id for f in files] == [file_of(psycopg_db, user, doc["id"])]  # recorded on the row and findable by name


@pytest.fixture(scope="module")
def supabase_runtime(supabase_db: Database, database_url: str, standin: Any) -> Iterator[Runtime]:
    rt = make_runtime(supabase_db, database_url, standin.base_url)
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def supabase_client(supabase_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> flask.testing.FlaskClient:
    return build_function_app(tmp_path_factory.mktemp("fns"), "upload", supabase_runtime).test_client()


def test_database_fails_after_the_openai_file_exists(supabase_client: flask.testing.FlaskClient, users: UserFactory,
                                                     postgrest: Any, supabase_runtime: Runtime,
                                                     psycopg_db: Database, database_url: str) -> None:
    user = users.create()
    # Given the database goes away after the document was recorded and the file reached OpenAI
    postgrest.inject_fault(drop=True, function="finish_document_upload")
    postgrest.inject_fault(drop=True, function="fail_document_upload")
    response = upload(supabase_client, user, "c.txt", b"the database vanished mid-upload")
    # Then the user gets a clear error, and still sees the document (uploading)
    assert response.status_code == 503 and response.json["code"] == "database_unavailable"
    doc = _only_document(supabase_client, user)
    assert doc["status"] == "uploading"
    # And the OpenAI file can be found: by the document id in its name, and in the store by its attributes
    files = _files_named_for(supabase_runtime, doc["id"])
    assert len(files) == 1
    store = store_of(database_url, user.id)
    in_store = supabase_runtime.openai.files.status(store, files[0].file_id)
    assert in_store is not None and in_store.document_id == doc["id"]
    # And the registry refresh adopts it into the row
    run = RegistryRun(psycopg_db, supabase_runtime.openai.files, supabase_runtime.prices,
                      supabase_runtime.settings.registry).execute()
    assert run["figures"]["adopted"] >= 1
    assert _only_document(supabase_client, user)["status"] in ("processing", "ready")


def test_delete_fails_part_way_and_is_finished_by_repeating_it(client: flask.testing.FlaskClient, users: UserFactory,
                                                               standin: Any, runtime: Runtime) -> None:
    user = users.create()
    doc = upload(client, user, "d.txt", b"a delete interrupted").json
    standin.inject_fault(r"^/files/[^/]+$", method="DELETE", status=500, times=2)
    failed = client.delete(f"/{doc['id']}", headers=auth(user))
    assert failed.status_code == 503
    assert _only_document(client, user)["status"] == "deleting"
    assert client.delete(f"/{doc['id']}", headers=auth(user)).status_code == 204
    assert client.get("/", headers=auth(user)).json["items"] == []
    assert _files_named_for(runtime, doc["id"]) == []


def test_a_failed_request_releases_its_idempotency_key(client: flask.testing.FlaskClient, users: UserFactory,
                                                       standin: Any) -> None:
    user = users.create()
    key = {"Idempotency-Key": "retry-after-failure-0001"}
    standin.inject_fault(r"^/files$", method="POST", status=500)
    assert upload(client, user, "r.txt", b"retried with the same key", **key).status_code == 503
    retried = upload(client, user, "r.txt", b"retried with the same key", **key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
