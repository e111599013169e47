"""The registry refresh's SQL functions on both transports: service role only, one call per page."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import AlreadyRunningError, ConflictError, ForbiddenError, InvalidInputError
from tests.support.factories import make_document
from tests.support.users import UserFactory

SERVICE = Identity.service()


@pytest.fixture
def run(db: Database, database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set status = 'failed' where status = 'running'")
    begun = db.call("registry_begin_run", {"p_lease_seconds": 60}, SERVICE)
    yield begun
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set status = 'failed' where status = 'running'")


def test_a_page_syncs_statuses_and_returns_repairs(db: Database, users: UserFactory, run: dict[str, Any]) -> None:
    owner = users.create()
    ready = make_document(db, owner, status="processing")
    deleted = make_document(db, owner)
    db.call("begin_document_delete", {"p_document_id": deleted["id"]}, owner.identity)
    stray = str(uuid.uuid4())
    old = int(time.time()) - 7200
    page = [
        {"file_id": ready["openai_file_id"], "status": "completed", "usage_bytes": 321, "error": None,
         "document_id": ready["id"], "created_at": old},
        {"file_id": deleted["openai_file_id"], "status": "completed", "usage_bytes": 1, "error": None,
         "document_id": deleted["id"], "created_at": old},
        {"file_id": "file-stray", "status": "completed", "usage_bytes": 1, "error": None,
         "document_id": stray, "created_at": old},
    ]
    result = db.call("registry_apply_store_page", {
        "p_run_id": run["run_id"], "p_vector_store_id": ready["vector_store_id"], "p_store_user_id": owner.id,
        "p_files": page, "p_grace_seconds": 3600}, SERVICE)
    assert result["updated"] == 1 and result["unknown"] == 1
    assert sorted(a["reason"] for a in result["delete"]) == ["document_deleted", "unknown"]
    doc = db.call("get_document", {"p_document_id": ready["id"]}, owner.identity)
    assert doc["status"] == "ready" and doc["usage_bytes"] == 321
    files = db.call("registry_apply_file_page", {"p_run_id": run["run_id"], "p_files": [
        {"file_id": "file-orphan", "document_id": stray, "created_at": old}]}, SERVICE)
    assert files["delete"] == [{"file_id": "file-orphan", "reason": "no_document"}]
    pending = db.call("registry_pending_deletes", {"p_older_seconds": 0}, SERVICE)
    assert deleted["id"] in [p["document_id"] for p in pending]
    assert db.call("registry_mark_deleted", {"p_document_ids": [deleted["id"]]}, SERVICE) == 1
    finished = db.call("registry_finish_run", {"p_run_id": run["run_id"], "p_status": "completed",
                                               "p_figures": {"pages": 2}, "p_cycle_complete": False}, SERVICE)
    assert finished["status"] == "completed" and finished["figures"]["pages"] == 2
    assert db.call("registry_last_run", {}, SERVICE)["id"] == run["run_id"]


def test_a_second_run_is_refused_while_the_first_holds_the_lease(db: Database, run: dict[str, Any]) -> None:
    with pytest.raises(AlreadyRunningError):
        db.call("registry_begin_run", {"p_lease_seconds": 60}, SERVICE)


def test_storage_is_recorded_per_document_once_per_day(db: Database, users: UserFactory,
                                                       database_url: str) -> None:
    # Given a user with two documents of different sizes in their store, and a store with no document
    user, empty = users.create(), users.create()
    small, big = make_document(db, user), make_document(db, user)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.documents set usage_bytes = case when id = %s then 1000 else 3000 end"
                     " where id in (%s, %s)", [small["id"], small["id"], big["id"]])
    empty_store = db.call("set_user_vector_store", {"p_vector_store_id": f"vs_e_{empty.id[:8]}"},
                          Identity.backend(empty.id))["vector_store_id"]
    rows = [{"vector_store_id": small["vector_store_id"], "usage_bytes": 4000, "gb_days": "0.004", "cost_usd": "0.4"},
            {"vector_store_id": empty_store, "usage_bytes": 10, "gb_days": "0.00001", "cost_usd": "0.001"}]
    # When a day is recorded
    assert db.call("registry_record_storage", {"p_day": "2030-03-01", "p_rows": rows}, SERVICE) == 3
    # Then each document carries its share of its store's cost, and the empty store's user pays theirs
    with psycopg.connect(database_url) as conn:
        got = dict(conn.execute("select coalesce(document_id::text, user_id::text), cost_usd from public.usage_logs"
                                " where service = 'vector_storage' and user_id in (%s, %s)", [user.id, empty.id]))
    assert got == {small["id"]: Decimal("0.1"), big["id"]: Decimal("0.3"), empty.id: Decimal("0.001")}
    # And the same day again is a conflict, never a silent drop
    with pytest.raises(ConflictError):
        db.call("registry_record_storage", {"p_day": "2030-03-01", "p_rows": rows}, SERVICE)
    summary = db.call("get_usage_report", {"p_from": "2030-03-01", "p_to": "2030-03-01"}, user.identity)
    assert summary["by_service"][0]["service"] == "vector_storage"


@pytest.mark.parametrize("cost", ["NaN", "-0.01", "Infinity", "1e30"])
def test_storage_costs_must_be_finite_and_non_negative(db: Database, users: UserFactory, cost: str) -> None:
    user = users.create()
    doc = make_document(db, user)
    with pytest.raises(InvalidInputError):
        db.call("registry_record_storage", {"p_day": "2030-04-01", "p_rows": [
            {"vector_store_id": doc["vector_store_id"], "usage_bytes": 1, "gb_days": "0.1", "cost_usd": cost}]}, SERVICE)


@pytest.mark.parametrize(("function", "args"), [
    ("registry_begin_run", {}), ("registry_last_run", {}), ("registry_pending_deletes", {}),
    ("registry_mark_deleted", {"p_document_ids": []}),
    ("registry_record_storage", {"p_day": "2030-01-01", "p_rows": []}),
])
def test_users_cannot_call_the_registry_functions(db: Database, users: UserFactory, function: str,
                                                  args: dict[str, Any]) -> None:
    with pytest.raises(ForbiddenError):
        db.call(function, args, users.create().identity)


@pytest.mark.parametrize(("function", "args"), [
    ("registry_begin_run", {"p_lease_seconds": 1}), ("registry_mark_deleted", {"p_document_ids": "x"}),
    ("registry_record_storage", {"p_day": "2030-01-01", "p_rows": {"a": 1}}),
    ("registry_finish_run", {"p_run_id": 1, "p_status": "great", "p_figures": {}}),
])
def test_bad_registry_input_is_refused(db: Database, function: str, args: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        db.call(function, args, SERVICE)


def test_a_void_function_returns_none_on_both_transports(db: Database, users: UserFactory) -> None:
    user = users.create()
    key = f"void-{uuid.uuid4()}"
    db.call("idempotency_begin", {"p_route": "r", "p_key": key, "p_fingerprint": "f"}, Identity.backend(user.id))
    assert db.call("idempotency_finish", {"p_route": "r", "p_key": key, "p_status": 201, "p_body": {}},
                   Identity.backend(user.id)) is None
