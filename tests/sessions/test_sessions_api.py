"""The sessions function: create, list, read, rename, delete (with the OpenAI conversation), the
history page by page, full-text search with snippets, and the export."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.chat.conftest import Apps, ask, auth, history, upload_text
from tests.chat.test_chat_turns import BAKING, COMETS
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory

OPENAPI = build_openapi(registered_functions())
ROOT = Path(__file__).resolve().parents[2]


def test_create_list_get_rename_and_delete(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    doc = upload_text(apps, user, "comets.txt", COMETS)
    created = apps.sessions.post("/", headers=auth(user), json={"title": "Comets", "document_ids": [doc["id"]]})
    assert created.status_code == 201, created.json
    assert_matches_openapi(OPENAPI, "POST", "/sessions", 201, created.json)
    session = created.json
    assert session["title"] == "Comets" and session["document_ids"] == [doc["id"]] and session["message_count"] == 0
    untitled = apps.sessions.post("/", headers=auth(user), json={})
    assert untitled.status_code == 201 and untitled.json["title"] == "New chat"
    listed = apps.sessions.get("/", headers=auth(user))
    assert_matches_openapi(OPENAPI, "GET", "/sessions", 200, listed.json)
    assert [s["id"] for s in listed.json["items"]] == [untitled.json["id"], session["id"]]
    renamed = apps.sessions.patch(f"/{session['id']}", headers=auth(user), json={"title": "Icy bodies"})
    assert renamed.status_code == 200 and renamed.json["title"] == "Icy bodies"
    got = apps.sessions.get(f"/{session['id']}", headers=auth(user))
    assert_matches_openapi(OPENAPI, "GET", "/sessions/{id}", 200, got.json)
    assert got.json["title"] == "Icy bodies" and Decimal(got.json["cost_usd"]) == 0
    assert apps.sessions.delete(f"/{session['id']}", headers=auth(user)).status_code == 204
    assert apps.sessions.get(f"/{session['id']}", headers=auth(user)).status_code == 404


def test_a_new_session_with_an_idempotency_key_is_made_once(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    key = auth(user, **{"Idempotency-Key": "new-session-0001"})
    first = apps.sessions.post("/", headers=key, json={"title": "Once"})
    again = apps.sessions.post("/", headers=key, json={"title": "Once"})
    assert (first.status_code, again.status_code) == (201, 201) and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert apps.sessions.post("/", headers=key, json={"title": "Twice"}).status_code == 422
    assert len(apps.sessions.get("/", headers=auth(user)).json["items"]) == 1


@pytest.mark.parametrize(("body", "status"), [
    ({"document_ids": ["00000000-0000-4000-8000-000000000000"]}, 404),
    ({"title": ""}, 422),
    ({"title": 7}, 422),
    ({"title": "a\u0000b"}, 422),
    ({"title": "x" * 201}, 422),
    ({"colour": "blue"}, 422),
])
def test_a_bad_new_session_is_refused(apps: Apps, users: UserFactory, body: dict[str, Any], status: int) -> None:
    user = users.create()
    assert apps.sessions.post("/", headers=auth(user), json=body).status_code == status
    assert apps.sessions.get("/", headers=auth(user)).json["items"] == []


def test_delete_removes_the_conversation_and_keeps_the_usage(apps: Apps, users: UserFactory, runtime: Runtime,
                                                             psycopg_db: PsycopgDatabase, standin: Any) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    session_id = ask(apps, user, "What is a comet?").json["session_id"]
    conversation = psycopg_db.call("get_session", {"p_session_id": session_id}, user.identity)["openai_conversation_id"]
    spent = psycopg_db.call("get_my_profile", {}, user.identity)["budget"]["spent_usd"]
    # When OpenAI fails the conversation's deletion, nothing is deleted
    standin.inject_fault(r"^/conversations/", method="DELETE", status=500, times=3)
    failed = apps.sessions.delete(f"/{session_id}", headers=auth(user))
    assert failed.status_code == 503 and apps.sessions.get(f"/{session_id}", headers=auth(user)).status_code == 200
    standin.clear_faults()
    # And a retry deletes the conversation at OpenAI, then the session; the spend stays on record
    assert apps.sessions.delete(f"/{session_id}", headers=auth(user)).status_code == 204
    with pytest.raises(openai.NotFoundError):
        runtime.openai.client.conversations.retrieve(conversation)
    assert apps.sessions.get(f"/{session_id}/messages", headers=auth(user)).status_code == 404
    assert psycopg_db.call("get_my_profile", {}, user.identity)["budget"]["spent_usd"] == spent


def test_the_history_pages_in_order(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    session_id = ask(apps, user, "What is a comet?").json["session_id"]
    ask(apps, user, "How often does Halley's comet return?", session_id=session_id)
    everything = history(apps, user, session_id)
    page = apps.sessions.get(f"/{session_id}/messages?limit=3", headers=auth(user))
    assert_matches_openapi(OPENAPI, "GET", "/sessions/{id}/messages", 200, page.json)
    rest = apps.sessions.get(f"/{session_id}/messages?limit=3&cursor={page.json['next_cursor']}", headers=auth(user))
    assert page.json["items"] + rest.json["items"] == everything and rest.json["next_cursor"] is None
    assert [m["role"] for m in everything] == ["user", "assistant"] * 2
    assert all(m["usage"]["output_tokens"] for m in everything if m["role"] == "assistant")


def test_search_finds_titles_and_message_text_with_a_snippet(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    upload_text(apps, user, "baking.txt", BAKING)
    comets = ask(apps, user, "How often does Halley's comet return?").json["session_id"]
    baking = ask(apps, user, "Why does sourdough bread rise?").json["session_id"]
    titled = apps.sessions.post("/", headers=auth(user), json={"title": "Notes on telescopes"}).json["id"]
    # Message text, with stemming: "returning" finds "returns"
    found = apps.sessions.get("/?q=returning%20Halley", headers=auth(user))
    assert found.status_code == 200, found.json
    assert_matches_openapi(OPENAPI, "GET", "/sessions", 200, found.json)
    assert [s["id"] for s in found.json["items"]] == [comets]
    assert "**" in found.json["items"][0]["snippet"]
    assert [s["id"] for s in apps.sessions.get("/?q=yeast", headers=auth(user)).json["items"]] == [baking]
    by_title = apps.sessions.get("/?q=telescope", headers=auth(user)).json["items"]
    assert [s["id"] for s in by_title] == [titled] and by_title[0]["snippet"] == "Notes on **telescopes**"
    assert apps.sessions.get("/?q=volcano", headers=auth(user)).json["items"] == []
    assert apps.sessions.get("/?q=the", headers=auth(user)).json["items"] == []
    assert apps.sessions.get("/?q=" + "x" * 201, headers=auth(user)).status_code == 422


def test_export_as_json_and_markdown(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    turn = ask(apps, user, "How often does Halley's comet return?").json
    session_id = turn["session_id"]
    exported = apps.sessions.get(f"/{session_id}/export?format=json", headers=auth(user))
    assert exported.status_code == 200
    assert_matches_openapi(OPENAPI, "GET", "/sessions/{id}/export", 200, exported.json)
    assert exported.json["messages"] == history(apps, user, session_id)
    markdown = apps.sessions.get(f"/{session_id}/export?format=md", headers=auth(user))
    assert markdown.status_code == 200 and markdown.mimetype == "text/markdown"
    text = markdown.get_data(as_text=True)
    assert text.startswith("# How often does Halley's comet return?")
    assert turn["message"]["content"] in text
    for citation in turn["message"]["citations"]:
        assert citation["quote"] in text
    assert apps.sessions.get(f"/{session_id}/export?format=pdf", headers=auth(user)).status_code == 422


def test_another_user_sees_nothing_of_mine(apps: Apps, users: UserFactory) -> None:
    owner, other = users.create(), users.create()
    mine = upload_text(apps, owner, "comets.txt", COMETS)
    session_id = ask(apps, owner, "How often does Halley's comet return?").json["session_id"]
    # Every route of my session answers the other user 404, as a missing session does
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/messages"), ("GET", "/export")]:
        response = apps.sessions.open(f"/{session_id}{path}", method=method, headers=auth(other),
                                      json={"title": "mine now"} if method == "PATCH" else None)
        assert response.status_code == 404 and response.json["code"] == "not_found", (method, path)
    assert apps.sessions.get("/", headers=auth(other)).json["items"] == []
    assert apps.sessions.get("/?q=Halley", headers=auth(other)).json["items"] == []
    # And their chats never retrieve my documents, even when they ask for them by id
    theirs = upload_text(apps, other, "baking.txt", BAKING)
    answer = ask(apps, other, "How often does Halley's comet return?").json["message"]
    assert {c["document_id"] for c in answer["citations"]} <= {theirs["id"]}
    assert ask(apps, other, "Halley?", document_ids=[mine["id"]]).status_code == 404
    assert apps.sessions.post("/", headers=auth(other), json={"document_ids": [mine["id"]]}).status_code == 404
    # And my session is untouched
    assert apps.sessions.get(f"/{session_id}", headers=auth(owner)).json["message_count"] == 2


def test_the_sessions_function_does_not_import_the_openai_sdk() -> None:
    probe = ("import runpy, sys; runpy.run_path('functions/sessions/main.py'); "
             "print('openai' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
