"""The cross-user matrix: user B calls every id-bearing endpoint with user A's ids (and with an
invitation meant for user C). Every answer is 404, as for an id that does not exist, no request
reaches OpenAI, and A's document, session and invitation are as they were."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.battery.figures import record
from tests.battery.routes import Endpoint, user_endpoints
from tests.battery.stack import Stack
from tests.support.users import AppUser, UserFactory


@dataclass(frozen=True)
class Owned:
    """What user A owns: a document, a session, and an invitation of the document sent to user C."""

    owner: AppUser
    document_id: str
    session_id: str
    share_id: str


@pytest.fixture(scope="module")
def owned(users: UserFactory, stack: Stack) -> Owned:
    owner, invitee = users.create(), users.create()
    with stack.client(owner.token) as http:
        doc = http.post("/upload", files={"file": ("a.txt", b"Owner A's private notes on comets.", "text/plain")})
        assert doc.status_code == 201, doc.text
        session = http.post("/sessions", json={"title": "A's session"})
        assert session.status_code == 201, session.text
        share = http.post(f"/upload/{doc.json()['id']}/access", json={"email": invitee.email})
        assert share.status_code == 202, share.text
    return Owned(owner, doc.json()["id"], session.json()["id"], share.json()["share_id"])


def _ids_for(endpoint: Endpoint, owned: Owned) -> dict[str, str]:
    main = owned.session_id if endpoint.function == "sessions" else owned.document_id
    return {"id": main, "share_id": owned.share_id}


def _id_bearing() -> list[Endpoint]:
    return [e for e in user_endpoints() if e.route.path_params and e.function in ("upload", "sessions")]


def _snapshot(database_url: str, owned: Owned) -> tuple[Any, ...]:
    """A's rows that the matrix must not change (read directly, for the assertion only)."""
    with psycopg.connect(database_url) as conn:
        doc = conn.execute("select status, name, deleted_at from public.documents where id = %s",
                           [owned.document_id]).fetchone()
        session = conn.execute("select title, message_count, updated_at from public.chat_sessions where id = %s",
                               [owned.session_id]).fetchone()
        share = conn.execute("select status from public.document_shares where id = %s", [owned.share_id]).fetchone()
    return doc, session, share


def test_every_id_bearing_endpoint_answers_404_to_another_user(stack: Stack, users: UserFactory, owned: Owned,
                                                               standin: Any, database_url: str) -> None:
    # given user A's document, session and an invitation A sent to C, and a stranger B
    stranger = users.create()
    before = _snapshot(database_url, owned)
    standin.clear_requests()
    # when B calls every id-bearing endpoint with those ids, with a body that passes validation
    answers: dict[str, tuple[int, str]] = {}
    with stack.client(stranger.token) as http:
        for endpoint in _id_bearing():
            got = http.request(endpoint.method, endpoint.url(_ids_for(endpoint, owned)), **endpoint.valid_body())
            answers[str(endpoint)] = (got.status_code, got.json().get("code", ""))
    # then every answer is 404 not_found, nothing reached OpenAI and A's rows are unchanged
    record("cross_user", endpoints=len(answers), answered_404=sum(a == (404, "not_found") for a in answers.values()),
           openai_requests=len(standin.requests))
    assert len(answers) == 13
    assert {key: value for key, value in answers.items() if value != (404, "not_found")} == {}
    assert [r.path for r in standin.requests] == []
    assert _snapshot(database_url, owned) == before


def test_a_foreign_id_answers_exactly_like_a_missing_one(stack: Stack, users: UserFactory, owned: Owned) -> None:
    # given a stranger, A's ids and random ids that exist nowhere
    stranger = users.create()
    with stack.client(stranger.token) as http:
        for endpoint in _id_bearing():
            # when both are asked for
            foreign = http.request(endpoint.method, endpoint.url(_ids_for(endpoint, owned)), **endpoint.valid_body())
            missing = http.request(endpoint.method, endpoint.url(), **endpoint.valid_body())
            # then the answers differ only in their request id
            strip = ("request_id",)
            assert ({k: v for k, v in foreign.json().items() if k not in strip}
                    == {k: v for k, v in missing.json().items() if k not in strip}), str(endpoint)


def test_chat_with_another_users_session_or_document_is_404_and_never_reaches_openai(
        stack: Stack, users: UserFactory, owned: Owned, standin: Any) -> None:
    # given a stranger, and A's session and document ids
    stranger = users.create()
    standin.clear_requests()
    attempts = [{"session_id": owned.session_id}, {"document_ids": [owned.document_id]},
                {"session_id": owned.session_id, "stream": True}]
    # when the stranger chats naming them
    with stack.client(stranger.token) as http:
        answers = [http.post("/chat", json={"message": "What are A's notes?", **fields}) for fields in attempts]
    # then each is 404 and OpenAI saw nothing
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 3
    assert [r.path for r in standin.requests] == []
