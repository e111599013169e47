"""The process killed between steps: upload, delete, accepting a share, a chat turn (plain and
streamed) and the registry refresh, each served by a real child process (tests/battery/child_process.py)
that is SIGKILLed while one of its steps is under way, or after an OpenAI step answered and before
the database recorded it (tests/battery/kill_points.py); then one registry refresh, then the
invariants (tests/battery/invariants.py) and what the user sees: the document is usable or says
why, a turn says how it ended, and a turn OpenAI answered is billed exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.battery.child_process import FunctionsProcess, child_env
from tests.battery.figures import record
from tests.battery.kill_points import (
    ATTACH,
    CONVERSATION,
    DELETE_FILE,
    DETACH,
    FILE,
    LIST_FILES,
    LIST_STORE_FILES,
    LIST_STORES,
    MODEL,
    STORE,
    Call,
    KillRecord,
    KillScenario,
    Step,
    lock_document,
    lock_usage,
)
from tests.battery.stack import Stack
from tests.battery.test_fault_matrix import _invited, _ready_document, _upload
from tests.support.functions import REGISTRY_TOKEN
from tests.support.users import AppUser, UserFactory

RECORD = KillRecord()
TURNS: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def spawn(database_url: str, standin: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Callable[[], FunctionsProcess]]:
    """A fresh functions' process on the module's database and stand-in, serving (each scenario kills
    its own). The next one is launched as soon as one is handed out, so its cold start overlaps the
    scenario; any still running at the end is killed."""
    folder = tmp_path_factory.mktemp("killed-functions")
    env = child_env(database_url, standin.base_url, folder)
    started: list[FunctionsProcess] = []

    def launch() -> None:
        started.append(FunctionsProcess(env, folder / f"functions-{len(started)}.log"))

    def start() -> FunctionsProcess:
        process = started[-1].ready()
        launch()
        return process

    launch()
    yield start
    for process in started:
        process.kill()


@pytest.fixture
def kill(stack: Stack, spawn: Callable[[], FunctionsProcess], standin: Any, database_url: str) -> KillScenario:
    return KillScenario(stack, spawn, standin, database_url, RECORD)


def _documents(stack: Stack, user: AppUser) -> list[dict[str, Any]]:
    with stack.client(user.token) as http:
        listed = http.get("/upload")
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


def _usable_or_says_why(doc: dict[str, Any]) -> None:
    assert doc["status"] in ("ready", "processing", "failed"), doc
    if doc["status"] == "failed":
        assert doc["error"], doc


def _newest_document(database_url: str, user: AppUser) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select id::text from public.documents where user_id = %s order by created_at desc limit 1",
                           [user.id]).fetchone()
    assert row is not None, "the upload recorded no document"
    return str(row[0])


@pytest.mark.parametrize("step", [pytest.param(STORE, id="store"),
                                  pytest.param(FILE, id="file", marks=pytest.mark.long),
                                  pytest.param(ATTACH, id="attach", marks=pytest.mark.long)])
def test_an_upload_killed_while_openai_holds_a_step(kill: KillScenario, stack: Stack, users: UserFactory,
                                                    step: Step) -> None:
    # given a new user (so the upload creates the user's store too)
    user = users.create()
    # when the process is killed while OpenAI holds one step of the upload (and then performs it)
    kill.while_held(step, lambda http: _upload(http, f"kill-{step.name}.txt"), user.token)
    # then after one refresh every invariant holds, and the document is usable or says why
    assert kill.settle() == []
    docs = _documents(stack, user)
    assert len(docs) == 1, docs
    _usable_or_says_why(docs[0])


@pytest.mark.long
@pytest.mark.parametrize("step", [FILE, ATTACH], ids=lambda s: s.name)
def test_an_upload_of_a_user_with_a_store_killed_while_openai_holds_a_step(kill: KillScenario, stack: Stack,
                                                                          users: UserFactory, step: Step) -> None:
    # given a user who already has a document (and so a store)
    user = users.create()
    _ready_document(stack, user, f"first-{step.name}.txt")
    # when the process is killed while OpenAI holds one step of a second upload
    kill.while_held(step, lambda http: _upload(http, f"second-{step.name}.txt"), user.token)
    # then after one refresh every invariant holds, and both documents are usable or say why
    assert kill.settle() == []
    docs = _documents(stack, user)
    assert len(docs) == 2, docs
    for doc in docs:
        _usable_or_says_why(doc)


def test_an_upload_killed_after_the_attach_before_it_is_recorded(kill: KillScenario, stack: Stack,
                                                                 users: UserFactory, database_url: str) -> None:
    # given a new user
    user = users.create()
    # when OpenAI has attached the file but the process dies before the document records it
    kill.before_the_next_write(ATTACH, lambda http: _upload(http, "kill-after-attach.txt"), user.token,
                               lambda: lock_document(database_url, _newest_document(database_url, user)))
    # then after one refresh every invariant holds, and the document is usable
    assert kill.settle() == []
    assert [d["status"] for d in _documents(stack, user)] in (["ready"], ["processing"])


@pytest.mark.parametrize("step", [pytest.param(DETACH, id="detach", marks=pytest.mark.long),
                                  pytest.param(DELETE_FILE, id="delete_file")])
def test_a_delete_killed_while_openai_holds_a_step(kill: KillScenario, stack: Stack, users: UserFactory,
                                                   step: Step) -> None:
    # given a ready document
    user = users.create()
    doc_id = _ready_document(stack, user, f"delete-kill-{step.name}.txt")
    # when the process is killed while OpenAI holds one step of the delete
    kill.while_held(step, lambda http: http.delete(f"/upload/{doc_id}"), user.token)
    # then after one refresh every invariant holds, and the document is gone for its owner
    assert kill.settle() == []
    assert doc_id not in {d["id"] for d in _documents(stack, user)}


def test_a_delete_killed_after_the_file_delete_before_it_is_recorded(kill: KillScenario, stack: Stack,
                                                                     users: UserFactory, database_url: str) -> None:
    # given a ready document
    user = users.create()
    doc_id = _ready_document(stack, user, "delete-kill-after.txt")
    # when OpenAI has deleted the file but the process dies before the row says deleted
    kill.before_the_next_write(DELETE_FILE, lambda http: http.delete(f"/upload/{doc_id}"), user.token,
                               lambda: lock_document(database_url, doc_id))
    # then after one refresh every invariant holds, and the document is gone for its owner
    assert kill.settle() == []
    assert doc_id not in {d["id"] for d in _documents(stack, user)}


@pytest.mark.parametrize("step", [pytest.param(STORE, id="grantee_store"),
                                  pytest.param(ATTACH, id="grantee_attach", marks=pytest.mark.long)])
def test_accepting_a_share_killed_while_openai_holds_a_step(kill: KillScenario, stack: Stack, users: UserFactory,
                                                            step: Step) -> None:
    # given A's ready document shared with a new user B (who has no store yet)
    grantee, doc_id, share_id = _invited(stack, users, f"share-kill-{step.name}.txt")
    # when the process is killed while OpenAI holds one step of B's accept
    kill.while_held(step, lambda http: http.post(f"/upload/invitations/{share_id}/accept"), grantee.token)
    # then after one refresh every invariant holds, and B's chat turns read the document
    assert kill.settle() == []
    assert doc_id in {d["id"] for d in _documents(stack, grantee)}
    with stack.client(grantee.token, timeout=60) as http:
        asked = http.post("/chat", json={"message": "Which way do comet tails point?", "document_ids": [doc_id]})
    assert asked.status_code == 200, asked.text
    assert {c["document_id"] for c in asked.json()["message"]["citations"]} == {doc_id}


def _session(stack: Stack, user: AppUser) -> str:
    with stack.client(user.token) as http:
        made = http.post("/sessions", json={"title": "Killed turns"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _assistant_turns(stack: Stack, user: AppUser, session_id: str) -> list[dict[str, Any]]:
    with stack.client(user.token) as http:
        listed = http.get(f"/sessions/{session_id}/messages")
    assert listed.status_code == 200, listed.text
    return [m for m in listed.json()["items"] if m["role"] == "assistant"]


def _chat_usage_rows(database_url: str, message_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select count(*) from public.usage_logs where message_id = %s and service = 'chat'",
                           [message_id]).fetchone()
    return int(row[0]) if row else 0


def _openai_answered(standin: Any) -> bool:
    """Whether OpenAI made the turn's response: the conversation its model call named holds an
    answer (read over OpenAI's API, as a settlement could)."""
    asked = [r for r in standin.requests if MODEL.matches(r)]
    if not asked:
        return False
    assert asked[-1].json.get("conversation"), "the model call named no conversation"
    with httpx.Client(base_url=standin.base_url, headers={"Authorization": "Bearer sk-local"}, timeout=30) as http:
        items = http.get(f"/conversations/{asked[-1].json['conversation']}/items").raise_for_status().json()["data"]
    return any(item.get("role") == "assistant" for item in items)


def _chat(session_id: str, doc_id: str, stream: bool) -> Call:
    def call(http: httpx.Client) -> httpx.Response:
        answer = http.post("/chat", json={"session_id": session_id, "message": "Where do comet tails point?",
                                          "document_ids": [doc_id], "stream": stream})
        answer.read()
        return answer
    return call


class UnbilledAnswerError(AssertionError):
    """OpenAI answered a turn that is not billed exactly once."""


def _assert_settled(stack: Stack, database_url: str, standin: Any, user: AppUser, session_id: str) -> str:
    """The session's one turn says how it ended, and is billed exactly once if OpenAI answered it
    (UnbilledAnswerError otherwise); returns its error code, or its status when it has none."""
    [turn] = _assistant_turns(stack, user, session_id)
    assert turn["status"] in ("complete", "failed"), turn
    if turn["status"] == "failed":
        assert turn["error_code"], turn
    answered, billed = _openai_answered(standin), _chat_usage_rows(database_url, turn["id"])
    # Answered and stored, or answered with no response id recorded anywhere: billed at the reservation.
    billed_once = billed == 1 and (turn["status"] == "complete" or turn["error_code"] == "response_unrecorded")
    TURNS.append({"answered_by_openai": answered, "status": turn["status"], "error_code": turn["error_code"],
                  "billed_once": billed_once})
    if answered and not billed_once:
        raise UnbilledAnswerError(f"OpenAI answered the turn, which is {turn['status']} "
                                  f"({turn['error_code']}) with {billed} chat usage row(s)")
    return str(turn["error_code"] or turn["status"])


def _a_user_with_a_session(stack: Stack, users: UserFactory, name: str) -> tuple[AppUser, str, str]:
    user = users.create()
    return user, _ready_document(stack, user, name), _session(stack, user)


@pytest.mark.parametrize("stream", [pytest.param(False, id="plain"),
                                    pytest.param(True, id="streamed", marks=pytest.mark.long)])
def test_a_chat_turn_killed_while_openai_holds_the_model_call(kill: KillScenario, stack: Stack, users: UserFactory,
                                                              standin: Any, database_url: str, stream: bool) -> None:
    # given a user with a ready document and a session
    user, doc_id, session_id = _a_user_with_a_session(stack, users, f"chat-kill-{stream}.txt")
    # when the process is killed while OpenAI holds the model call (OpenAI then answers it)
    kill.while_held(MODEL, _chat(session_id, doc_id, stream), user.token)
    # then after one refresh every invariant holds (nothing pending), and the answer OpenAI made is
    # billed exactly once: its response id was never learnt, so its usage cannot be read, and the
    # turn says so and is billed at its reservation (the upper bound of its cost)
    assert kill.settle() == []
    assert _assert_settled(stack, database_url, standin, user, session_id) == "response_unrecorded"
    [turn] = _assistant_turns(stack, user, session_id)
    assert turn["cost_usd"] and float(turn["cost_usd"]) > 0, turn


@pytest.mark.long
def test_a_chat_turn_killed_while_openai_creates_its_conversation(kill: KillScenario, stack: Stack,
                                                                  users: UserFactory, standin: Any,
                                                                  database_url: str) -> None:
    # given a user with a ready document and a new session
    user, doc_id, session_id = _a_user_with_a_session(stack, users, "chat-kill-conversation.txt")
    # when the process is killed while OpenAI creates the session's conversation (no model call yet)
    kill.while_held(CONVERSATION, _chat(session_id, doc_id, False), user.token)
    # then after one refresh every invariant holds, and the turn says it ended without an answer
    assert kill.settle() == []
    assert _assert_settled(stack, database_url, standin, user, session_id) == "turn_abandoned"


@pytest.mark.parametrize("stream", [pytest.param(False, id="plain", marks=pytest.mark.long),
                                    pytest.param(True, id="streamed")])
def test_a_chat_turn_killed_after_the_answer_before_it_is_stored(kill: KillScenario, stack: Stack,
                                                                  users: UserFactory, standin: Any,
                                                                  database_url: str, stream: bool) -> None:
    # given a user with a ready document and a session
    user, doc_id, session_id = _a_user_with_a_session(stack, users, f"chat-kill-after-{stream}.txt")
    # when OpenAI has answered (the response id is recorded) but the process dies before the answer is stored
    kill.before_the_next_write(MODEL, _chat(session_id, doc_id, stream), user.token, lambda: lock_usage(database_url))
    # then after one refresh every invariant holds, and the answer is in the history, billed once
    assert kill.settle() == []
    assert _assert_settled(stack, database_url, standin, user, session_id) == "complete"


def _time_passes_for_runs(database_url: str, minutes: int) -> None:
    """Time passes for a registry run left running: ``minutes`` more of its lease are spent."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set lease_until = lease_until - make_interval(mins => %s),"
                     " started_at = started_at - make_interval(mins => %s) where status = 'running'",
                     [minutes, minutes])


def _kill_a_refresh(kill: KillScenario, stack: Stack, users: UserFactory, step: Step) -> None:
    _ready_document(stack, users.create(), f"refresh-kill-{step.name}.txt")
    kill.while_held(step, lambda http: http.post("/registry-refresh", json={"trigger": "battery"}), REGISTRY_TOKEN)


SCHEDULE_MINUTES = 5  # Cloud Scheduler's */5 * * * * (terraform/locals.tf registry_schedule_minutes)


def test_the_scheduled_refresh_after_a_killed_one_runs(kill: KillScenario, stack: Stack, users: UserFactory,
                                                       database_url: str, request: pytest.FixtureRequest) -> None:
    # given a refresh killed while it lists a store's files (its slot is let go at the end, whatever happens)
    request.addfinalizer(lambda: _time_passes_for_runs(database_url, 60))
    _kill_a_refresh(kill, stack, users, LIST_STORE_FILES)
    # when the scheduler calls the refresh again, one period later
    _time_passes_for_runs(database_url, SCHEDULE_MINUTES)
    with stack.client(REGISTRY_TOKEN, timeout=120) as http:
        answer = http.post("/registry-refresh", json={"trigger": "battery"})
    # then that run takes over from the dead one
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("step", [pytest.param(LIST_STORE_FILES, id="list_store_files"),
                                  pytest.param(LIST_STORES, id="list_stores", marks=pytest.mark.long),
                                  pytest.param(LIST_FILES, id="list_files", marks=pytest.mark.long)])
def test_a_killed_refresh_is_taken_over_once_its_lease_ran_out(kill: KillScenario, stack: Stack, users: UserFactory,
                                                               database_url: str, step: Step) -> None:
    # given a refresh killed while it lists a store's files (--long: the stores, the project's files)
    _kill_a_refresh(kill, stack, users, step)
    # when its lease has run out (two scheduled periods later) and the scheduler calls the refresh
    _time_passes_for_runs(database_url, 2 * SCHEDULE_MINUTES)
    # then that one refresh runs (the dead run is marked failed), and every invariant holds
    assert kill.settle() == []
    with psycopg.connect(database_url) as conn:
        runs = conn.execute("select status, error from public.registry_runs order by id").fetchall()
    assert ("failed", "lease expired") in runs, runs


def test_the_process_kill_figures_are_recorded() -> None:
    # given the scenarios above, then processes were killed and the figures are reported
    assert RECORD.kills
    record("process_kill", scenarios=len(RECORD.kills), kills=len(RECORD.kills),
           kill_points=sorted(set(RECORD.kills)), invariant_violations=len(RECORD.violations),
           turns_answered_by_openai=sum(1 for t in TURNS if t["answered_by_openai"]),
           answered_turns_not_billed_once=sum(1 for t in TURNS if t["answered_by_openai"] and not t["billed_once"]),
           answered_turns_billed_at_their_reservation=sum(1 for t in TURNS if t["error_code"] == "response_unrecorded"),
           violations=sorted({re.sub(r"resp_\w+|vs_\w+|file-\w+|[0-9a-f-]{36}", "<id>", v) for v in RECORD.violations}))
