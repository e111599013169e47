"""Admin functions refuse non-admins themselves, and do what an operator needs."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UserDisabledError
from tests.support.factories import begin_turn, finish_turn, make_document
from tests.support.users import AppUser, UserFactory

ADMIN_CALLS = [
    ("admin_list_users", {}), ("admin_get_user", {"p_user_id": str(uuid.uuid4())}),
    ("admin_update_user", {"p_user_id": str(uuid.uuid4()), "p_disabled": True}),
    ("admin_read_documents", {}), ("admin_read_document", {"p_document_id": str(uuid.uuid4())}),
    ("admin_begin_document_delete", {"p_document_id": str(uuid.uuid4())}),
    ("admin_read_sessions", {}), ("admin_list_session_messages", {"p_session_id": str(uuid.uuid4())}),
    ("admin_usage_report", {}), ("admin_list_audit", {}),
    ("admin_health_report", {"p_migrations": [], "p_pending_seconds": 60}),
]
# Superseded: a second implementation of a report, or a read of other users' content that skipped the audit.
DROPPED = ["get_usage_summary", "admin_usage", "admin_usage_rows", "admin_health", "admin_list_documents",
           "admin_get_document", "admin_list_sessions", "admin_finish_document_delete"]


@pytest.mark.parametrize(("function", "args"), ADMIN_CALLS)
def test_admin_functions_refuse_a_plain_user(db: Database, users: UserFactory, function: str, args: dict) -> None:
    with pytest.raises(ForbiddenError):
        db.call(function, args, users.create().identity)


def test_superseded_and_unaudited_functions_are_gone(database_url: str) -> None:
    # Given the catalog, when the superseded functions are looked up, then none is left
    with psycopg.connect(database_url) as conn:
        left = conn.execute("select p.oid::regprocedure::text from pg_proc p where p.proname = any(%s)"
                            " and p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)",
                            [DROPPED + ["usage_range", "usage_report", "document_turns"]]).fetchall()
    assert left == []


def test_admin_sees_users_documents_sessions_and_usage(db: Database, users: UserFactory) -> None:
    admin, user = users.create(admin=True), users.create()
    doc = make_document(db, user)
    finish_turn(db, user, begin_turn(db, user), cost=Decimal("0.25"))
    listed = db.call("admin_list_users", {"p_search": user.email[:10]}, admin.identity)
    row = next(u for u in listed["items"] if u["id"] == user.id)
    assert row["documents"] == 1 and row["sessions"] == 1 and row["cost_this_month_usd"] == Decimal("0.25")
    assert db.call("admin_read_document", {"p_document_id": doc["id"]}, admin.identity)["owner_id"] == user.id
    docs = db.call("admin_read_documents", {"p_user_id": user.id}, admin.identity)
    assert [d["id"] for d in docs["items"]] == [doc["id"]]
    sessions = db.call("admin_read_sessions", {"p_user_id": user.id}, admin.identity)
    assert sessions["items"][0]["user_id"] == user.id and sessions["items"][0]["message_count"] == 2
    assert sessions["items"][0]["cost_usd"] == Decimal("0.25")
    usage = db.call("admin_usage_report", {"p_group_by": "user"}, admin.identity)
    assert any(r["key"] == user.id and r["cost_usd"] == Decimal("0.25") for r in usage["rows"])


def test_admin_answers_carry_no_openai_ids(db: Database, users: UserFactory) -> None:
    # Given a user's document and session
    admin, user = users.create(admin=True), users.create()
    doc = make_document(db, user)
    turn = begin_turn(db, user)
    finish_turn(db, user, turn)
    session_id = turn["session"]["id"]
    # When an admin reads them and starts deleting the document through the user API
    answers = [db.call("admin_read_documents", {"p_user_id": user.id}, admin.identity),
               db.call("admin_read_document", {"p_document_id": doc["id"]}, admin.identity),
               db.call("admin_read_sessions", {"p_user_id": user.id}, admin.identity),
               db.call("admin_list_session_messages", {"p_session_id": session_id}, admin.identity),
               db.call("admin_begin_document_delete", {"p_document_id": doc["id"]}, admin.identity)]
    # Then no answer names an OpenAI object, and the delete only marked the row
    text = repr(answers)
    assert doc["openai_file_id"] not in text and doc["vector_store_id"] not in text
    assert "openai_file_id" not in text and "vector_store_id" not in text and "openai_conversation_id" not in text
    assert answers[-1]["status"] == "deleting" and answers[-1]["owner_id"] == user.id


def test_message_content_is_backend_api_only(db: Database, users: UserFactory, database_url: str) -> None:
    # Given a user's finished turn
    admin, user = users.create(admin=True), users.create()
    turn = begin_turn(db, user, "a private question")
    finish_turn(db, user, turn, content="a private answer")
    session_id = turn["session"]["id"]
    # When an admin calls the user API directly (no user-callable function takes a content switch)
    plain = db.call("admin_list_session_messages", {"p_session_id": session_id}, admin.identity)
    with psycopg.connect(database_url) as conn:
        switches = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'public'::regnamespace"
            " and has_function_privilege('authenticated', p.oid, 'execute')"
            " and exists (select 1 from unnest(p.proargnames) a where a like '%%content%%')").fetchall()
    assert switches == []
    # and the content-returning function with the admin's own token
    with pytest.raises(ForbiddenError):
        db.call("admin_read_session_messages", {"p_user_id": admin.id, "p_session_id": session_id}, admin.identity)
    # Then content and citations are withheld; only the backend acting for an admin reads them
    assert [(m["content"], m["citations"], m["content_withheld"]) for m in plain["items"]] == [
        (None, None, True), (None, None, True)]
    shown = db.call("admin_read_session_messages", {"p_session_id": session_id}, Identity.backend(admin.id))
    assert [m["content"] for m in shown["items"]] == ["a private question", "a private answer"]
    with pytest.raises(ForbiddenError):
        db.call("admin_read_session_messages", {"p_session_id": session_id}, Identity.backend(user.id))


def test_admin_changes_are_audited_and_take_effect(db: Database, users: UserFactory) -> None:
    admin, user = users.create(admin=True), users.create()
    db.call("get_my_profile", {}, user.identity)
    changed = db.call("admin_update_user", {"p_user_id": user.id, "p_monthly_budget_usd": Decimal("2.5"),
                                            "p_disabled": True}, admin.identity)
    assert changed["disabled"] is True and changed["monthly_budget_usd"] == Decimal("2.5")
    with pytest.raises(UserDisabledError):
        db.call("list_documents", {}, user.identity)
    audit = db.call("admin_list_audit", {"p_limit": 5}, admin.identity)["items"]
    assert audit[0]["action"] == "user.update" and audit[0]["target_id"] == user.id
    assert audit[0]["details"]["before"]["disabled"] is False and audit[0]["details"]["after"]["disabled"] is True


@pytest.mark.parametrize(("args", "error"), [
    ({"p_role": "root"}, InvalidInputError), ({"p_monthly_budget_usd": -1}, InvalidInputError), ({}, InvalidInputError),
])
def test_admin_update_rejects_bad_input(db: Database, users: UserFactory, args: dict, error: type) -> None:
    admin, user = users.create(admin=True), users.create()
    db.call("get_my_profile", {}, user.identity)
    with pytest.raises(error):
        db.call("admin_update_user", {"p_user_id": user.id, **args}, admin.identity)


def test_an_admin_cannot_lock_themselves_out(db: Database, users: UserFactory) -> None:
    admin = users.create(admin=True)
    db.call("get_my_profile", {}, admin.identity)
    for change in ({"p_role": "user"}, {"p_disabled": True}):
        with pytest.raises(InvalidInputError):
            db.call("admin_update_user", {"p_user_id": admin.id, **change}, admin.identity)
    with pytest.raises(NotFoundError):
        db.call("admin_get_user", {"p_user_id": str(uuid.uuid4())}, admin.identity)


def test_two_admins_demoting_each_other_at_once_leave_one_admin(db: Database, users: UserFactory,
                                                                database_url: str) -> None:
    # Given exactly two admins
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.user_profiles set role = 'user' where role = 'admin'")
    a, b = users.create(admin=True), users.create(admin=True)
    for admin in (a, b):
        db.call("get_my_profile", {}, admin.identity)
    # When each demotes the other at the same moment, on two connections
    start = threading.Barrier(2)

    def demote(actor: AppUser, target: AppUser) -> str:
        start.wait()
        try:
            db.call("admin_update_user", {"p_user_id": target.id, "p_role": "user"}, actor.identity)
        except (ForbiddenError, ConflictError) as exc:
            return exc.code
        return "demoted"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(lambda pair: demote(*pair), [(a, b), (b, a)]))
    # Then one change won, the other was refused, and one admin is left
    assert outcomes[0] == "demoted" and outcomes[1] in ("forbidden", "conflict")
    with psycopg.connect(database_url) as conn:
        admins = conn.execute("select count(*) from public.user_profiles where role = 'admin'").fetchone()
    assert admins == (1,)

