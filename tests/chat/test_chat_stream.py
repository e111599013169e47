"""Streamed turns: Server-Sent Events in order while the answer is produced, heartbeats while OpenAI
is slow, ``done`` equal to the stored message, and a client that leaves early loses nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from common.settings import ChatSettings
from tests.chat.conftest import Apps, auth, history, make_apps, parse_events, upload_text, usage_rows_of
from tests.chat.test_chat_turns import COMETS
from tests.support.functions import make_runtime
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory

HEARTBEAT = 0.1
OPENAPI = build_openapi(registered_functions())


@pytest.fixture(scope="module")
def stream_runtime(psycopg_db: PsycopgDatabase, database_url: str, standin: Any) -> Iterator[Runtime]:
    rt = make_runtime(psycopg_db, database_url, standin.base_url, chat=ChatSettings(heartbeat_seconds=HEARTBEAT))
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def apps(stream_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), stream_runtime)


def _stream(apps: Apps, user: Any, message: str, **extra: Any) -> Any:
    headers = auth(user, **extra.pop("headers", {}))
    return apps.chat.post("/", headers=headers, json={"message": message, "stream": True, **extra}, buffered=False)


def test_events_arrive_in_order_while_openai_is_slow_and_done_is_what_is_stored(
        apps: Apps, users: UserFactory, standin: Any) -> None:
    # Given a document and an OpenAI that takes a second before it answers
    user = users.create()
    doc = upload_text(apps, user, "comets.txt", COMETS)
    standin.inject_fault(r"^/responses$", method="POST", delay=1.0)
    # When the user asks with stream: true
    started = time.monotonic()
    response = _stream(apps, user, "How often does Halley's comet return?")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    arrivals: list[tuple[float, list[tuple[str, Any]]]] = []
    for chunk in response.response:
        arrivals.append((time.monotonic() - started, parse_events([chunk])))
    response.close()
    events = [event for _, batch in arrivals for event in batch]
    names = [name for name, _ in events]
    # Then the session event came at once, heartbeats kept the connection alive, then the answer
    first_at, first = arrivals[0]
    assert first[0][0] == "session" and first_at < 0.9
    assert ":" in names[: names.index("delta")]
    answer = [name for name in names if name != ":"]
    assert answer[0] == "session" and answer[-1] == "done"
    assert set(answer[1:-1]) <= {"delta", "citation"} and "citation" in answer
    assert answer.index("citation") > answer.index("delta")
    data = [d for n, d in events if n != ":"]
    text = "".join(d["text"] for n, d in events if n == "delta")
    done = data[-1]
    assert done["message"]["content"] == text
    # And each citation came first as it arrived (no quote yet), then resolved exactly as stored
    cited = [c for n, c in events if n == "citation"]
    early, resolved = [c for c in cited if c["provisional"]], [c for c in cited if not c["provisional"]]
    assert early and all(c["quote"] is None and c["document_id"] == doc["id"] for c in early)
    assert cited.index(early[-1]) < cited.index(resolved[0])  # as they arrived, before the answer was stored
    assert [{k: v for k, v in c.items() if k != "provisional"} for c in resolved] == done["message"]["citations"]
    assert {c["document_id"] for c in done["message"]["citations"]} == {doc["id"]}
    # And every event is one the OpenAPI document describes
    for name, payload in events:
        if name != ":":
            assert_matches_openapi(OPENAPI, "POST", "/chat", 200, {"event": name, "data": json.dumps(payload)},
                                   content_type="text/event-stream")
    # And done is exactly what the history then returns
    stored = history(apps, user, done["session_id"])
    assert stored[-1] == done["message"]
    assert data[0]["assistant_message_id"] == done["message"]["id"]


def test_accept_event_stream_streams_too(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    response = apps.chat.post("/", headers=auth(user, Accept="text/event-stream"),
                              json={"message": "What is a comet's coma?"})
    assert response.mimetype == "text/event-stream"
    names = [name for name, _ in parse_events([response.get_data()]) if name != ":"]
    assert names[0] == "session" and names[-1] == "done"


def test_a_client_that_leaves_after_the_first_delta_still_gets_its_answer_stored_once(
        apps: Apps, users: UserFactory, standin: Any, database_url: str) -> None:
    # Given a streamed turn
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    response = _stream(apps, user, "What happens when a comet nears the Sun?")
    seen: list[tuple[str, Any]] = []
    chunks = iter(response.response)
    # When the client goes away after the first delta
    while not any(name == "delta" for name, _ in seen):
        seen.extend(parse_events([next(chunks)]))
    response.close()
    session_id = seen[0][1]["session_id"]
    # Then the whole answer is in the history, complete, and billed once
    stored = history(apps, user, session_id)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    answer = stored[1]
    assert answer["status"] == "complete" and answer["content"].startswith(seen[-1][1]["text"])
    assert len(answer["content"]) > len(seen[-1][1]["text"]) and answer["citations"]
    rows = usage_rows_of(database_url, answer["id"])
    assert sorted(r["service"] for r in rows) == ["chat", "file_search"]


def test_a_failure_after_the_stream_started_is_an_error_event(apps: Apps, users: UserFactory, standin: Any) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    standin.inject_fault(r"^/responses$", method="POST", status=500)
    response = _stream(apps, user, "What is a comet made of?")
    events = [(n, d) for n, d in parse_events(response.response) if n != ":"]
    response.close()
    assert [n for n, _ in events] == ["session", "error"]
    problem = events[1][1]
    assert_matches_openapi(OPENAPI, "POST", "/chat", 200, {"event": "error", "data": json.dumps(problem)},
                           content_type="text/event-stream")
    assert problem["status"] == 503 and problem["code"] == "upstream_unavailable"
    stored = history(apps, user, events[0][1]["session_id"])
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"), ("assistant", "failed")]


def test_an_event_whose_data_breaks_its_schema_does_not_match_the_document() -> None:
    # the data line is JSON text whose content the document describes: a wrong one is caught
    with pytest.raises(AssertionError):
        assert_matches_openapi(OPENAPI, "POST", "/chat", 200, {"event": "delta", "data": json.dumps({"txt": 1})},
                               content_type="text/event-stream")
    with pytest.raises(AssertionError):
        assert_matches_openapi(OPENAPI, "POST", "/chat", 200, {"event": "delta", "data": "not json"},
                               content_type="text/event-stream")
