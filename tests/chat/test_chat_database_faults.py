"""The database failing after OpenAI answered: the finish is retried (it is idempotent by response
id), and when the database stays away the request fails with 503, never reported as success, with
the response id logged at ERROR so the turn can be settled from it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from common.api.registry_refresh import run_steps
from common.db.base import Database
from common.registry import RegistryRun
from common.runtime import Runtime
from tests.chat.conftest import Apps, ask, auth, history, make_apps, upload_text, usage_rows_of
from tests.chat.test_chat_turns import COMETS
from tests.support.functions import make_runtime
from tests.support.users import AppUser, UserFactory


@pytest.fixture(scope="module")
def supabase_runtime(supabase_db: Database, database_url: str, standin: Any) -> Iterator[Runtime]:
    rt = make_runtime(supabase_db, database_url, standin.base_url)
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def apps(supabase_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), supabase_runtime)


def test_a_finish_that_fails_once_is_retried_and_billed_once(apps: Apps, users: UserFactory, postgrest: Any,
                                                             database_url: str) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    postgrest.inject_fault(drop=True, function="finish_chat_turn")
    response = ask(apps, user, "How often does Halley's comet return?")
    assert response.status_code == 200, response.json
    message = response.json["message"]
    assert history(apps, user, response.json["session_id"])[-1] == message
    assert len(usage_rows_of(database_url, message["id"])) == 2


def _a_session_with_its_conversation(apps: Apps, users: UserFactory) -> tuple[AppUser, str]:
    """A new user with a document and a session whose first turn made its OpenAI conversation."""
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    first = ask(apps, user, "What are comets made of?")
    assert first.status_code == 200, first.json
    return user, str(first.json["session_id"])


def _settled_by_the_refresh(runtime: Runtime, database_url: str, apps: Apps, user: AppUser, session_id: str,
                            message_id: str) -> dict[str, Any]:
    """Once the chat timeout has passed (the pending turn made older), one registry refresh settles
    the turn: it is complete with its answer and its two usage rows. Returns it as the history shows it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.chat_messages set created_at = created_at - interval '10 minutes' where id = %s",
                     [message_id])
    run = RegistryRun(runtime.database, runtime.openai.files, runtime.prices, runtime.settings.registry,
                      steps=run_steps(runtime)).execute()
    assert run["figures"]["turns_finished"] == 1, run
    [settled] = [m for m in history(apps, user, session_id) if m["id"] == message_id]
    assert settled["status"] == "complete" and settled["content"], settled
    assert len(usage_rows_of(database_url, settled["id"])) == 2
    return settled


def test_a_response_id_that_cannot_be_recorded_at_once_is_recorded_by_the_finish(
        apps: Apps, users: UserFactory, postgrest: Any, database_url: str) -> None:
    # given a session with its conversation, and the database lost just as OpenAI announces the
    # next turn's response (response.created)
    user, session_id = _a_session_with_its_conversation(apps, users)
    postgrest.inject_fault(drop=True, function="record_chat_response")
    # when the user asks, then the turn still answers, stored with its response id and billed once
    response = ask(apps, user, "How often does Halley's comet return?", session_id=session_id)
    assert response.status_code == 200, response.json
    message = response.json["message"]
    assert history(apps, user, response.json["session_id"])[-1] == message
    assert len(usage_rows_of(database_url, message["id"])) == 2
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select openai_response_id from public.chat_messages where id = %s", [message["id"]]).fetchone()
    assert row is not None and str(row[0]).startswith("resp_")


def test_a_database_that_stays_away_is_503_with_the_response_id_logged(apps: Apps, users: UserFactory,
                                                                       postgrest: Any, database_url: str,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    postgrest.inject_fault(drop=True, function="finish_chat_turn", times=10)
    with caplog.at_level(logging.ERROR, logger="common.chat"):
        response = ask(apps, user, "How often does Halley's comet return?")
    postgrest.clear_faults()
    assert response.status_code == 503 and response.json["code"] == "database_unavailable"
    assert "resp_" not in response.get_data(as_text=True)
    [logged] = [r for r in caplog.records if r.name == "common.chat"]
    assert "resp_" in logged.getMessage()
    sessions = apps.sessions.get("/", headers=auth(user)).json["items"]
    answer = history(apps, user, sessions[0]["id"])[-1]
    assert answer["status"] == "pending" and usage_rows_of(database_url, answer["id"]) == []


def test_an_answer_the_database_cannot_take_is_left_in_its_conversation_and_billed_once_by_the_refresh(
        apps: Apps, users: UserFactory, postgrest: Any, database_url: str, standin: Any,
        supabase_runtime: Runtime) -> None:
    # given a session with a conversation, and the database lost for the whole of the next turn's
    # writes after its begin: the response id at response.created, and every finish attempt
    user, session_id = _a_session_with_its_conversation(apps, users)
    postgrest.inject_fault(drop=True, function="record_chat_response")
    postgrest.inject_fault(drop=True, function="finish_chat_turn", times=10)
    # when the user asks again, then the request fails as unavailable, and the turn is pending without a response id
    again = ask(apps, user, "What do comet tails do?", session_id=session_id)
    postgrest.clear_faults()
    assert again.status_code == 503 and again.json["code"] == "database_unavailable", again.json
    pending = history(apps, user, session_id)[-1]
    assert pending["status"] == "pending" and usage_rows_of(database_url, pending["id"]) == []
    # and when the registry refresh settles it, then the answer OpenAI made is stored from the id its
    # conversation kept, billed once
    settled = _settled_by_the_refresh(supabase_runtime, database_url, apps, user, session_id, pending["id"])
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select openai_response_id from public.chat_messages where id = %s", [settled["id"]]).fetchone()
    assert row is not None and row[0] in standin.state.responses


def test_a_stream_cut_while_the_database_is_away_is_settled_from_the_id_its_conversation_kept(
        apps: Apps, users: UserFactory, postgrest: Any, database_url: str, standin: Any,
        supabase_runtime: Runtime) -> None:
    # given a session with a conversation; the next turn's stream is cut right after response.created
    # while the database refuses to record the response id (at response.created and once more after the cut)
    user, session_id = _a_session_with_its_conversation(apps, users)
    postgrest.inject_fault(drop=True, function="record_chat_response", times=2)
    standin.inject_fault(r"^/responses$", method="POST", cut_after_created=True)
    # when the user asks, then the request fails as unavailable and the turn stays pending
    cut = ask(apps, user, "What do comet tails do?", session_id=session_id)
    postgrest.clear_faults()
    assert cut.status_code == 503 and cut.json["code"] == "database_unavailable", cut.json
    pending = history(apps, user, session_id)[-1]
    assert pending["status"] == "pending"
    # and the refresh settles it from OpenAI with the id the conversation kept, billed once
    _settled_by_the_refresh(supabase_runtime, database_url, apps, user, session_id, pending["id"])
