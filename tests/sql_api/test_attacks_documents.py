"""Hostile calls of every document and sharing function a signed-in user can reach directly (on a
real Supabase project, POST /rest/v1/rpc/<function> with their own token), through both transports:
user B with user A's ids and with hostile arguments. Each is refused with a 4xx, and A's data is as
it was."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import AppError, NotFoundError
from tests.support.factories import make_document, share_with
from tests.support.users import AppUser, UserFactory

USER_API = ["get_my_profile", "get_document", "list_documents", "begin_document_delete", "share_document",
            "list_document_shares", "list_document_invitations", "decline_document_invitation"]
BACKEND_API = {
    "create_document": {"p_user_id": None, "p_name": "x.txt", "p_mime_type": "text/plain", "p_size_bytes": 1,
                        "p_sha256": "0" * 64},
    "set_user_vector_store": {"p_user_id": None, "p_vector_store_id": "vs_mine"},
    "finish_document_upload": {"p_user_id": None, "p_document_id": None, "p_openai_file_id": "file-x",
                               "p_vector_store_id": "vs_x", "p_status": "ready"},
    "fail_document_upload": {"p_user_id": None, "p_document_id": None, "p_error": "x"},
    "record_document_status": {"p_user_id": None, "p_document_id": None, "p_status": "failed", "p_error": "pwned"},
    "get_document_placement": {"p_user_id": None, "p_document_id": None},
    "document_delete_targets": {"p_user_id": None, "p_document_id": None},
    "finish_document_delete": {"p_user_id": None, "p_document_id": None},
    "accept_document_invitation": {"p_user_id": None, "p_share_id": None},
    "leave_document_share": {"p_user_id": None, "p_document_id": None},
    "revoke_document_share": {"p_user_id": None, "p_document_id": None, "p_share_id": None},
    "registry_record_storage": {"p_day": "2030-01-01", "p_rows": []},
}
HUGE = "x" * (10 * 1024 * 1024)
HOSTILE = [float("nan"), -1, 2**62, "NaN", "not-a-uuid", "0" * 40, HUGE, "a\x00b", {"a": 1}, [1, 2], True, None]


@pytest.fixture(scope="module")
def victim(psycopg_db: Database, users: UserFactory) -> dict[str, Any]:
    """User A with a document shared (accepted) with a friend and an invitation still pending."""
    a, friend, invitee = users.create(), users.create(), users.create()
    doc = make_document(psycopg_db, a)
    accepted = share_with(psycopg_db, a, doc, friend)
    pending = share_with(psycopg_db, a, doc, invitee, accept=False)
    return {"a": a, "friend": friend, "invitee": invitee, "doc": doc, "accepted": accepted, "pending": pending}


def _snapshot(database_url: str) -> list[Any]:
    with psycopg.connect(database_url) as conn:
        return [conn.execute("select id, user_id, status, error, openai_file_id, vector_store_id, name"
                             " from public.documents order by id").fetchall(),
                conn.execute("select id, status, email, grantee_id from public.document_shares order by id").fetchall(),
                conn.execute("select document_id, user_id from public.document_access order by 1, 2").fetchall(),
                conn.execute("select id, vector_store_id from public.user_profiles order by id").fetchall()]


def _never_sent(db: Database, value: Any) -> bool:
    """Values a client cannot put on the wire, so the database never sees them: JSON has no NaN
    (supabase-py refuses it, and PostgREST's parser refuses the bare token with 400), and libpq
    refuses a NUL byte in text (PostgREST, the public endpoint, is where NUL is tried)."""
    from common.db.psycopg_transport import PsycopgDatabase

    if isinstance(db, PsycopgDatabase):
        return isinstance(value, str) and "\x00" in value
    return isinstance(value, float) and value != value


def _signed_in(db: Database, users: UserFactory) -> AppUser:
    """User B, whose profile exists already (first sight creates it, which is not a change to A)."""
    b = users.create()
    db.call("get_my_profile", {}, b.identity)
    return b


def _refused(db: Database, function: str, args: dict[str, Any], who: AppUser | Identity, *,
             typed: bool = True) -> AppError:
    """The call fails; with ``typed`` (the arguments have types the function takes) it fails as the
    caller's fault (4xx). Arguments of types no function takes are refused by PostgreSQL before any
    function runs (42883; PostgREST answers a direct caller 404), which our transports report as a
    programming error."""
    identity = who if isinstance(who, Identity) else who.identity
    with pytest.raises(AppError) as caught:
        db.call(function, args, identity)
    if typed:
        assert caught.value.status < 500, (function, args.keys(), caught.value.code)
    return caught.value


def test_b_with_a_ids_is_refused_and_a_is_unchanged(db: Database, users: UserFactory, database_url: str,
                                                    victim: dict[str, Any]) -> None:
    b = _signed_in(db, users)
    doc_id, share_id = victim["doc"]["id"], victim["pending"]["share_id"]
    before = _snapshot(database_url)
    for function, args in [
        ("get_document", {"p_document_id": doc_id}), ("begin_document_delete", {"p_document_id": doc_id}),
        ("share_document", {"p_document_id": doc_id, "p_email": b.email}),
        ("list_document_shares", {"p_document_id": doc_id}),
        ("decline_document_invitation", {"p_share_id": share_id}),
        ("decline_document_invitation", {"p_share_id": victim["accepted"]["share_id"]}),
    ]:
        assert isinstance(_refused(db, function, args, b), NotFoundError), function
    assert db.call("list_documents", {}, b.identity)["items"] == []
    assert db.call("list_document_invitations", {}, b.identity)["items"] == []
    assert _snapshot(database_url) == before


@pytest.mark.parametrize("function", sorted(BACKEND_API))
def test_backend_functions_refuse_signed_in_users(db: Database, users: UserFactory, database_url: str,
                                                  victim: dict[str, Any], function: str) -> None:
    b = _signed_in(db, users)
    ids = {"p_user_id": victim["a"].id, "p_document_id": victim["doc"]["id"],
           "p_share_id": victim["pending"]["share_id"]}
    args = {k: ids.get(k, v) if v is None else v for k, v in BACKEND_API[function].items()}
    before = _snapshot(database_url)
    _refused(db, function, args, b)
    assert _snapshot(database_url) == before


@pytest.mark.parametrize("function", USER_API)
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: type(v).__name__ + (":" + repr(v)[:12]))
def test_hostile_arguments_are_refused(db: Database, users: UserFactory, database_url: str,
                                       victim: dict[str, Any], function: str, value: Any) -> None:
    b = _signed_in(db, users)
    args = {"get_my_profile": {}, "list_document_invitations": {},
            "get_document": {"p_document_id": value}, "begin_document_delete": {"p_document_id": value},
            "share_document": {"p_document_id": value, "p_email": value},
            "list_document_shares": {"p_document_id": value},
            "decline_document_invitation": {"p_share_id": value},
            "list_documents": {"p_status": value, "p_limit": value, "p_cursor": value}}[function]
    typed = bool(args) and (value is None or isinstance(value, str))
    if not args:
        args = {"p_anything": value}
    before = _snapshot(database_url)
    if _never_sent(db, value):
        with pytest.raises((ValueError, AppError)):
            db.call(function, args, b.identity)
    else:
        _refused(db, function, args, b, typed=typed)
    assert _snapshot(database_url) == before


def test_a_reader_cannot_set_status_and_nobody_points_a_document_at_another_users_objects(
        db: Database, users: UserFactory, database_url: str, victim: dict[str, Any]) -> None:
    friend, doc = victim["friend"], victim["doc"]
    before = _snapshot(database_url)
    # A reader, even acting through the backend, cannot write the owner's status or error.
    _refused(db, "record_document_status", {"p_document_id": doc["id"], "p_status": "failed", "p_error": "pwned"},
             Identity.backend(friend.id))
    # B's upload cannot take A's file id or A's store.
    b = users.create()
    mine = make_document(db, b, status="uploading")
    db.call("set_user_vector_store", {"p_vector_store_id": f"vs_b_{b.id[:8]}"}, Identity.backend(b.id))
    for file_id, store in [(doc["openai_file_id"], f"vs_b_{b.id[:8]}"), ("file-mine", doc["vector_store_id"])]:
        _refused(db, "finish_document_upload", {"p_document_id": mine["id"], "p_openai_file_id": file_id,
                                                "p_vector_store_id": store, "p_status": "ready"}, Identity.backend(b.id))
    _refused(db, "fail_document_upload", {"p_document_id": mine["id"], "p_error": "x",
                                          "p_openai_file_id": doc["openai_file_id"]}, Identity.backend(b.id))
    _refused(db, "set_user_vector_store", {"p_vector_store_id": doc["vector_store_id"]},
             Identity.backend(users.create().id))
    after = _snapshot(database_url)
    assert [r for r in after[0] if str(r[0]) != mine["id"]] == before[0] and after[1:3] == before[1:3]


def test_an_invitation_pushes_nothing_into_the_grantees_store_or_search(db: Database, users: UserFactory,
                                                                        victim: dict[str, Any]) -> None:
    invitee = victim["invitee"]
    assert db.call("list_documents", {}, invitee.identity)["items"] == []
    with pytest.raises(NotFoundError):
        db.call("get_document", {"p_document_id": victim["doc"]["id"]}, invitee.identity)
    ids = db.call("registry_pending_deletes", {"p_older_seconds": 0}, Identity.service())
    assert all(item["document_id"] != victim["doc"]["id"] for item in ids)
