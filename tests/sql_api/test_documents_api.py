"""The document registry's SQL API, through both transports (psycopg and supabase-py RPC)."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, QuotaExceededError
from tests.support.factories import make_document, sha256_of, share_with
from tests.support.users import UserFactory


def test_profile_is_created_on_first_sight(db: Database, users: UserFactory) -> None:
    user = users.create()
    profile = db.call("get_my_profile", {}, user.identity)
    assert profile["id"] == user.id and profile["email"] == user.email and profile["role"] == "user"
    assert profile["budget"]["spent_usd"] == 0 and profile["budget"]["remaining_usd"] > 0


def test_admin_role_comes_from_app_metadata(db: Database, users: UserFactory) -> None:
    admin = users.create(admin=True)
    assert db.call("get_my_profile", {}, admin.identity)["role"] == "admin"


def test_same_bytes_twice_are_one_document(db: Database, users: UserFactory) -> None:
    user = users.create()
    args = {"p_name": "a.txt", "p_mime_type": "text/plain", "p_size_bytes": 5, "p_sha256": sha256_of("hello")}
    first = db.call("create_document", args, Identity.backend(user.id))
    second = db.call("create_document", {**args, "p_name": "b.txt"}, Identity.backend(user.id))
    assert first["created"] is True and second["created"] is False
    assert first["document"]["id"] == second["document"]["id"]
    assert first["document"]["status"] == "uploading"


def test_a_failed_upload_of_the_same_bytes_is_taken_over(db: Database, users: UserFactory) -> None:
    user = users.create()
    failed = make_document(db, user, content="retry me", status="failed")
    again = db.call("create_document", {"p_name": "r.txt", "p_mime_type": "text/plain", "p_size_bytes": 8,
                                        "p_sha256": sha256_of("retry me")}, Identity.backend(user.id))
    assert again["created"] is True and again["document"]["id"] == failed["id"]
    assert again["document"]["status"] == "uploading" and again["document"]["error"] is None


def test_upload_lifecycle_and_status_refresh(db: Database, users: UserFactory) -> None:
    user = users.create()
    doc = make_document(db, user, status="processing")
    assert doc["status"] == "processing" and doc["openai_file_id"].startswith("file-")
    ready = db.call("record_document_status", {"p_document_id": doc["id"], "p_status": "ready"},
                    Identity.backend(user.id))
    assert ready["status"] == "ready" and "openai_file_id" not in ready
    with pytest.raises(ConflictError):
        db.call("finish_document_upload", {"p_document_id": doc["id"], "p_openai_file_id": "file-x",
                                           "p_vector_store_id": doc["vector_store_id"], "p_status": "ready"},
                Identity.backend(user.id))


def test_list_is_newest_first_paginated_and_filtered(db: Database, users: UserFactory) -> None:
    user = users.create()
    ids = [make_document(db, user, name=f"d{i}.txt")["id"] for i in range(5)]
    failed = make_document(db, user, status="failed")
    seen: list[str] = []
    cursor = None
    while True:
        page = db.call("list_documents", {"p_limit": 2, **({"p_cursor": cursor} if cursor else {})}, user.identity)
        assert len(page["items"]) <= 2
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [failed["id"], *reversed(ids)]
    only_failed = db.call("list_documents", {"p_status": "failed"}, user.identity)
    assert [d["id"] for d in only_failed["items"]] == [failed["id"]]


def test_delete_is_two_phase_and_a_second_delete_is_not_found(db: Database, users: UserFactory) -> None:
    user = users.create()
    doc = make_document(db, user)
    started = db.call("begin_document_delete", {"p_document_id": doc["id"]}, user.identity)
    assert started["status"] == "deleting" and "openai_file_id" not in started
    targets = db.call("document_delete_targets", {"p_document_id": doc["id"]}, Identity.backend(user.id))
    assert targets["openai_file_id"] == doc["openai_file_id"]
    assert targets["vector_store_ids"] == [doc["vector_store_id"]]
    done = db.call("finish_document_delete", {"p_document_id": doc["id"]}, Identity.backend(user.id))
    assert done["status"] == "deleted"
    with pytest.raises(NotFoundError):
        db.call("begin_document_delete", {"p_document_id": doc["id"]}, user.identity)
    assert db.call("list_documents", {}, user.identity)["items"] == []


def test_user_answers_carry_no_openai_ids(db: Database, users: UserFactory) -> None:
    owner, reader = users.create(), users.create()
    doc = make_document(db, owner)
    share_with(db, owner, doc, reader)
    answers = [db.call("get_document", {"p_document_id": doc["id"]}, who.identity) for who in (owner, reader)]
    answers += db.call("list_documents", {}, reader.identity)["items"]
    answers.append(db.call("get_my_profile", {}, owner.identity))
    for answer in answers:
        assert not {"openai_file_id", "vector_store_id"} & set(answer)
    assert answers[0]["owner_id"] == owner.id and "owner_id" not in answers[1] and "owner_id" not in answers[2]
    assert answers[1]["shared"] is True and answers[0]["shared"] is False


def test_delete_of_a_shared_document_names_every_accepted_store(db: Database, users: UserFactory) -> None:
    owner, reader, invited = users.create(), users.create(), users.create()
    for who in (reader, invited):
        db.call("set_user_vector_store", {"p_vector_store_id": f"vs_{who.id[:8]}"}, Identity.backend(who.id))
    doc = make_document(db, owner)
    share_with(db, owner, doc, reader)
    share_with(db, owner, doc, invited, accept=False)
    db.call("begin_document_delete", {"p_document_id": doc["id"]}, owner.identity)
    targets = db.call("document_delete_targets", {"p_document_id": doc["id"]}, Identity.backend(owner.id))
    assert sorted(targets["vector_store_ids"]) == sorted([doc["vector_store_id"], f"vs_{reader.id[:8]}"])


def test_quotas_on_documents_and_bytes(db: Database, users: UserFactory) -> None:
    user = users.create()
    backend = Identity.backend(user.id)

    def create(content: str, **quota: int) -> dict:
        return db.call("create_document", {"p_name": "q.txt", "p_mime_type": "text/plain", "p_size_bytes": len(content),
                                           "p_sha256": sha256_of(content), **quota}, backend)

    create("one", p_max_documents=2)
    create("two", p_max_documents=2)
    with pytest.raises(QuotaExceededError):
        create("three", p_max_documents=2)
    assert create("one", p_max_documents=2)["created"] is False  # the same bytes again are not a new document
    with pytest.raises(QuotaExceededError):
        create("x" * 100, p_max_bytes=50)
    with pytest.raises(InvalidInputError):
        create("four", p_max_documents=-1)


def test_vector_store_first_writer_wins(db: Database, users: UserFactory) -> None:
    user = users.create()
    first_id, second_id = f"vs_{user.id[:8]}_1", f"vs_{user.id[:8]}_2"
    first = db.call("set_user_vector_store", {"p_vector_store_id": first_id}, Identity.backend(user.id))
    second = db.call("set_user_vector_store", {"p_vector_store_id": second_id}, Identity.backend(user.id))
    assert first["won"] is True and second["won"] is False and second["vector_store_id"] == first_id
    with pytest.raises(ConflictError):
        db.call("set_user_vector_store", {"p_vector_store_id": first_id}, Identity.backend(users.create().id))
    with pytest.raises(ForbiddenError):
        db.call("set_user_vector_store", {"p_user_id": user.id, "p_vector_store_id": "vs_x"}, user.identity)


@pytest.mark.parametrize(("args", "error"), [
    ({"p_name": "", "p_mime_type": "text/plain", "p_size_bytes": 1, "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": "a\x07b", "p_mime_type": "text/plain", "p_size_bytes": 1, "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": "x" * 256, "p_mime_type": "text/plain", "p_size_bytes": 1, "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": -1, "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": 0, "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": 1, "p_sha256": "XYZ"}, InvalidInputError),
    ({"p_name": "a", "p_mime_type": "text/plain", "p_size_bytes": "ten", "p_sha256": "0" * 64}, InvalidInputError),
    ({"p_name": None, "p_mime_type": "text/plain", "p_size_bytes": 1, "p_sha256": "0" * 64}, InvalidInputError),
])
def test_create_document_rejects_bad_input(db: Database, users: UserFactory, args: dict, error: type) -> None:
    with pytest.raises(error):
        db.call("create_document", args, Identity.backend(users.create().id))


@pytest.mark.parametrize("args", [
    {"p_limit": 0}, {"p_limit": 101}, {"p_limit": -5}, {"p_cursor": "not-a-cursor"}, {"p_cursor": "00ff"},
    {"p_status": "bogus"}, {"p_limit": "many"},
])
def test_list_documents_rejects_bad_input(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("list_documents", args, users.create().identity)


@pytest.fixture(scope="module")
def crowd(database_url: str) -> int:
    """100,000 documents of 1,000 other users, seeded in one statement each, then analysed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("with u as (insert into auth.users (id, email, email_confirmed_at)"
                     " select gen_random_uuid(), 'crowd' || g || '@example.test', now() from generate_series(1, 1000) g"
                     " returning id, email) insert into public.user_profiles (id, email) select id, email from u")
        conn.execute("insert into public.documents (user_id, name, mime_type, size_bytes, sha256, status)"
                     " select up.id, 'd' || g || '.txt', 'text/plain', 10,"
                     " encode(sha256(convert_to(up.id::text || g, 'UTF8')), 'hex'), 'ready'"
                     " from public.user_profiles up cross join generate_series(1, 100) g where up.email like 'crowd%'")
        conn.execute("analyze public.documents; analyze public.document_access; analyze public.user_profiles")
        return conn.execute("select count(*) from public.documents").fetchone()[0]


def _plans_of(database_url: str, user_id: str, statement: str) -> str:
    """Every plan PostgreSQL ran for ``statement`` as ``user_id`` (nested statements included, through
    auto_explain), as one text."""
    notices: list[str] = []
    with psycopg.connect(database_url) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("load 'auto_explain'")
        conn.execute("set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on;"
                     " set auto_explain.log_level = notice")
        if not statement.startswith("select private."):  # private helpers are called by the API's owner
            conn.execute("select set_config('role', 'authenticated', true),"
                         " set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": user_id, "role": "authenticated"})])
        conn.execute(statement).fetchall()
    return "\n".join(notices)


def test_reads_of_what_a_user_may_see_use_indexes_among_100k_documents(db: Database, users: UserFactory,
                                                                        database_url: str, crowd: int) -> None:
    # Given a user with documents of their own and an accepted share, among 100k documents of others
    assert crowd >= 100_000
    user, friend = users.create(), users.create()
    for _ in range(3):
        make_document(db, user)
    share_with(db, friend, make_document(db, friend), user)
    # When they read their documents three ways: the list, the readable-ids helper, the table itself
    for statement in ["select public.list_documents()",
                      f"select private.readable_document_ids('{user.id}'::uuid)",
                      "select id from public.documents"]:
        plans = _plans_of(database_url, user.id, statement)
        # Then no plan scans the documents table whole
        assert "Index" in plans, statement
        assert not re.search(r"Seq Scan on documents", plans), (statement, plans)
