"""Sessions, chat turns, budget and usage through the SQL API, on both transports."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import BudgetExceededError, ConflictError, InvalidInputError, NotFoundError, UserDisabledError
from tests.support.factories import begin_turn, finish_turn, make_document, usage_rows
from tests.support.users import UserFactory


def test_sessions_crud_with_counts_and_pagination(db: Database, users: UserFactory) -> None:
    user = users.create()
    created = [db.call("create_session", {"p_title": f"S{i}"}, user.identity) for i in range(3)]
    renamed = db.call("rename_session", {"p_session_id": created[0]["id"], "p_title": "  Renamed  "}, user.identity)
    assert renamed["title"] == "Renamed"
    page1 = db.call("list_sessions", {"p_limit": 2}, user.identity)
    page2 = db.call("list_sessions", {"p_limit": 2, "p_cursor": page1["next_cursor"]}, user.identity)
    order = [s["id"] for s in page1["items"] + page2["items"]]
    assert order == [created[0]["id"], created[2]["id"], created[1]["id"]]  # last activity first
    assert page2["next_cursor"] is None
    deleted = db.call("delete_session", {"p_session_id": created[1]["id"]}, user.identity)
    assert deleted["id"] == created[1]["id"]
    with pytest.raises(NotFoundError):
        db.call("get_session", {"p_session_id": created[1]["id"]}, user.identity)


def test_a_turn_stores_question_answer_usage_and_cost(db: Database, users: UserFactory) -> None:
    user = users.create()
    doc = make_document(db, user)
    turn = begin_turn(db, user, "What is in my notes?")
    assert turn["document_ids"] == [doc["id"]] and turn["conversation_id"] is None
    assert turn["budget"]["reserved_usd"] == Decimal("0.01")
    done = finish_turn(db, user, turn, cost=Decimal("0.00321"))
    assert done["message"]["status"] == "complete" and done["message"]["cost_usd"] == Decimal("0.00321")
    assert done["session"]["message_count"] == 2 and done["session"]["openai_conversation_id"] == "conv_test"
    assert done["budget"]["spent_usd"] == Decimal("0.00321") and done["budget"]["reserved_usd"] == 0
    history = db.call("list_session_messages", {"p_session_id": turn["session"]["id"]}, user.identity)
    assert [(m["role"], m["status"]) for m in history["items"]] == [("user", "complete"), ("assistant", "complete")]
    summary = db.call("get_usage_summary", {}, user.identity)
    assert summary["totals"]["cost_usd"] == Decimal("0.00321") and summary["totals"]["input_tokens"] == 1000
    assert summary["by_model"][0]["model"] == "gpt-6-luna"
    # Finishing the same turn again (a retry) bills nothing more; a different finish is a conflict.
    again = db.call("finish_chat_turn", {
        "p_message_id": turn["assistant_message_id"], "p_content": "x", "p_citations": [],
        "p_response_id": done["message"]["openai_response_id"], "p_model": "gpt-6-luna", "p_usage": {},
        "p_cost_usd": 0, "p_latency_ms": 1, "p_usage_rows": []}, user.identity)
    assert again["message"]["id"] == turn["assistant_message_id"]
    with pytest.raises(ConflictError):
        finish_turn(db, user, turn)
    assert db.call("get_usage_summary", {}, user.identity)["totals"]["cost_usd"] == Decimal("0.00321")


def test_usage_rows_must_add_up_to_the_cost(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    with pytest.raises(InvalidInputError):
        db.call("finish_chat_turn", {
            "p_message_id": turn["assistant_message_id"], "p_content": "a", "p_citations": [],
            "p_response_id": "resp_x", "p_model": "m", "p_usage": {}, "p_cost_usd": Decimal("1"),
            "p_latency_ms": 1, "p_usage_rows": usage_rows(Decimal("0.5"))}, user.identity)


def test_a_failed_turn_keeps_the_error_and_releases_the_reservation(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user, max_cost=Decimal("0.5"))
    failed = db.call("fail_chat_turn", {"p_message_id": turn["assistant_message_id"], "p_error_code": "rate_limited",
                                        "p_error_message": "slow down"}, user.identity)
    assert failed["message"]["status"] == "failed" and failed["message"]["error_code"] == "rate_limited"
    assert failed["budget"]["reserved_usd"] == 0


def test_budget_counts_spend_and_running_reservations(db: Database, users: UserFactory, database_url: str) -> None:
    user = users.create()
    db.call("get_my_profile", {}, user.identity)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set monthly_budget_usd = 0.05 where id = %s", [user.id])
    first = begin_turn(db, user, max_cost=Decimal("0.03"))
    # A second concurrent turn would overrun the budget with the first one's reservation.
    with pytest.raises(BudgetExceededError):
        begin_turn(db, user, max_cost=Decimal("0.03"))
    finish_turn(db, user, first, cost=Decimal("0.04"))
    with pytest.raises(BudgetExceededError):
        begin_turn(db, user, max_cost=Decimal("0.02"))
    begin_turn(db, user, max_cost=Decimal("0.01"))


def test_a_disabled_user_can_do_nothing(db: Database, users: UserFactory, database_url: str) -> None:
    user = users.create()
    session = db.call("create_session", {}, user.identity)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set disabled = true where id = %s", [user.id])
    for function, args in [("get_my_profile", {}), ("list_documents", {}), ("list_sessions", {}),
                           ("get_session", {"p_session_id": session["id"]}), ("get_usage_summary", {}),
                           ("begin_chat_turn", {"p_message": "hi", "p_max_cost_usd": 0, "p_request_id": "r1"})]:
        with pytest.raises(UserDisabledError):
            db.call(function, args, user.identity)
    with pytest.raises(UserDisabledError):
        db.call("create_document", {"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": 1,
                                    "p_sha256": "0" * 64}, Identity.backend(user.id))


def test_turn_document_narrowing_checks_access(db: Database, users: UserFactory) -> None:
    a, b = users.create(), users.create()
    doc_a, doc_a2 = make_document(db, a), make_document(db, a)
    doc_b = make_document(db, b)
    narrowed = db.call("begin_chat_turn", {"p_message": "q", "p_max_cost_usd": 0, "p_request_id": "r",
                                           "p_document_ids": [doc_a2["id"]]}, a.identity)
    assert narrowed["document_ids"] == [doc_a2["id"]]
    with pytest.raises(NotFoundError):
        db.call("begin_chat_turn", {"p_message": "q", "p_max_cost_usd": 0, "p_request_id": "r",
                                    "p_document_ids": [doc_b["id"]]}, a.identity)
    assert doc_a["id"] != doc_a2["id"]


@pytest.mark.parametrize(("args", "error"), [
    ({"p_message": "", "p_max_cost_usd": 0, "p_request_id": "r"}, InvalidInputError),
    ({"p_message": "x" * 20001, "p_max_cost_usd": 0, "p_request_id": "r"}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": -1, "p_request_id": "r"}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": "lots", "p_request_id": "r"}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": 0, "p_request_id": ""}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": 0, "p_request_id": "r", "p_document_ids": ["nope"]}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": 0, "p_request_id": "r", "p_document_ids": {"a": 1}}, InvalidInputError),
    ({"p_message": "hi", "p_max_cost_usd": 0, "p_request_id": "r", "p_session_id": str(uuid.uuid4())}, NotFoundError),
])
def test_begin_chat_turn_rejects_bad_input(db: Database, users: UserFactory, args: dict, error: type) -> None:
    with pytest.raises(error):
        db.call("begin_chat_turn", args, users.create().identity)


@pytest.mark.parametrize("args", [{"p_title": ""}, {"p_title": "t" * 201}, {"p_document_ids": "x"}])
def test_create_session_rejects_bad_input(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("create_session", args, users.create().identity)


@pytest.mark.parametrize("args", [{"p_from": "2026-02-01", "p_to": "2026-01-01"},
                                  {"p_from": "2020-01-01", "p_to": "2026-01-01"}, {"p_from": "not-a-date"}])
def test_usage_summary_rejects_bad_ranges(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("get_usage_summary", args, users.create().identity)


def test_idempotency_keys_replay_refuse_mismatch_and_report_in_progress(db: Database, users: UserFactory) -> None:
    user = users.create()
    key = f"key-{uuid.uuid4()}"
    args = {"p_route": "upload", "p_key": key, "p_fingerprint": "f1"}
    assert db.call("idempotency_begin", args, user.identity)["state"] == "new"
    assert db.call("idempotency_begin", args, user.identity)["state"] == "in_progress"
    assert db.call("idempotency_begin", {**args, "p_fingerprint": "f2"}, user.identity)["state"] == "mismatch"
    db.call("idempotency_finish", {"p_route": "upload", "p_key": key, "p_status": 201, "p_body": {"id": "d1"}},
            user.identity)
    replay = db.call("idempotency_begin", args, user.identity)
    assert replay == {"state": "replay", "status": 201, "body": {"id": "d1"}}
    # Another user's identical key is a different key.
    assert db.call("idempotency_begin", args, users.create().identity)["state"] == "new"
    with pytest.raises(InvalidInputError):
        db.call("idempotency_begin", {**args, "p_key": "short"}, user.identity)
