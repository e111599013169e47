"""Races between a delete in flight and the writers that learn statuses from OpenAI (a status refresh,
the registry's store page): the delete is never undone. The interleaving is forced: the delete holds
its transaction open, the racer is seen waiting on the row lock, then the delete commits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from common.db.base import Identity
from common.db.psycopg_transport import PsycopgDatabase
from common.errors import AppError, ConflictError
from tests.support.factories import make_document
from tests.support.users import UserFactory

SERVICE = Identity.service()


def _open_delete(database_url: str, user_id: str, document_id: str) -> psycopg.Connection:
    """A transaction that has started the delete (as the user, the way PostgREST calls it) and not committed."""
    conn = psycopg.connect(database_url)
    conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                 [json.dumps({"sub": user_id, "role": "authenticated"})])
    conn.execute("select public.begin_document_delete(%s)", [document_id])
    return conn


def _race(database_url: str, racer: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = racer()
        except AppError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with psycopg.connect(database_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watcher.execute("select count(*) from pg_stat_activity where datname = current_database()"
                                      " and wait_event_type = 'Lock'").fetchone()
            if waiting and waiting[0] > 0:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the racer never waited on the row lock")
    return thread, outcome


def _status(database_url: str, document_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute("select status from public.documents where id = %s", [document_id]).fetchone()[0]


def test_a_status_refresh_racing_a_delete_cannot_undo_it(psycopg_db: PsycopgDatabase, database_url: str,
                                                         users: UserFactory) -> None:
    # Given a processing document whose delete has begun and not yet committed
    owner = users.create()
    doc = make_document(psycopg_db, owner, status="processing")
    deleting = _open_delete(database_url, owner.id, doc["id"])
    # When OpenAI's "ready" is recorded meanwhile, and the delete then commits
    thread, outcome = _race(database_url, lambda: psycopg_db.call(
        "record_document_status", {"p_document_id": doc["id"], "p_status": "ready"}, Identity.backend(owner.id)))
    deleting.commit()
    deleting.close()
    thread.join(10)
    # Then the status write is refused and the document stays deleting
    assert isinstance(outcome.get("error"), ConflictError)
    assert _status(database_url, doc["id"]) == "deleting"


def test_the_registry_store_page_racing_a_delete_cannot_undo_it(psycopg_db: PsycopgDatabase, database_url: str,
                                                                users: UserFactory) -> None:
    # Given a ready document whose delete has begun, and a registry run paging its owner's store
    owner = users.create()
    doc = make_document(psycopg_db, owner, status="processing")
    run = psycopg_db.call("registry_begin_run", {"p_lease_seconds": 60}, SERVICE)
    deleting = _open_delete(database_url, owner.id, doc["id"])
    page = [{"file_id": doc["openai_file_id"], "status": "completed", "usage_bytes": 10, "error": None,
             "document_id": doc["id"], "created_at": int(time.time())}]
    # When the store page is applied meanwhile, and the delete then commits
    thread, outcome = _race(database_url, lambda: psycopg_db.call("registry_apply_store_page", {
        "p_run_id": run["run_id"], "p_vector_store_id": doc["vector_store_id"], "p_store_user_id": owner.id,
        "p_files": page}, SERVICE))
    deleting.commit()
    deleting.close()
    thread.join(10)
    psycopg_db.call("registry_finish_run", {"p_run_id": run["run_id"], "p_status": "completed", "p_figures": {}},
                    SERVICE)
    # Then the page asks for the file's removal instead of marking the document ready
    assert [a["reason"] for a in outcome["result"]["delete"]] == ["document_deleted"]
    assert outcome["result"]["updated"] == 0
    assert _status(database_url, doc["id"]) == "deleting"


def test_a_delete_waits_for_a_status_write_in_flight_and_wins(psycopg_db: PsycopgDatabase, database_url: str,
                                                              users: UserFactory) -> None:
    # Given a status write for a processing document, held open
    owner = users.create()
    doc = make_document(psycopg_db, owner, status="processing")
    writing = psycopg.connect(database_url)
    writing.execute("select set_config('role', 'service_role', true)")
    writing.execute("select public.record_document_status(%s, %s, 'ready')", [owner.id, doc["id"]])
    # When the owner deletes meanwhile, and the status write then commits
    thread, outcome = _race(database_url, lambda: psycopg_db.call(
        "begin_document_delete", {"p_document_id": doc["id"]}, owner.identity))
    writing.commit()
    writing.close()
    thread.join(10)
    # Then the delete ran after it: the document is deleting
    assert outcome["result"]["status"] == "deleting"
    assert _status(database_url, doc["id"]) == "deleting"


def test_an_accept_racing_a_delete_grants_nothing(psycopg_db: PsycopgDatabase, database_url: str,
                                                  users: UserFactory) -> None:
    # Given an invitation to a document whose delete has begun and not yet committed
    from common.errors import NotFoundError
    from tests.support.factories import share_with

    owner, grantee = users.create(), users.create()
    doc = make_document(psycopg_db, owner)
    invited = share_with(psycopg_db, owner, doc, grantee, accept=False)
    deleting = _open_delete(database_url, owner.id, doc["id"])
    # When the grantee accepts meanwhile, and the delete then commits
    thread, outcome = _race(database_url, lambda: psycopg_db.call(
        "accept_document_invitation", {"p_share_id": invited["share_id"]}, Identity.backend(grantee.id)))
    deleting.commit()
    deleting.close()
    thread.join(10)
    # Then the accept finds no document, and the grantee holds no access
    assert isinstance(outcome.get("error"), NotFoundError)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*) from public.document_access where document_id = %s",
                            [doc["id"]]).fetchone() == (0,)
