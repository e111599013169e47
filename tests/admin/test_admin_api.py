"""The admin function: admins only (401 without a token, 403 for a user), the role read from the
profile on every request, the last admin kept, and every write and every read of another user's
content in the audit log."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import flask
import flask.testing
import jwt
import psycopg
import pytest

from common.db.base import Database, Identity
from common.errors import DatabaseUnavailableError, ForbiddenError, InvalidInputError
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.admin.conftest import record_registry_run, with_admin_settings
from tests.support.factories import begin_turn, finish_turn, make_document, share_with
from tests.support.functions import build_function_app
from tests.support.jwt_keys import supabase_claims
from tests.support.openapi import assert_matches_openapi
from tests.support.postgres import PostgresForTests
from tests.support.users import TEST_JWT_SECRET, AppUser, UserFactory
from tests.upload.conftest import auth
from tests.usage.seeding import signed_in

OPENAPI = build_openapi(registered_functions())


def _endpoints(target: AppUser, document_id: str, session_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/users?q=example", None),
        ("GET", f"/users/{target.id}", None),
        ("PATCH", f"/users/{target.id}", {"monthly_budget_usd": "12.5"}),
        ("GET", f"/documents?user_id={target.id}", None),
        ("GET", f"/documents/{document_id}", None),
        ("GET", f"/sessions?user_id={target.id}", None),
        ("GET", f"/sessions/{session_id}/messages", None),
        ("GET", "/usage?group_by=model", None),
        ("GET", "/usage.csv?group_by=service", None),
        ("GET", "/health", None),
        ("GET", "/audit?limit=5", None),
        ("DELETE", f"/documents/{document_id}", None),
    ]


def _openapi_path(path: str) -> str:
    parts = ["{id}" if _is_uuid(p) else p for p in path.split("?")[0].strip("/").split("/")]
    return "/admin/" + "/".join(parts)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def test_every_endpoint_is_for_admins_only(client: flask.testing.FlaskClient, users: UserFactory,
                                           psycopg_db: Database) -> None:
    # given an admin, a user, and the user's document and chat session; a fresh registry run
    admin, user = users.create(admin=True), users.create()
    doc = make_document(psycopg_db, user)
    turn = begin_turn(psycopg_db, user)
    finish_turn(psycopg_db, user, turn)
    record_registry_run(psycopg_db)
    for method, path, body in _endpoints(user, doc["id"], turn["session"]["id"]):
        # when called without a token, as a user, then as an admin
        anonymous = client.open(path, method=method, json=body)
        as_user = client.open(path, method=method, json=body, headers=auth(user))
        as_admin = client.open(path, method=method, json=body, headers=auth(admin))
        # then 401, 403, and success
        assert anonymous.status_code == 401, (method, path)
        assert (as_user.status_code, as_user.json["code"]) == (403, "forbidden"), (method, path)
        expected = 204 if method == "DELETE" else 200
        assert as_admin.status_code == expected, (method, path, as_admin.get_data(as_text=True))
        if as_admin.mimetype == "application/json":
            assert_matches_openapi(OPENAPI, method, _openapi_path(path), expected, as_admin.json)


def test_the_role_comes_from_the_profile_and_changes_on_the_next_request(
        client: flask.testing.FlaskClient, users: UserFactory, psycopg_db: Database) -> None:
    # given an admin and a user whose token claims admin in user_metadata (which anyone can set)
    admin, user = users.create(admin=True), users.create()
    signed_in(psycopg_db, user)
    claims = {**jwt.decode(user.token, options={"verify_signature": False}), "user_metadata": {"role": "admin"}}
    self_promoted = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    assert client.get("/users", headers={"Authorization": f"Bearer {self_promoted}"}).status_code == 403
    # when the admin promotes the user, the user's next request is an admin's
    promoted = client.patch(f"/users/{user.id}", json={"role": "admin"}, headers=auth(admin))
    assert promoted.status_code == 200 and promoted.json["role"] == "admin"
    assert client.get("/users", headers=auth(user)).status_code == 200
    # and when demoted again, the next request is refused, whatever the token's app_metadata says
    assert client.patch(f"/users/{user.id}", json={"role": "user"}, headers=auth(admin)).status_code == 200
    assert client.get("/users", headers=auth(user)).status_code == 403
    stale_admin_token = jwt.encode(supabase_claims(sub=user.id, email=user.email, app_metadata={"role": "admin"}),
                                   TEST_JWT_SECRET, algorithm="HS256")
    assert client.get("/users", headers={"Authorization": f"Bearer {stale_admin_token}"}).status_code == 403


def test_users_are_searched_by_email_with_their_figures(client: flask.testing.FlaskClient, users: UserFactory,
                                                        psycopg_db: Database) -> None:
    admin = users.create(admin=True)
    marker = uuid.uuid4().hex[:10]
    user = users.create(email=f"findme-{marker}@example.test")
    make_document(psycopg_db, user)
    finish_turn(psycopg_db, user, begin_turn(psycopg_db, user), cost=Decimal("0.25"))
    found = client.get(f"/users?q={marker}", headers=auth(admin)).json["items"]
    assert [(u["id"], u["documents"], u["sessions"], Decimal(u["cost_this_month_usd"])) for u in found] == [
        (user.id, 1, 1, Decimal("0.25"))]
    bad = client.patch(f"/users/{user.id}", json={"monthly_budget_usd": "-1"}, headers=auth(admin))
    assert bad.status_code == 422
    missing = client.get(f"/users/{uuid.uuid4()}", headers=auth(admin))
    assert (missing.status_code, missing.json["code"]) == (404, "not_found")


def test_the_only_admin_cannot_demote_or_disable_themselves(client: flask.testing.FlaskClient,
                                                            users: UserFactory) -> None:
    admin = users.create(admin=True)
    for change in ({"role": "user"}, {"disabled": True}):
        refused = client.patch(f"/users/{admin.id}", json=change, headers=auth(admin))
        assert (refused.status_code, refused.json["code"]) == (400, "invalid_input")
    assert client.get("/users", headers=auth(admin)).status_code == 200


def test_two_admins_demoting_each_other_at_once_leave_one_admin(postgres: PostgresForTests) -> None:
    # given a database whose only admins are a and b
    from common.db.psycopg_transport import PsycopgDatabase

    url = postgres.new_database("last_admin")
    people = UserFactory(url)
    db = PsycopgDatabase(url, max_size=4, timeout_seconds=10)
    try:
        a, b = people.create(admin=True), people.create(admin=True)
        for admin in (a, b):
            db.call("get_my_profile", {}, admin.identity)
        outcomes: list[str] = []

        def demote(actor: AppUser, target: AppUser) -> None:
            try:
                db.call("admin_update_user", {"p_user_id": target.id, "p_role": "user"}, actor.identity)
                outcomes.append("demoted")
            except (InvalidInputError, ForbiddenError):
                outcomes.append("refused")
            except DatabaseUnavailableError:  # a deadlock between the two (SQLSTATE 40P01)
                outcomes.append("unavailable")

        # when each demotes the other while both profiles are locked, so both calls are under way
        # before either can finish
        with psycopg.connect(url) as blocker:
            blocker.execute("select 1 from public.user_profiles where id in (%s, %s) for update", [a.id, b.id])
            threads = [threading.Thread(target=demote, args=pair) for pair in ((a, b), (b, a))]
            for t in threads:
                t.start()
            _wait_for_lock_waiters(blocker, 2)
            blocker.commit()
        for t in threads:
            t.join()
        # then one of them stays an admin
        with psycopg.connect(url) as conn:
            admins = conn.execute("select count(*) from public.user_profiles where role = 'admin'").fetchone()
        assert (sorted(outcomes), admins) == (["demoted", "refused"], (1,))
    finally:
        db.close()


def _wait_for_lock_waiters(conn: psycopg.Connection, count: int) -> None:
    with psycopg.connect(conn.info.dsn, autocommit=True) as watcher:
        for _ in range(200):
            row = watcher.execute("select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                                  " and datname = current_database()").fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"{count} calls never waited on the locked profiles")


def _audit(client: flask.testing.FlaskClient, admin: AppUser) -> list[dict[str, Any]]:
    return [e for e in client.get("/audit?limit=100", headers=auth(admin)).json["items"] if e["actor_id"] == admin.id]


def test_every_write_and_every_read_of_another_users_content_is_audited(
        client: flask.testing.FlaskClient, users: UserFactory, psycopg_db: Database, standin: Any) -> None:
    # given an admin and a user with a document and a session
    admin, user = users.create(admin=True), users.create()
    doc = make_document(psycopg_db, user)
    turn = begin_turn(psycopg_db, user)
    finish_turn(psycopg_db, user, turn)
    session_id = turn["session"]["id"]
    standin.clear_requests()
    # when the admin reads and changes them
    client.get(f"/documents?user_id={user.id}", headers=auth(admin))
    client.get(f"/documents/{doc['id']}", headers=auth(admin))
    client.get(f"/sessions?user_id={user.id}", headers=auth(admin))
    client.get(f"/sessions/{session_id}/messages", headers=auth(admin))
    assert client.delete(f"/documents/{doc['id']}", headers=auth(admin)).status_code == 204
    client.patch(f"/users/{user.id}", json={"monthly_budget_usd": "3", "disabled": True}, headers=auth(admin))
    # then each is in the audit log, newest first, with its target and the change
    entries = _audit(client, admin)
    assert [(e["action"], e["target_id"]) for e in entries] == [
        ("user.update", user.id), ("document.delete", doc["id"]),
        ("session.messages.read", session_id), ("sessions.read", user.id), ("document.read", doc["id"]),
        ("documents.read", user.id)]
    update = entries[0]["details"]
    assert update["before"]["disabled"] is False and update["after"]["disabled"] is True
    assert Decimal(str(update["after"]["monthly_budget_usd"])) == Decimal("3")
    assert entries[1]["details"]["before"] == {"status": "ready"} and entries[1]["details"]["owner_id"] == user.id
    assert entries[3]["details"]["session_ids"] == [session_id]
    # and the delete was complete: the OpenAI file is gone, the row is deleted
    gone = client.get(f"/documents/{doc['id']}", headers=auth(admin)).json
    assert gone["status"] == "deleted"
    assert ("DELETE", f"/v1/files/{doc['openai_file_id']}") in [(r.method, r.path) for r in standin.requests]


def test_the_admin_delete_is_the_owners_complete_delete(
        client: flask.testing.FlaskClient, users: UserFactory, psycopg_db: Database, standin: Any) -> None:
    # given a user's document shared with a reader who accepted it
    admin, owner, reader = users.create(admin=True), users.create(), users.create()
    doc = make_document(psycopg_db, owner)
    reader_store = psycopg_db.call("set_user_vector_store", {"p_vector_store_id": f"vs_reader_{uuid.uuid4().hex[:8]}"},
                                   Identity.backend(reader.id))["vector_store_id"]
    share_with(psycopg_db, owner, doc, reader)
    standin.clear_requests()
    # when an admin deletes it
    deleted = client.delete(f"/documents/{doc['id']}", headers=auth(admin))
    # then the file left both stores and OpenAI, as the owner's delete does, and the row is deleted
    assert deleted.status_code == 204
    requests = [(r.method, r.path) for r in standin.requests]
    assert ("DELETE", f"/v1/files/{doc['openai_file_id']}") in requests
    detached = {path for method, path in requests if method == "DELETE" and "/vector_stores/" in path}
    assert detached == {f"/v1/vector_stores/{store}/files/{doc['openai_file_id']}"
                        for store in (doc["vector_store_id"], reader_store)}
    assert client.get(f"/documents/{doc['id']}", headers=auth(admin)).json["status"] == "deleted"
    assert psycopg_db.call("list_documents", {}, reader.identity)["items"] == []


def test_deleting_a_disabled_owners_document_is_left_to_the_registry_refresh(
        client: flask.testing.FlaskClient, users: UserFactory, psycopg_db: Database, standin: Any) -> None:
    # given a disabled user's document
    admin, owner = users.create(admin=True), users.create()
    doc = make_document(psycopg_db, owner)
    client.patch(f"/users/{owner.id}", json={"disabled": True}, headers=auth(admin))
    standin.clear_requests()
    # when an admin deletes it
    answer = client.delete(f"/documents/{doc['id']}", headers=auth(admin))
    # then the answer says it is not finished, nothing was removed at OpenAI, the row is marked
    # deleting (the registry refresh removes it) and the start is audited
    assert (answer.status_code, answer.json["code"]) == (409, "conflict")
    assert not [r for r in standin.requests if r.method == "DELETE"]
    assert client.get(f"/documents/{doc['id']}", headers=auth(admin)).json["status"] == "deleting"
    pending = psycopg_db.call("registry_pending_deletes", {"p_older_seconds": 0}, Identity.service())
    assert doc["id"] in [p["document_id"] for p in pending]
    assert [e["action"] for e in _audit(client, admin)][:3] == ["document.read", "document.delete", "user.update"]


def test_message_content_is_withheld_unless_the_setting_allows_it(
        runtime: Runtime, client: flask.testing.FlaskClient, functions_dir: Any, users: UserFactory,
        psycopg_db: Database) -> None:
    # given a user's finished turn
    admin, user = users.create(admin=True), users.create()
    turn = begin_turn(psycopg_db, user, "my private question")
    finish_turn(psycopg_db, user, turn, cost=Decimal("0.002"), content="a private answer")
    path = f"/sessions/{turn['session']['id']}/messages"
    # when read with ADMIN_CAN_READ_MESSAGES off (the default), then on
    hidden = client.get(path, headers=auth(admin)).json["items"]
    reading = build_function_app(functions_dir, "admin", with_admin_settings(runtime, can_read_messages=True))
    shown = reading.test_client().get(path, headers=auth(admin)).json["items"]
    # then metadata and costs stay visible; content only when allowed
    assert [(m["role"], m["content"], m["content_withheld"]) for m in hidden] == [
        ("user", None, True), ("assistant", None, True)]
    assert Decimal(hidden[1]["cost_usd"]) == Decimal("0.002") and hidden[1]["input_tokens"] == 1000
    assert [m["content"] for m in shown] == ["my private question", "a private answer"]
    assert [e["details"]["content"] for e in _audit(client, admin)] == [True, False]


def test_another_admins_unknown_ids_answer_404(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    admin = users.create(admin=True)
    for path in (f"/documents/{uuid.uuid4()}", f"/sessions/{uuid.uuid4()}/messages", f"/users/{uuid.uuid4()}"):
        missing = client.get(path, headers=auth(admin))
        assert (missing.status_code, missing.json["code"]) == (404, "not_found"), path
    assert client.delete(f"/documents/{uuid.uuid4()}", headers=auth(admin)).status_code == 404
    bad = client.get("/usage?group_by=colour", headers=auth(admin))
    assert (bad.status_code, bad.json["code"]) == (422, "validation_failed")
