"""OpenAI failing during a turn: the right status, the user's message kept, the answer marked failed
with its reason, no cost for a call that did not run, and the session usable for the next turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.runtime import Runtime
from tests.chat.conftest import Apps, ask, auth, history, make_apps, parse_events, upload_text, usage_rows_of
from tests.chat.test_chat_turns import COMETS
from tests.support.functions import make_runtime
from tests.support.openai_front import OpenAIFront
from tests.support.users import UserFactory


@pytest.fixture(scope="module")
def front(standin: Any) -> Iterator[OpenAIFront]:
    server = OpenAIFront(standin.base_url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_runtime(psycopg_db: PsycopgDatabase, database_url: str, front: OpenAIFront) -> Iterator[Runtime]:
    rt = make_runtime(psycopg_db, database_url, front.base_url, openai_timeout_seconds=1.0)
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def apps(fault_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), fault_runtime)


@pytest.fixture
def session(apps: Apps, users: UserFactory) -> tuple[Any, str]:
    """A user with a document and a session that already had one answered turn."""
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    first = ask(apps, user, "What is a comet?")
    assert first.status_code == 200, first.json
    return user, first.json["session_id"]


def _assert_failed_then_recovers(apps: Apps, user: Any, session_id: str, database_url: str) -> dict[str, Any]:
    stored = history(apps, user, session_id)
    question, failed = stored[-2], stored[-1]
    assert (question["role"], question["status"]) == ("user", "complete")
    assert (failed["role"], failed["status"]) == ("assistant", "failed") and failed["error_code"]
    assert usage_rows_of(database_url, failed["id"]) == [] and failed["cost_usd"] in ("0", "0E-8", "0.00000000")
    again = ask(apps, user, "How often does Halley's comet return?", session_id=session_id)
    assert again.status_code == 200 and again.json["message"]["status"] == "complete", again.json
    return failed


@pytest.mark.parametrize(("fault", "status", "code"), [
    ({"status": 429, "retry_after": 7}, 429, "rate_limited"),
    ({"status": 500}, 503, "upstream_unavailable"),
    ({"status": 503}, 503, "upstream_unavailable"),
    ({"delay": 2.5}, 503, "upstream_unavailable"),
    ({"drop": True}, 503, "upstream_unavailable"),
])
def test_an_openai_failure_is_answered_recorded_and_not_billed(apps: Apps, session: tuple[Any, str], standin: Any,
                                                                database_url: str, fault: dict[str, Any],
                                                                status: int, code: str) -> None:
    user, session_id = session
    standin.inject_fault(r"^/responses$", method="POST", **fault)
    response = ask(apps, user, "What forms a comet's tail?", session_id=session_id)
    assert response.status_code == status and response.json["code"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "7"
    _assert_failed_then_recovers(apps, user, session_id, database_url)


def test_an_account_out_of_quota_is_503(apps: Apps, session: tuple[Any, str], front: OpenAIFront,
                                        database_url: str) -> None:
    user, session_id = session
    front.exhaust_quota()
    response = ask(apps, user, "What forms a comet's tail?", session_id=session_id)
    assert response.status_code == 503 and response.json["code"] == "openai_quota_exhausted"
    failed = _assert_failed_then_recovers(apps, user, session_id, database_url)
    assert failed["error_code"] == "insufficient_quota"


def test_a_stream_cut_mid_answer_is_502_and_leaves_the_turn_for_settlement(
        apps: Apps, session: tuple[Any, str], front: OpenAIFront, database_url: str) -> None:
    # Given a turn whose stream OpenAI cuts after the answer began (the response exists and may bill)
    user, session_id = session
    front.cut_stream_after(deltas=2)
    # When the user asks, streamed
    response = apps.chat.post("/", headers=auth(user), json={"message": "What forms a comet's tail?",
                                                             "session_id": session_id, "stream": True})
    # Then the stream ends with an error event, and no OpenAI id reaches the user
    events = [(n, d) for n, d in parse_events([response.get_data()]) if n != ":"]
    names = [n for n, _ in events]
    assert names[0] == "session" and "delta" in names and names[-1] == "error" and "done" not in names
    assert events[-1][1]["code"] == "upstream_error" and "resp_" not in response.get_data(as_text=True)
    # And the user's message is kept; the answer is pending (its response id stored), billed nothing yet
    stored = history(apps, user, session_id)
    question, pending = stored[-2], stored[-1]
    assert (question["role"], question["status"]) == ("user", "complete")
    assert (pending["role"], pending["status"]) == ("assistant", "pending")
    assert pending["id"] == events[0][1]["assistant_message_id"] and usage_rows_of(database_url, pending["id"]) == []
    # And the session is usable for the next turn
    again = ask(apps, user, "How often does Halley's comet return?", session_id=session_id)
    assert again.status_code == 200 and again.json["message"]["status"] == "complete", again.json


def test_a_failed_conversation_creation_fails_the_first_turn(apps: Apps, users: UserFactory, standin: Any,
                                                              database_url: str) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    standin.inject_fault(r"^/conversations$", method="POST", status=500)  # never retried: one attempt
    response = ask(apps, user, "What is a comet?")
    assert response.status_code == 503
    sessions = apps.sessions.get("/", headers=auth(user)).json["items"]
    [only] = sessions
    _assert_failed_then_recovers(apps, user, only["id"], database_url)
