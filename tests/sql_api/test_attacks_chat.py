"""Attacks on the ledger, chat and admin functions, as a hostile signed-in user would make them:
direct calls (the same ``role`` + ``request.jwt.claims`` PostgREST sets) with another user's ids and
with hostile arguments, on both transports. Each is refused with a stable error, and the victim's
data and the ledger are unchanged."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from common.db.base import Database
from common.errors import AppError, ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from tests.support.factories import backend, begin_turn, finish_args, finish_turn, make_document, usage_rows
from tests.support.users import AppUser, UserFactory

TEN_MIB = "x" * (10 * 1024 * 1024)

SNAPSHOT = [
    "select id, status, content, cost_usd, reserved_usd, openai_response_id, error_code from public.chat_messages"
    " where user_id = %(u)s order by id",
    "select id, title, cost_usd, message_count, openai_conversation_id from public.chat_sessions"
    " where user_id = %(u)s order by id",
    "select count(*), coalesce(sum(cost_usd), 0) from public.usage_logs",
    "select count(*), coalesce(sum(cost_usd), 0) from public.usage_daily",
    "select role, disabled, monthly_budget_usd from public.user_profiles where id = %(u)s",
    "select count(*) from public.idempotency_keys",
]


def _snapshot(database_url: str, user_id: str) -> list[list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return [conn.execute(q, {"u": user_id}).fetchall() for q in SNAPSHOT]


@pytest.fixture(scope="module")
def victim(db: Database, users: UserFactory) -> dict[str, Any]:
    """User A with a document, a finished turn and a pending one."""
    a = users.create()
    doc = make_document(db, a)
    done = begin_turn(db, a)
    finish_turn(db, a, done, cost=Decimal("0.01"))
    pending = begin_turn(db, a, session_id=done["session"]["id"])
    return {"user": a, "doc": doc["id"], "session": done["session"]["id"],
            "done": done["assistant_message_id"], "pending": pending["assistant_message_id"]}


def _backend_calls_made_directly(v: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The backend API, called by a user with A's id as the acting user."""
    a: AppUser = v["user"]
    finish = finish_args({"assistant_message_id": v["pending"]}, cost=Decimal("0"))
    return [
        ("begin_chat_turn", {"p_user_id": a.id, "p_request_id": "evil", "p_message": "hi", "p_max_cost_usd": 0}),
        ("record_chat_response", {"p_user_id": a.id, "p_message_id": v["pending"], "p_response_id": "resp_evil"}),
        ("finish_chat_turn", {"p_user_id": a.id, **finish}),
        ("finish_chat_turn", {"p_user_id": a.id, **finish, "p_cost_usd": "NaN"}),
        ("fail_chat_turn", {"p_user_id": a.id, "p_message_id": v["pending"], "p_error_code": "x",
                            "p_error_message": "y"}),
        ("list_stale_chat_turns", {"p_older_than_seconds": 1, "p_limit": 100}),
        ("idempotency_begin", {"p_user_id": a.id, "p_route": "upload", "p_key": "k" * 16, "p_fingerprint": "f"}),
        ("idempotency_finish", {"p_user_id": a.id, "p_route": "upload", "p_key": "k" * 16, "p_status": 201,
                                "p_body": {"id": "forged"}}),
    ]


def test_the_backend_api_refuses_a_signed_in_user(db: Database, users: UserFactory, victim: dict[str, Any],
                                                  database_url: str) -> None:
    # Given user B and the state of user A
    b = users.create()
    before = _snapshot(database_url, victim["user"].id)
    # When B calls each backend function directly, naming A as the acting user (and as themselves)
    for function, args in _backend_calls_made_directly(victim):
        for acting in ({}, {"p_user_id": b.id} if "p_user_id" in args else {}):
            with pytest.raises(ForbiddenError):
                db.call(function, {**args, **acting}, b.identity)
    # Then nothing of A's and nothing in the ledger changed
    assert _snapshot(database_url, victim["user"].id) == before


def _user_api_attacks(v: dict[str, Any], own_session: str) -> list[tuple[str, dict[str, Any], type[AppError]]]:
    return [
        ("get_session", {"p_session_id": v["session"]}, NotFoundError),
        ("rename_session", {"p_session_id": v["session"], "p_title": "mine"}, NotFoundError),
        ("delete_session", {"p_session_id": v["session"]}, NotFoundError),
        ("list_session_messages", {"p_session_id": v["session"]}, NotFoundError),
        ("create_session", {"p_document_ids": [v["doc"]]}, NotFoundError),
        ("rename_session", {"p_session_id": "not-a-uuid", "p_title": "t"}, InvalidInputError),
        ("rename_session", {"p_session_id": own_session, "p_title": TEN_MIB}, InvalidInputError),
        ("create_session", {"p_title": TEN_MIB}, InvalidInputError),
        ("create_session", {"p_document_ids": [str(uuid.uuid4())] * 101}, InvalidInputError),
        ("list_my_sessions", {"p_limit": "Infinity"}, InvalidInputError),
        ("list_my_sessions", {"p_limit": "1e30"}, InvalidInputError),
        ("list_my_sessions", {"p_limit": -1}, InvalidInputError),
        ("list_my_sessions", {"p_cursor": TEN_MIB}, InvalidInputError),
        ("list_session_messages", {"p_session_id": own_session, "p_cursor": "zz"}, InvalidInputError),
        ("get_usage_report", {"p_from": "NaN"}, InvalidInputError),
        ("get_usage_report", {"p_from": "-infinity"}, InvalidInputError),
        ("get_usage_report", {"p_from": "2026-01-01", "p_to": "infinity"}, InvalidInputError),
        ("admin_update_user", {"p_user_id": v["user"].id, "p_monthly_budget_usd": "1e30"}, ForbiddenError),
        ("admin_update_user", {"p_user_id": v["user"].id, "p_disabled": True}, ForbiddenError),
        ("admin_usage_report", {}, ForbiddenError),
        ("admin_get_user", {"p_user_id": v["user"].id}, ForbiddenError),
    ]


def test_the_user_api_refuses_other_users_ids_and_hostile_arguments(db: Database, users: UserFactory,
                                                                    victim: dict[str, Any], database_url: str) -> None:
    # Given user B with a session of their own, and the state of user A
    b = users.create()
    own = db.call("create_session", {}, b.identity)["id"]
    before = _snapshot(database_url, victim["user"].id)
    # When B tries each attack, then each is refused with its stable error
    for function, args, error in _user_api_attacks(victim, own):
        with pytest.raises(error) as refused:
            db.call(function, args, b.identity)
        assert type(refused.value) is error, (function, args.keys(), refused.value.code)
    # And nothing of A's and nothing in the ledger changed
    assert _snapshot(database_url, victim["user"].id) == before


def test_a_users_direct_calls_racing_the_finish_cannot_change_what_is_billed(db: Database, users: UserFactory,
                                                                             database_url: str) -> None:
    # Given a user with a pending turn, five times over
    user = users.create()
    for round_ in range(5):
        turn = begin_turn(db, user, max_cost=Decimal("0.01"))
        session = turn["session"]["id"]
        message = turn["assistant_message_id"]
        start = threading.Barrier(5)

        def direct(function: str, args: dict[str, Any]) -> str:
            start.wait()
            try:
                db.call(function, args, user.identity)
            except (ForbiddenError, ConflictError, NotFoundError) as exc:
                return exc.code
            return "ok"

        def backend_finish() -> str:
            start.wait()
            db.call("finish_chat_turn", finish_args(turn, cost=Decimal("0.02")), backend(user))
            return "finished"

        # When the backend finishes while the user deletes the session, renames it and tries to
        # settle the turn themselves with a smaller bill
        with ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(backend_finish),
                       pool.submit(direct, "delete_session", {"p_session_id": session}),
                       pool.submit(direct, "rename_session", {"p_session_id": session, "p_title": f"r{round_}"}),
                       pool.submit(direct, "fail_chat_turn", {"p_user_id": user.id, "p_message_id": message,
                                                              "p_error_code": "x", "p_error_message": ""}),
                       pool.submit(direct, "finish_chat_turn", {"p_user_id": user.id,
                                                                **finish_args(turn, cost=Decimal("0"))})]
            outcomes = [f.result() for f in futures]
        # Then the backend's finish always lands, the user's settlements are refused
        assert outcomes[0] == "finished" and outcomes[3:] == ["forbidden", "forbidden"]
        assert outcomes[1] in ("ok", "conflict") and outcomes[2] in ("ok", "not_found")
    # And the ledger holds exactly the five real costs
    with psycopg.connect(database_url) as conn:
        billed = conn.execute("select count(*), sum(cost_usd) from public.usage_logs where user_id = %s",
                              [user.id]).fetchone()
    assert billed == (5, Decimal("0.10"))
    assert db.call("get_usage_report", {}, user.identity)["budget"]["spent_usd"] == Decimal("0.10")


def test_usage_rows_carry_no_caller_chosen_key(db: Database, users: UserFactory, database_url: str) -> None:
    # Given a finish whose usage row names a ledger key of the caller's choosing
    user = users.create()
    turn = begin_turn(db, user)
    rows = [{**usage_rows(Decimal("0.003"))[0], "request_id": "storage:vs_victim:2026-12-01"}]
    db.call("finish_chat_turn", {**finish_args(turn, cost=Decimal("0.003")), "p_usage_rows": rows}, backend(user))
    # Then the key is ignored: the row is keyed by its message, service and model
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select request_id, message_id::text, service, model from public.usage_logs"
                           " where user_id = %s", [user.id]).fetchone()
    assert row == (None, turn["assistant_message_id"], "chat", "gpt-6-luna")
