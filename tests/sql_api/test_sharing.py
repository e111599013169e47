"""Sharing by invitation through the SQL API, on both transports: consent, no enumeration, no ids."""

from __future__ import annotations

import json

import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import ConflictError, EmailUnconfirmedError, ForbiddenError, NotFoundError
from tests.support.factories import make_document, share_with
from tests.support.users import AppUser, UserFactory


def _readable(db: Database, user: AppUser, doc_id: str) -> bool:
    try:
        db.call("get_document", {"p_document_id": doc_id}, user.identity)
    except NotFoundError:
        return False
    return True


def test_an_invitation_answers_alike_for_a_registered_and_an_unknown_email(db: Database, users: UserFactory) -> None:
    owner, known = users.create(), users.create()
    doc = make_document(db, owner)
    to_known = db.call("share_document", {"p_document_id": doc["id"], "p_email": f"  {known.email.upper()} "},
                       owner.identity)
    to_nobody = db.call("share_document", {"p_document_id": doc["id"], "p_email": "nobody@example.test"},
                        owner.identity)
    assert set(to_known) == set(to_nobody) == {"share_id", "email", "status"}
    assert to_known["status"] == to_nobody["status"] == "invited" and to_known["email"] == known.email.lower()
    again = db.call("share_document", {"p_document_id": doc["id"], "p_email": known.email}, owner.identity)
    assert again == to_known


def test_nothing_is_readable_before_acceptance_and_all_of_it_after(db: Database, users: UserFactory) -> None:
    owner, grantee = users.create(), users.create()
    doc = make_document(db, owner)
    invited = share_with(db, owner, doc, grantee, accept=False)
    assert not _readable(db, grantee, doc["id"])
    assert db.call("list_documents", {}, grantee.identity)["items"] == []
    pending = db.call("list_document_invitations", {}, grantee.identity)["items"]
    assert [(i["share_id"], i["document_id"], i["invited_by"]) for i in pending] == [
        (invited["share_id"], doc["id"], owner.email)]
    accepted = db.call("accept_document_invitation", {"p_share_id": invited["share_id"]}, Identity.backend(grantee.id))
    assert accepted["openai_file_id"] == doc["openai_file_id"] and accepted["status"] == "accepted"
    assert _readable(db, grantee, doc["id"])
    assert db.call("list_document_invitations", {}, grantee.identity)["items"] == []
    shares = db.call("list_document_shares", {"p_document_id": doc["id"]}, owner.identity)["items"]
    assert [(s["email"], s["status"]) for s in shares] == [(grantee.email, "accepted")]
    assert not {"user_id", "grantee_id", "vector_store_id"} & set(shares[0])


def test_declining_leaving_and_revoking(db: Database, users: UserFactory) -> None:
    owner, decliner, leaver, revoked = users.create(), users.create(), users.create(), users.create()
    doc = make_document(db, owner)
    declined = share_with(db, owner, doc, decliner, accept=False)
    assert db.call("decline_document_invitation", {"p_share_id": declined["share_id"]},
                   decliner.identity)["status"] == "declined"
    with pytest.raises(NotFoundError):
        db.call("accept_document_invitation", {"p_share_id": declined["share_id"]}, Identity.backend(decliner.id))
    share_with(db, owner, doc, leaver)
    left = db.call("leave_document_share", {"p_document_id": doc["id"]}, Identity.backend(leaver.id))
    assert left["openai_file_id"] == doc["openai_file_id"] and not _readable(db, leaver, doc["id"])
    with pytest.raises(NotFoundError):
        db.call("leave_document_share", {"p_document_id": doc["id"]}, Identity.backend(leaver.id))
    accepted = share_with(db, owner, doc, revoked)
    db.call("revoke_document_share", {"p_document_id": doc["id"], "p_share_id": accepted["share_id"]},
            Identity.backend(owner.id))
    assert not _readable(db, revoked, doc["id"])
    statuses = {s["email"]: s["status"] for s in
                db.call("list_document_shares", {"p_document_id": doc["id"]}, owner.identity)["items"]}
    assert statuses == {decliner.email: "declined", leaver.email: "left"}


def test_only_the_confirmed_owner_of_the_email_sees_or_takes_an_invitation(db: Database, users: UserFactory) -> None:
    owner, stranger = users.create(), users.create()
    unconfirmed = users.create(confirmed=False)
    doc = make_document(db, owner)
    to_unconfirmed = share_with(db, owner, doc, unconfirmed, accept=False)
    with pytest.raises(EmailUnconfirmedError):
        db.call("list_document_invitations", {}, unconfirmed.identity)
    with pytest.raises(EmailUnconfirmedError):
        db.call("accept_document_invitation", {"p_share_id": to_unconfirmed["share_id"]},
                Identity.backend(unconfirmed.id))
    assert db.call("list_document_invitations", {}, stranger.identity)["items"] == []
    with pytest.raises(NotFoundError):
        db.call("accept_document_invitation", {"p_share_id": to_unconfirmed["share_id"]}, Identity.backend(stranger.id))
    with pytest.raises(NotFoundError):
        db.call("decline_document_invitation", {"p_share_id": to_unconfirmed["share_id"]}, stranger.identity)


def test_readers_cannot_manage_shares(db: Database, users: UserFactory) -> None:
    owner, reader = users.create(), users.create()
    doc = make_document(db, owner)
    accepted = share_with(db, owner, doc, reader)
    with pytest.raises(ForbiddenError):
        db.call("share_document", {"p_document_id": doc["id"], "p_email": "x@example.test"}, reader.identity)
    with pytest.raises(ForbiddenError):
        db.call("list_document_shares", {"p_document_id": doc["id"]}, reader.identity)
    with pytest.raises(ForbiddenError):
        db.call("revoke_document_share", {"p_document_id": doc["id"], "p_share_id": accepted["share_id"]},
                Identity.backend(reader.id))
    with pytest.raises(ConflictError):
        db.call("decline_document_invitation", {"p_share_id": accepted["share_id"]}, reader.identity)


def test_direct_table_reads_show_no_openai_ids_and_no_grantee(database_url: str, psycopg_db: Database,
                                                             users: UserFactory) -> None:
    owner, reader = users.create(), users.create()
    doc = make_document(psycopg_db, owner)
    share_with(psycopg_db, owner, doc, reader)
    def as_user(conn: psycopg.Connection, user_id: str) -> None:
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     [json.dumps({"sub": user_id, "role": "authenticated"})])

    with psycopg.connect(database_url) as conn:
        as_user(conn, reader.id)
        assert conn.execute("select id::text, name from public.documents").fetchall() == [(doc["id"], "notes.txt")]
        for column in ("openai_file_id", "vector_store_id", "user_id"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"select {column} from public.documents")  # noqa: S608 - fixed names
            conn.rollback()
            as_user(conn, reader.id)
        # The owner cannot read who accepted (only list_document_shares, which names emails)
        conn.rollback()
        as_user(conn, owner.id)
        assert conn.execute("select count(*) from public.document_access").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from public.document_shares")
