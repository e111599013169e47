"""Sessions (user API), chat turns (backend API), budget and usage through the SQL API, on both
transports."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import (
    BudgetExceededError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
    UserDisabledError,
)
from tests.support.factories import backend, begin_turn, finish_args, finish_turn, make_document, usage_rows
from tests.support.users import UserFactory


def _set_budget(database_url: str, user_id: str, budget: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set monthly_budget_usd = %s where id = %s", [budget, user_id])


def test_sessions_crud_with_counts_and_pagination(db: Database, users: UserFactory) -> None:
    user = users.create()
    created = [db.call("create_session", {"p_title": f"S{i}"}, user.identity) for i in range(3)]
    renamed = db.call("rename_session", {"p_session_id": created[0]["id"], "p_title": "  Renamed  "}, user.identity)
    assert renamed["title"] == "Renamed"
    page1 = db.call("list_my_sessions", {"p_limit": 2}, user.identity)
    page2 = db.call("list_my_sessions", {"p_limit": 2, "p_cursor": page1["next_cursor"]}, user.identity)
    order = [s["id"] for s in page1["items"] + page2["items"]]
    assert order == [created[0]["id"], created[2]["id"], created[1]["id"]]  # last activity first
    assert page2["next_cursor"] is None
    deleted = db.call("delete_session", {"p_session_id": created[1]["id"]}, user.identity)
    assert deleted["id"] == created[1]["id"]
    with pytest.raises(NotFoundError):
        db.call("get_session", {"p_session_id": created[1]["id"]}, user.identity)


def test_a_turn_stores_question_answer_usage_and_cost(db: Database, users: UserFactory) -> None:
    # Given a user with a document and a turn begun for them
    user = users.create()
    doc = make_document(db, user)
    turn = begin_turn(db, user, "What is in my notes?")
    assert turn["document_ids"] == [doc["id"]] and turn["conversation_id"] is None and turn["replayed"] is False
    assert turn["budget"]["reserved_usd"] == Decimal("0.01")
    # When OpenAI announces the response and the backend finishes the turn
    args = finish_args(turn, cost=Decimal("0.00321"))
    db.call("record_chat_response", {"p_message_id": turn["assistant_message_id"],
                                     "p_response_id": args["p_response_id"]}, backend(user))
    done = db.call("finish_chat_turn", args, backend(user))
    # Then answer, cost, session total and budget agree
    assert done["message"]["status"] == "complete" and done["message"]["cost_usd"] == Decimal("0.00321")
    assert done["over_reservation"] is False
    assert "retrieval" not in done["message"] and "usage" not in done["message"]
    assert done["session"]["message_count"] == 2 and done["session"]["openai_conversation_id"] == "conv_test"
    assert done["session"]["cost_usd"] == Decimal("0.00321")
    assert done["budget"]["spent_usd"] == Decimal("0.00321") and done["budget"]["reserved_usd"] == 0
    history = db.call("list_session_messages", {"p_session_id": turn["session"]["id"]}, user.identity)
    assert [(m["role"], m["status"]) for m in history["items"]] == [("user", "complete"), ("assistant", "complete")]
    assert all("retrieval" not in m and "usage" not in m for m in history["items"])
    summary = db.call("get_usage_report", {}, user.identity)
    assert summary["totals"]["cost_usd"] == Decimal("0.00321") and summary["totals"]["input_tokens"] == 1000
    assert summary["by_model"][0]["model"] == "gpt-6-luna"
    # And a repeat of the same finish bills nothing more; a finish with another response is a conflict
    again = db.call("finish_chat_turn", {**args, "p_cost_usd": 0, "p_usage_rows": []}, backend(user))
    assert again["message"]["id"] == turn["assistant_message_id"]
    with pytest.raises(ConflictError):
        finish_turn(db, user, turn)
    assert db.call("get_usage_report", {}, user.identity)["totals"]["cost_usd"] == Decimal("0.00321")


def test_the_retrieved_chunks_usage_and_price_version_are_kept_with_the_turn(db: Database, users: UserFactory,
                                                                             database_url: str) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    finish_turn(db, user, turn)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select m.retrieval, m.usage, m.price_version, u.price_version from public.chat_messages m"
                           " join public.usage_logs u on u.message_id = m.id where m.id = %s",
                           [turn["assistant_message_id"]]).fetchone()
    assert row[0][0]["text"] == "a retrieved passage" and row[1]["input_tokens"] == 1000
    assert row[2] == row[3] == "test-1"


def test_a_response_id_is_recorded_once(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn, other = begin_turn(db, user), begin_turn(db, user)
    args = {"p_message_id": turn["assistant_message_id"], "p_response_id": f"resp_{uuid.uuid4().hex}"}
    assert db.call("record_chat_response", args, backend(user))["response_id"] == args["p_response_id"]
    assert db.call("record_chat_response", args, backend(user))["response_id"] == args["p_response_id"]
    with pytest.raises(ConflictError):
        db.call("record_chat_response", {**args, "p_response_id": "resp_other"}, backend(user))
    with pytest.raises(ConflictError):  # the same response cannot belong to two turns
        db.call("record_chat_response", {**args, "p_message_id": other["assistant_message_id"]}, backend(user))
    with pytest.raises(ConflictError):  # a finish must carry the announced response
        finish_turn(db, user, turn)


def test_a_new_sessions_conversation_is_recorded_before_the_response(db: Database, users: UserFactory,
                                                                     database_url: str) -> None:
    # given a pending turn in a new session (no conversation yet)
    user = users.create()
    turn = begin_turn(db, user)
    ids = {"p_message_id": turn["assistant_message_id"]}
    # when the backend records the conversation alone, then the session has it and the turn no response yet
    assert db.call("record_chat_response", {**ids, "p_conversation_id": "conv_early"},
                   backend(user))["response_id"] is None
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select openai_conversation_id from public.chat_sessions where id = %s",
                           [turn["session"]["id"]]).fetchone()
    assert row == ("conv_early",)
    # and a call with neither id is refused, as is one for a turn that has ended
    with pytest.raises(InvalidInputError):
        db.call("record_chat_response", ids, backend(user))
    finish_turn(db, user, turn)
    with pytest.raises(ConflictError):
        db.call("record_chat_response", {**ids, "p_conversation_id": "conv_late"}, backend(user))


def test_a_cost_above_the_reservation_is_recorded_in_full_and_flagged(db: Database, users: UserFactory,
                                                                      database_url: str) -> None:
    user = users.create()
    turn = begin_turn(db, user, max_cost=Decimal("0.01"))
    _set_budget(database_url, user.id, "6")
    done = finish_turn(db, user, turn, cost=Decimal("5.00"))
    assert done["over_reservation"] is True and done["message"]["cost_usd"] == Decimal("5.00")
    assert done["budget"]["spent_usd"] == Decimal("5.00")
    with pytest.raises(BudgetExceededError):  # the next turn sees the real spend
        begin_turn(db, user, max_cost=Decimal("1"))


def test_begin_is_idempotent_per_request_id(db: Database, users: UserFactory) -> None:
    user = users.create()
    first = begin_turn(db, user, request_id="req-same", max_cost=Decimal("0.2"))
    again = begin_turn(db, user, request_id="req-same", max_cost=Decimal("0.2"))
    assert again["replayed"] is True and again["assistant_message_id"] == first["assistant_message_id"]
    assert again["user_message_id"] == first["user_message_id"]
    assert again["budget"]["reserved_usd"] == Decimal("0.2") and again["session"]["message_count"] == 2


def test_turns_per_minute_are_limited_with_a_retry_after(db: Database, users: UserFactory) -> None:
    user = users.create()
    for _ in range(3):
        begin_turn(db, user, max_cost=Decimal("0"), p_max_turns_per_minute=3)
    with pytest.raises(RateLimitedError) as refused:
        begin_turn(db, user, max_cost=Decimal("0"), p_max_turns_per_minute=3)
    assert 1 <= refused.value.retry_after <= 60
    assert refused.value.headers() == {"Retry-After": str(refused.value.retry_after)}


def test_budget_counts_spend_and_pending_reservations(db: Database, users: UserFactory, database_url: str) -> None:
    user = users.create()
    db.call("get_my_profile", {}, user.identity)
    _set_budget(database_url, user.id, "0.05")
    first = begin_turn(db, user, max_cost=Decimal("0.03"))
    # A second concurrent turn would overrun the budget with the first one's reservation.
    with pytest.raises(BudgetExceededError) as refused:
        begin_turn(db, user, max_cost=Decimal("0.03"))
    assert refused.value.extra["reserved_usd"] == "0.03" and refused.value.extra["monthly_budget_usd"] == "0.05"
    assert "resets_on" in refused.value.extra
    finish_turn(db, user, first, cost=Decimal("0.04"))
    with pytest.raises(BudgetExceededError):  # exactly at the budget admits nothing
        begin_turn(db, user, max_cost=Decimal("0.01"))
    begin_turn(db, user, max_cost=Decimal("0.009"))


def test_a_zero_reservation_is_refused_when_nothing_remains(db: Database, users: UserFactory,
                                                           database_url: str) -> None:
    user = users.create()
    turn = begin_turn(db, user, max_cost=Decimal("0"))
    finish_turn(db, user, turn, cost=Decimal("0.5"))
    _set_budget(database_url, user.id, "0.5")
    with pytest.raises(BudgetExceededError):
        begin_turn(db, user, max_cost=Decimal("0"))


def test_a_pending_reservation_does_not_lapse_and_is_settled_by_the_sweep(db: Database, users: UserFactory,
                                                                          database_url: str) -> None:
    # Given a turn left pending for an hour (its finish never arrived)
    user = users.create()
    turn = begin_turn(db, user, max_cost=Decimal("0.3"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.chat_messages set created_at = now() - interval '1 hour' where id = %s",
                     [turn["assistant_message_id"]])
    # Then it still holds its reservation and the sweep lists it
    assert db.call("get_usage_report", {}, user.identity)["budget"]["reserved_usd"] == Decimal("0.3")
    stale = db.call("list_stale_chat_turns", {"p_older_than_seconds": 600, "p_limit": 100}, Identity.service())
    mine = [t for t in stale if t["message_id"] == turn["assistant_message_id"]]
    assert mine and mine[0]["user_id"] == user.id and mine[0]["response_id"] is None
    # When the sweep settles it as failed with what OpenAI billed
    failed = db.call("fail_chat_turn", {"p_message_id": turn["assistant_message_id"], "p_error_code": "stale_turn",
                                        "p_error_message": "no finish", "p_usage_rows": usage_rows(Decimal("0.02")),
                                        "p_cost_usd": Decimal("0.02"), "p_price_version": "test-1"}, backend(user))
    # Then the reservation is released and the cost recorded; it is no longer stale
    assert failed["budget"]["reserved_usd"] == 0 and failed["budget"]["spent_usd"] == Decimal("0.02")
    stale = db.call("list_stale_chat_turns", {"p_older_than_seconds": 600, "p_limit": 100}, Identity.service())
    assert turn["assistant_message_id"] not in [t["message_id"] for t in stale]


def test_a_failed_turn_keeps_the_error_and_releases_the_reservation(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user, max_cost=Decimal("0.5"))
    args = {"p_message_id": turn["assistant_message_id"], "p_error_code": "rate_limited",
            "p_error_message": "slow down"}
    failed = db.call("fail_chat_turn", args, backend(user))
    assert failed["message"]["status"] == "failed" and failed["message"]["error_code"] == "rate_limited"
    assert failed["budget"]["reserved_usd"] == 0
    assert db.call("fail_chat_turn", args, backend(user))["message"]["id"] == turn["assistant_message_id"]
    with pytest.raises(ConflictError):
        finish_turn(db, user, turn)


def test_usage_rows_must_add_up_to_the_cost_and_are_bounded(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    with pytest.raises(InvalidInputError):
        db.call("finish_chat_turn", {**finish_args(turn, cost=Decimal("1")), "p_usage_rows": usage_rows(Decimal("0.5"))},
                backend(user))
    with pytest.raises(PayloadTooLargeError):
        db.call("finish_chat_turn", {**finish_args(turn, cost=Decimal("0")),
                                     "p_usage_rows": [{"service": "chat", "model": f"m{i}", "cost_usd": 0}
                                                      for i in range(21)]}, backend(user))
    with pytest.raises(ConflictError):  # the database's key (message, service, model): a duplicate is an error
        db.call("finish_chat_turn", {**finish_args(turn, cost=Decimal("0.2")),
                                     "p_usage_rows": usage_rows(Decimal("0.1")) * 2}, backend(user))
    assert finish_turn(db, user, turn)["message"]["status"] == "complete"


def test_a_disabled_user_can_do_nothing(db: Database, users: UserFactory, database_url: str) -> None:
    user = users.create()
    session = db.call("create_session", {}, user.identity)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set disabled = true where id = %s", [user.id])
    for function, args in [("get_my_profile", {}), ("list_documents", {}), ("list_my_sessions", {}),
                           ("get_session", {"p_session_id": session["id"]}), ("get_usage_report", {})]:
        with pytest.raises(UserDisabledError):
            db.call(function, args, user.identity)
    with pytest.raises(UserDisabledError):
        db.call("create_document", {"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": 1,
                                    "p_sha256": "0" * 64}, Identity.backend(user.id))
    with pytest.raises(UserDisabledError):
        begin_turn(db, user, max_cost=Decimal("0"))


def test_a_user_disabled_mid_turn_is_still_billed(db: Database, users: UserFactory, database_url: str) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set disabled = true where id = %s", [user.id])
    done = finish_turn(db, user, turn, cost=Decimal("0.007"))
    assert done["message"]["cost_usd"] == Decimal("0.007") and done["budget"]["spent_usd"] == Decimal("0.007")


def test_a_session_with_a_pending_turn_cannot_be_deleted(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    with pytest.raises(ConflictError):
        db.call("delete_session", {"p_session_id": turn["session"]["id"]}, user.identity)
    finish_turn(db, user, turn, cost=Decimal("0.001"))
    db.call("delete_session", {"p_session_id": turn["session"]["id"]}, user.identity)
    # The ledger keeps the turn's cost after its session is gone.
    assert db.call("get_usage_report", {}, user.identity)["totals"]["cost_usd"] == Decimal("0.001")


def test_turn_document_narrowing_checks_access_and_the_session_keeps_its_filter(db: Database,
                                                                                users: UserFactory) -> None:
    a, b = users.create(), users.create()
    doc_a, doc_a2 = make_document(db, a), make_document(db, a)
    doc_b = make_document(db, b)
    narrowed = begin_turn(db, a, p_document_ids=[doc_a2["id"]])
    assert narrowed["document_ids"] == [doc_a2["id"]] and narrowed["session"]["document_ids"] == [doc_a2["id"]]
    finish_turn(db, a, narrowed)
    follow_up = begin_turn(db, a, session_id=narrowed["session"]["id"])
    assert follow_up["document_ids"] == [doc_a2["id"]]
    with pytest.raises(NotFoundError):
        begin_turn(db, a, p_document_ids=[doc_b["id"]])
    assert doc_a["id"] != doc_a2["id"]


@pytest.mark.parametrize(("args", "error"), [
    ({"p_message": ""}, InvalidInputError),
    ({"p_message": "x" * 101}, PayloadTooLargeError),
    ({"p_message": "x" * 100_001, "p_max_message_chars": None}, PayloadTooLargeError),
    ({"p_max_cost_usd": -1}, InvalidInputError),
    ({"p_max_cost_usd": "lots"}, InvalidInputError),
    ({"p_max_cost_usd": "NaN"}, InvalidInputError),
    ({"p_max_cost_usd": "Infinity"}, InvalidInputError),
    ({"p_max_cost_usd": "1e30"}, InvalidInputError),
    ({"p_request_id": ""}, InvalidInputError),
    ({"p_document_ids": ["nope"]}, InvalidInputError),
    ({"p_document_ids": {"a": 1}}, InvalidInputError),
    ({"p_max_turns_per_minute": 0}, InvalidInputError),
    ({"p_session_id": str(uuid.uuid4())}, NotFoundError),
])
def test_begin_chat_turn_rejects_bad_input(db: Database, users: UserFactory, args: dict, error: type) -> None:
    base = {"p_request_id": f"r-{uuid.uuid4()}", "p_message": "hi", "p_max_cost_usd": 0, "p_max_message_chars": 100}
    with pytest.raises(error):
        db.call("begin_chat_turn", {**base, **args}, backend(users.create()))


@pytest.mark.parametrize("args", [{"p_title": ""}, {"p_title": "t" * 201}, {"p_document_ids": "x"}])
def test_create_session_rejects_bad_input(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("create_session", args, users.create().identity)


@pytest.mark.parametrize("args", [{"p_from": "2026-02-01", "p_to": "2026-01-01"},
                                  {"p_from": "2020-01-01", "p_to": "2026-01-01"}, {"p_from": "not-a-date"}])
def test_usage_summary_rejects_bad_ranges(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("get_usage_report", args, users.create().identity)


def test_idempotency_keys_replay_refuse_mismatch_and_report_in_progress(db: Database, users: UserFactory) -> None:
    user = users.create()
    key = f"key-{uuid.uuid4()}"
    args = {"p_route": "upload", "p_key": key, "p_fingerprint": "f1"}
    assert db.call("idempotency_begin", args, backend(user))["state"] == "new"
    assert db.call("idempotency_begin", args, backend(user))["state"] == "in_progress"
    assert db.call("idempotency_begin", {**args, "p_fingerprint": "f2"}, backend(user))["state"] == "mismatch"
    db.call("idempotency_finish", {"p_route": "upload", "p_key": key, "p_status": 201, "p_body": {"id": "d1"}},
            backend(user))
    replay = db.call("idempotency_begin", args, backend(user))
    assert replay == {"state": "replay", "status": 201, "body": {"id": "d1"}}
    # Another user's identical key is a different key.
    assert db.call("idempotency_begin", args, backend(users.create()))["state"] == "new"
    with pytest.raises(InvalidInputError):
        db.call("idempotency_begin", {**args, "p_key": "short"}, backend(user))


def test_an_idempotency_body_above_the_limit_is_refused(db: Database, users: UserFactory) -> None:
    user = users.create()
    key = f"key-{uuid.uuid4()}"
    db.call("idempotency_begin", {"p_route": "upload", "p_key": key, "p_fingerprint": "f"}, backend(user))
    with pytest.raises(PayloadTooLargeError):
        db.call("idempotency_finish", {"p_route": "upload", "p_key": key, "p_status": 201,
                                       "p_body": {"x": "y" * 300_000}}, backend(user))


def test_the_same_request_begun_twice_at_once_is_one_turn(db: Database, users: UserFactory) -> None:
    # Given one request id sent twice at the same moment (a client retry racing the first attempt)
    user = users.create()
    start = threading.Barrier(2)

    def begin() -> dict:
        start.wait()
        return begin_turn(db, user, request_id="req-raced", max_cost=Decimal("0.25"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        turns = list(pool.map(lambda _: begin(), range(2)))
    # Then both answers name the same turn, one of them replayed, and it is reserved once
    assert turns[0]["assistant_message_id"] == turns[1]["assistant_message_id"]
    assert sorted(t["replayed"] for t in turns) == [False, True]
    assert db.call("get_usage_report", {}, user.identity)["budget"]["reserved_usd"] == Decimal("0.25")


def test_a_message_answer_says_what_the_history_needs_and_no_more(db: Database, users: UserFactory) -> None:
    user = users.create()
    turn = begin_turn(db, user)
    message = finish_turn(db, user, turn)["message"]
    assert set(message) == {"id", "session_id", "role", "status", "content", "citations", "model", "input_tokens",
                            "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
                            "file_search_calls", "cost_usd", "incomplete_reason", "latency_ms", "error_code",
                            "created_at", "completed_at"}
    session = db.call("get_session", {"p_session_id": turn["session"]["id"]}, user.identity)
    assert session["cost_usd"] == Decimal("0.0012") and session["last_message_at"] is not None


def test_the_backend_api_refuses_an_unknown_user(db: Database) -> None:
    with pytest.raises(UnauthorizedError):
        db.call("begin_chat_turn", {"p_request_id": "r", "p_message": "hi", "p_max_cost_usd": 0},
                Identity.backend(str(uuid.uuid4())))
