"""The document registry's SQL API, through both transports (psycopg and supabase-py RPC)."""

from __future__ import annotations

import pytest

from common.db.base import Database, Identity
from common.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from tests.support.factories import make_document, sha256_of
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
    first = db.call("create_document", args, user.identity)
    second = db.call("create_document", {**args, "p_name": "b.txt"}, user.identity)
    assert first["created"] is True and second["created"] is False
    assert first["document"]["id"] == second["document"]["id"]
    assert first["document"]["status"] == "uploading"


def test_a_failed_upload_of_the_same_bytes_is_taken_over(db: Database, users: UserFactory) -> None:
    user = users.create()
    failed = make_document(db, user, content="retry me", status="failed")
    again = db.call("create_document", {"p_name": "r.txt", "p_mime_type": "text/plain", "p_size_bytes": 8,
                                        "p_sha256": sha256_of("retry me")}, user.identity)
    assert again["created"] is True and again["document"]["id"] == failed["id"]
    assert again["document"]["status"] == "uploading" and again["document"]["error"] is None


def test_upload_lifecycle_and_status_refresh(db: Database, users: UserFactory) -> None:
    user = users.create()
    doc = make_document(db, user, status="processing")
    assert doc["status"] == "processing" and doc["openai_file_id"].startswith("file-")
    ready = db.call("record_document_status", {"p_document_id": doc["id"], "p_status": "ready"}, user.identity)
    assert ready["status"] == "ready"
    with pytest.raises(ConflictError):
        db.call("finish_document_upload", {"p_document_id": doc["id"], "p_openai_file_id": "file-x",
                                           "p_vector_store_id": "vs_x", "p_status": "ready"}, user.identity)


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
    assert started["openai_file_id"] == doc["openai_file_id"]
    assert started["vector_store_ids"] == [doc["vector_store_id"]]
    assert started["document"]["status"] == "deleting"
    done = db.call("finish_document_delete", {"p_document_id": doc["id"]}, user.identity)
    assert done["status"] == "deleted"
    with pytest.raises(NotFoundError):
        db.call("begin_document_delete", {"p_document_id": doc["id"]}, user.identity)
    assert db.call("list_documents", {}, user.identity)["items"] == []


def test_sharing_gives_read_access_only_and_revoking_takes_it_back(db: Database, users: UserFactory) -> None:
    owner, reader, stranger = users.create(), users.create(), users.create()
    db.call("get_my_profile", {}, reader.identity)  # the reader has signed in once
    doc = make_document(db, owner)
    shared = db.call("share_document", {"p_document_id": doc["id"], "p_email": reader.email.upper()}, owner.identity)
    assert shared["user_id"] == reader.id and shared["created"] is True
    seen = db.call("get_document", {"p_document_id": doc["id"]}, reader.identity)
    assert seen["shared"] is True
    assert [d["id"] for d in db.call("list_documents", {}, reader.identity)["items"]] == [doc["id"]]
    with pytest.raises(ForbiddenError):
        db.call("begin_document_delete", {"p_document_id": doc["id"]}, reader.identity)
    with pytest.raises(ForbiddenError):
        db.call("share_document", {"p_document_id": doc["id"], "p_email": owner.email}, reader.identity)
    with pytest.raises(NotFoundError):
        db.call("get_document", {"p_document_id": doc["id"]}, stranger.identity)
    # Deleting a shared document names the reader's store too.
    db.call("set_user_vector_store", {"p_user_id": reader.id, "p_vector_store_id": f"vs_{reader.id[:8]}"}, Identity.service())
    revoked = db.call("revoke_document_access", {"p_document_id": doc["id"], "p_user_id": reader.id}, owner.identity)
    assert revoked["vector_store_id"] == f"vs_{reader.id[:8]}"
    with pytest.raises(NotFoundError):
        db.call("get_document", {"p_document_id": doc["id"]}, reader.identity)


def test_delete_of_a_shared_document_names_every_store(db: Database, users: UserFactory) -> None:
    owner, reader = users.create(), users.create()
    db.call("get_my_profile", {}, reader.identity)
    db.call("set_user_vector_store", {"p_user_id": reader.id, "p_vector_store_id": f"vs_{reader.id[:8]}"}, Identity.service())
    doc = make_document(db, owner)
    db.call("share_document", {"p_document_id": doc["id"], "p_email": reader.email}, owner.identity)
    started = db.call("begin_document_delete", {"p_document_id": doc["id"]}, owner.identity)
    assert sorted(started["vector_store_ids"]) == sorted([doc["vector_store_id"], f"vs_{reader.id[:8]}"])


def test_vector_store_first_writer_wins(db: Database, users: UserFactory) -> None:
    user = users.create()
    db.call("get_my_profile", {}, user.identity)
    first_id, second_id = f"vs_{user.id[:8]}_1", f"vs_{user.id[:8]}_2"
    first = db.call("set_user_vector_store", {"p_user_id": user.id, "p_vector_store_id": first_id}, Identity.service())
    second = db.call("set_user_vector_store", {"p_user_id": user.id, "p_vector_store_id": second_id}, Identity.service())
    assert first["won"] is True and second["won"] is False and second["vector_store_id"] == first_id
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
        db.call("create_document", args, users.create().identity)


@pytest.mark.parametrize("args", [
    {"p_limit": 0}, {"p_limit": 101}, {"p_limit": -5}, {"p_cursor": "not-a-cursor"}, {"p_cursor": "00ff"},
    {"p_status": "bogus"}, {"p_limit": "many"},
])
def test_list_documents_rejects_bad_input(db: Database, users: UserFactory, args: dict) -> None:
    with pytest.raises(InvalidInputError):
        db.call("list_documents", args, users.create().identity)
