"""Cross-user isolation: every function that takes an id answers "not found" for another user's id,
and the tables themselves show a user only their own rows (RLS); anon sees nothing."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import ForbiddenError, NotFoundError
from tests.support.factories import begin_turn, make_document
from tests.support.users import AppUser, UserFactory

TABLES = ["user_profiles", "documents", "document_access", "document_shares", "chat_sessions", "chat_messages", "usage_logs",
          "usage_daily", "registry_runs", "audit_log", "idempotency_keys", "chat_sessions_summary",
          "user_usage_summary"]


@pytest.fixture(scope="module")
def owner_state(db: Database, users: UserFactory) -> dict[str, Any]:
    owner = users.create()
    doc = make_document(db, owner)
    turn = begin_turn(db, owner)
    return {"owner": owner, "doc": doc["id"], "session": turn["session"]["id"],
            "message": turn["assistant_message_id"]}


def _calls(s: dict[str, Any], other: AppUser) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("get_document", {"p_document_id": s["doc"]}),
        ("begin_document_delete", {"p_document_id": s["doc"]}),
        ("share_document", {"p_document_id": s["doc"], "p_email": other.email}),
        ("list_document_shares", {"p_document_id": s["doc"]}),
        ("get_session", {"p_session_id": s["session"]}),
        ("rename_session", {"p_session_id": s["session"], "p_title": "mine now"}),
        ("delete_session", {"p_session_id": s["session"]}),
        ("list_session_messages", {"p_session_id": s["session"]}),
        ("create_session", {"p_document_ids": [s["doc"]]}),
    ]


def _backend_calls(s: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Backend-API calls made for an intruder (the backend acting for them) naming the owner's ids."""
    return [
        ("begin_chat_turn", {"p_request_id": "r1", "p_message": "hi", "p_max_cost_usd": 0, "p_session_id": s["session"]}),
        ("begin_chat_turn", {"p_request_id": "r2", "p_message": "hi", "p_max_cost_usd": 0,
                             "p_document_ids": [s["doc"]]}),
        ("record_chat_response", {"p_message_id": s["message"], "p_response_id": "resp_x"}),
        ("finish_chat_turn", {"p_message_id": s["message"], "p_response_id": "resp_x", "p_model": "m",
                              "p_content": "x", "p_citations": [], "p_retrieval": [], "p_usage": {},
                              "p_usage_rows": [], "p_cost_usd": 0, "p_price_version": "v", "p_latency_ms": 1}),
        ("fail_chat_turn", {"p_message_id": s["message"], "p_error_code": "x", "p_error_message": "y"}),
    ]


def test_another_users_ids_are_not_found(db: Database, users: UserFactory, owner_state: dict[str, Any]) -> None:
    intruder = users.create()
    db.call("get_my_profile", {}, intruder.identity)
    for function, args in _calls(owner_state, intruder):
        with pytest.raises(NotFoundError):
            db.call(function, args, intruder.identity)
    for function, args in _backend_calls(owner_state):
        with pytest.raises(NotFoundError):
            db.call(function, args, Identity.backend(intruder.id))
    # And the owner's state is untouched.
    owner = owner_state["owner"]
    assert db.call("get_document", {"p_document_id": owner_state["doc"]}, owner.identity)["status"] == "ready"
    assert db.call("get_session", {"p_session_id": owner_state["session"]}, owner.identity)["title"] != "mine now"


def _select_as(database_url: str, role: str, claims: dict[str, Any] | None, table: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                     [role, json.dumps(claims or {})])
        # "select 1": a user may select only some columns of documents (no OpenAI ids).
        return conn.execute(f"select 1 from public.{table}").fetchall()  # noqa: S608 - fixed table names


def test_tables_show_a_user_only_their_own_rows(db: Database, users: UserFactory, owner_state: dict[str, Any],
                                                database_url: str) -> None:
    other = users.create()
    make_document(db, other)
    begin_turn(db, other)
    owner: AppUser = owner_state["owner"]
    for table in ["user_profiles", "documents", "chat_sessions", "chat_messages", "chat_sessions_summary"]:
        rows = _select_as(database_url, "authenticated", dict(owner.identity.claims), table)
        assert rows, table
        with psycopg.connect(database_url) as conn:
            owner_col = "id" if table == "user_profiles" else "user_id"
            expected = conn.execute(f"select count(*) from public.{table} where {owner_col} = %s",  # noqa: S608
                                    [owner.id]).fetchone()[0]
        assert len(rows) == expected, table
    for table in ["registry_runs", "audit_log", "idempotency_keys"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _select_as(database_url, "authenticated", dict(owner.identity.claims), table)


@pytest.mark.parametrize("table", TABLES)
def test_anon_sees_nothing(database_url: str, table: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _select_as(database_url, "anon", None, table)


@pytest.mark.parametrize("function", ["get_my_profile", "list_documents", "list_my_sessions", "get_usage_report"])
def test_anon_cannot_call_the_api(database_url: str, function: str) -> None:
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("select set_config('role', 'anon', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select public.{function}()")  # noqa: S608 - fixed names


def test_service_role_functions_refuse_users(db: Database, users: UserFactory) -> None:
    user = users.create()
    with pytest.raises(ForbiddenError):
        db.call("set_user_vector_store", {"p_user_id": user.id, "p_vector_store_id": "vs_1"}, user.identity)
