"""2,500 files across several stores: one run reconciles them all, with one SQL call per page of
files, and memory that does not grow with the number of files."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from common.openai import OpenAIGateway
from tests.registry.conftest import RunFactory
from tests.support.counting import CountingDatabase
from tests.support.standin_process import StandinProcess
from tests.support.users import UserFactory

STORES = 5
FILES_PER_STORE = 500


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinProcess]:
    """The stand-in in its own process: the memory measured below is the run's alone."""
    server = StandinProcess()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def population(gateway: OpenAIGateway, users: UserFactory, database_url: str) -> dict[str, Any]:
    """2,500 documents recorded as processing, their files in their owners' stores at OpenAI."""
    owners = [users.create() for _ in range(STORES)]
    stores = [gateway.files.create_store(user.id) for user in owners]

    def add(n: int) -> dict[str, str]:
        user, store = owners[n % STORES], stores[n % STORES]
        doc_id = str(uuid.uuid4())
        file_id, _ = gateway.files.upload(doc_id, f"n{n}.txt", f"note {n} of {user.id}".encode(), "text/plain")
        gateway.files.attach(store, file_id, document_id=doc_id, owner_id=user.id)
        return {"id": doc_id, "user_id": user.id, "file": file_id, "store": store, "sha": uuid.uuid4().hex * 2}

    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(add, range(STORES * FILES_PER_STORE)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into public.user_profiles (id, email) select id, email from auth.users on conflict do nothing")
        conn.execute(
            "insert into public.documents (id, user_id, name, mime_type, size_bytes, sha256, openai_file_id,"
            " vector_store_id, status, created_at)"
            " select (r->>'id')::uuid, (r->>'user_id')::uuid, 'n.txt', 'text/plain', 10, r->>'sha', r->>'file',"
            " r->>'store', 'processing', now() - interval '1 hour' from jsonb_array_elements(%s::jsonb) r",
            [json.dumps(rows)])
    return {"stores": stores, "rows": rows}


def test_one_run_reconciles_2500_files_with_one_sql_call_per_page(population: dict[str, Any], make_run: RunFactory,
                                                                 counting_db: CountingDatabase, standin: Any,
                                                                 database_url: str) -> None:
    standin.clear_requests()
    tracemalloc.start()
    try:
        run = make_run(db=counting_db).execute()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run["status"] == "completed"
    store_pages = [r for r in standin.requests if r.method == "GET" and r.path.endswith("/files")
                   and r.path.startswith("/v1/vector_stores/")]
    file_pages = [r for r in standin.requests if r.method == "GET" and r.path == "/v1/files"]
    assert len(store_pages) == STORES * FILES_PER_STORE // 100
    assert counting_db.calls["registry_apply_store_page"] == len(store_pages)
    assert counting_db.calls["registry_apply_file_page"] == len(file_pages) == 3
    # Around the pages: begin, the day's storage, pending deletes, finish.
    assert counting_db.total == len(store_pages) + len(file_pages) + 4
    assert run["figures"]["files_seen"] == 2 * STORES * FILES_PER_STORE
    with psycopg.connect(database_url) as conn:
        statuses = dict(conn.execute("select status, count(*) from public.documents group by status").fetchall())
    assert statuses == {"ready": STORES * FILES_PER_STORE}
    # Pages are processed and dropped: the run's peak is a few pages' worth, not 2,500 files'.
    assert peak < 8 * 1024 * 1024, peak  # measured: about 4 MB, one page of 1,000 files parsed
