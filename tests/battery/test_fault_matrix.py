"""The fault matrix: upload, delete, share and the registry refresh, each with OpenAI failing at each
of its steps (429, insufficient_quota, 500, a dropped connection, slow) and with the database's
connections killed while a step is under way; then one registry refresh, then the invariants
(tests/battery/invariants.py). The client always gets a clear answer: success, or problem+json
with a stable code."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.battery.conftest import LONG
from tests.battery.figures import record
from tests.battery.invariants import violations
from tests.battery.stack import Stack
from tests.support.users import AppUser, UserFactory

STORE = r"^/vector_stores$"
FILE = r"^/files$"
ATTACH = r"^/vector_stores/[^/]+/files$"
DETACH = r"^/vector_stores/[^/]+/files/[^/]+$"
DELETE_FILE = r"^/files/[^/]+$"
LIST_STORE_FILES = r"^/vector_stores/[^/]+/files$"


@dataclass(frozen=True)
class Kind:
    """One way OpenAI (or the database) fails."""

    name: str
    fault: dict[str, Any]
    succeeds: bool = False
    kills_database: bool = False


KINDS = [
    Kind("rate_limited", {"status": 429, "retry_after": 0, "times": 3}),
    Kind("insufficient_quota", {"status": 429, "code": "insufficient_quota", "times": 3}),
    Kind("server_error", {"status": 500, "times": 3}),
    Kind("dropped", {"drop": True, "times": 3}),
    Kind("slow", {"delay": 0.5, "times": 1}, succeeds=True),
    Kind("database_dropped", {"delay": 1.0, "times": 1}, kills_database=True),
]
# The default run covers each step with the kinds that take different code paths; --long runs all.
DEFAULT_KINDS = {"insufficient_quota", "server_error", "database_dropped"}
RUN_KINDS = [k for k in KINDS if LONG or k.name in DEFAULT_KINDS]
FAULTS: dict[str, int] = {}
VIOLATIONS: list[str] = []
STALE_CONNECTION_FAILURES: list[int] = []


def _kill_connections_soon(database_url: str, after: float) -> threading.Thread:
    """Terminate every connection to the test database ``after`` seconds from now (as a database
    restart or failover does), while the request is inside an OpenAI step."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]

    def kill() -> None:
        time.sleep(after)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                         " where datname = %s and pid <> pg_backend_pid()", [name])
    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _inject(standin: Any, database_url: str, step: str, kind: Kind, method: str) -> threading.Thread | None:
    standin.inject_fault(step, method=method, **kind.fault)
    FAULTS[kind.name] = FAULTS.get(kind.name, 0) + 1
    return _kill_connections_soon(database_url, 0.3) if kind.kills_database else None


def _assert_clear(answer: httpx.Response, kind: Kind, ok: tuple[int, ...]) -> None:
    """A success when the fault lets the request through, else a problem+json with a stable code."""
    if kind.succeeds:
        assert answer.status_code in ok, answer.text
        return
    if answer.status_code in ok:  # a retry inside the request got past a transient fault: also clear
        return
    assert answer.status_code >= 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    assert answer.json()["code"], answer.text


def _refresh_once_the_database_answers(stack: Stack) -> None:
    """The registry refresh, as the scheduler runs it after a database outage: connections the pool
    held across the outage fail once each (503 database_unavailable, counted), then it runs."""
    for _ in range(6):
        with stack.client("registry-test-token", timeout=120) as http:
            answer = http.post("/registry-refresh", json={"trigger": "battery"})
        if answer.status_code != 503 or answer.json().get("code") != "database_unavailable":
            assert answer.status_code == 200, answer.text
            return
        STALE_CONNECTION_FAILURES.append(1)
    pytest.fail("the registry refresh kept answering database_unavailable after the database came back")


def _baseline(database_url: str, standin: Any) -> set[str]:
    """The violations already there before a scenario (left by an earlier one: each is reported by
    the scenario that made it, not again by every later one)."""
    return set(violations(database_url, standin.base_url))


def _after_the_chat_timeout(database_url: str) -> None:
    """Time passes: turns still pending are older than the chat timeout (default 120 s) plus the
    refresh's margin (60 s), so the refresh settles them as it would on its next scheduled run."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.chat_messages set created_at = created_at - interval '10 minutes'"
                     " where status = 'pending'")


def _settle(stack: Stack, database_url: str, standin: Any, before: set[str]) -> list[str]:
    """One registry refresh with no fault left, after the chat timeout, then the invariants this
    scenario broke."""
    standin.clear_faults()
    _after_the_chat_timeout(database_url)
    _refresh_once_the_database_answers(stack)
    found = [v for v in violations(database_url, standin.base_url) if v not in before]
    VIOLATIONS.extend(found)
    return found


def _upload(http: httpx.Client, name: str) -> httpx.Response:
    return http.post("/upload", files={"file": (name, f"Notes about {name}: comets and tails.".encode(),
                                                "text/plain")})


def _ready_document(stack: Stack, user: AppUser, name: str) -> str:
    with stack.client(user.token) as http:
        made = _upload(http, name)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _scenario_id(step: tuple[str, str, str], kind: Kind) -> str:
    return f"{step[0]}-{kind.name}"


UPLOAD_STEPS = [("store", STORE, "POST"), ("file", FILE, "POST"), ("attach", ATTACH, "POST")]
DELETE_STEPS = [("detach", DETACH, "DELETE"), ("delete_file", DELETE_FILE, "DELETE")]
SHARE_STEPS = [("grantee_store", STORE, "POST"), ("grantee_attach", ATTACH, "POST")]


ORPHAN_STORE = ("the database is lost while OpenAI creates the user's vector store: the store is made before "
                "anything records it (common/documents.py ensure_vector_store) and the registry refresh neither "
                "adopts nor removes a store no user holds (common/registry.py)")
# Scenarios that break an invariant today; strict, so each fails once fixed (then drop it here).
KNOWN_VIOLATIONS = {
    "store-database_dropped": ORPHAN_STORE + "; the document it was for also stays 'uploading' after the refresh "
                                            "(common/registry.py does not settle an 'uploading' row with no file)",
}


def _matrix(steps: list[tuple[str, str, str]]) -> list[Any]:
    return [pytest.param(step, kind, id=_scenario_id(step, kind),
                         marks=[pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[_scenario_id(step, kind)])]
                         if _scenario_id(step, kind) in KNOWN_VIOLATIONS else [])
            for step in steps for kind in RUN_KINDS]


@pytest.mark.parametrize(("step", "kind"), _matrix(UPLOAD_STEPS))
def test_upload_with_a_fault_at_each_step(stack: Stack, users: UserFactory, standin: Any, database_url: str,
                                          step: tuple[str, str, str], kind: Kind) -> None:
    # given a new user (so the upload creates the user's store too) and a fault at one step
    user = users.create()
    before = _baseline(database_url, standin)
    killer = _inject(standin, database_url, step[1], kind, step[2])
    # when the user uploads
    with stack.client(user.token) as http:
        answer = _upload(http, f"{step[0]}-{kind.name}.txt")
    if killer is not None:
        killer.join()
    # then the answer is clear, and after one refresh every invariant holds
    _assert_clear(answer, kind, (201,))
    assert _settle(stack, database_url, standin, before) == []


@pytest.mark.parametrize(("step", "kind"), _matrix(DELETE_STEPS))
def test_delete_with_a_fault_at_each_step(stack: Stack, users: UserFactory, standin: Any, database_url: str,
                                          step: tuple[str, str, str], kind: Kind) -> None:
    # given a ready document and a fault at one step of its delete
    user = users.create()
    doc_id = _ready_document(stack, user, f"delete-{step[0]}-{kind.name}.txt")
    before = _baseline(database_url, standin)
    killer = _inject(standin, database_url, step[1], kind, step[2])
    # when the owner deletes it
    with stack.client(user.token) as http:
        answer = http.delete(f"/upload/{doc_id}")
    if killer is not None:
        killer.join()
    # then the answer is clear, and after one refresh every invariant holds (the delete is finished)
    _assert_clear(answer, kind, (204,))
    assert _settle(stack, database_url, standin, before) == []


@pytest.mark.parametrize(("step", "kind"), _matrix(SHARE_STEPS))
def test_accepting_a_share_with_a_fault_at_each_step(stack: Stack, users: UserFactory, standin: Any,
                                                     database_url: str, step: tuple[str, str, str],
                                                     kind: Kind) -> None:
    # given A's ready document shared with a new user B (who has no store yet), and a fault at one step
    owner, grantee = users.create(), users.create()
    doc_id = _ready_document(stack, owner, f"share-{step[0]}-{kind.name}.txt")
    with stack.client(owner.token) as http:
        invited = http.post(f"/upload/{doc_id}/access", json={"email": grantee.email})
    assert invited.status_code == 202, invited.text
    before = _baseline(database_url, standin)
    killer = _inject(standin, database_url, step[1], kind, step[2])
    # when B accepts
    with stack.client(grantee.token) as http:
        answer = http.post(f"/upload/invitations/{invited.json()['share_id']}/accept")
    if killer is not None:
        killer.join()
    # then the answer is clear, and after one refresh every invariant holds
    _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


CUT_STREAM = Kind("stream_cut", {"cut_after_created": True, "times": 1})
CHAT_KINDS = [*RUN_KINDS, CUT_STREAM]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("kind", CHAT_KINDS, ids=lambda k: k.name)
def test_a_chat_turn_with_a_fault_at_the_model_call(stack: Stack, users: UserFactory, standin: Any,
                                                    database_url: str, kind: Kind, stream: bool) -> None:
    # given a user with a document, and a fault on the model call (the Responses API)
    user = users.create()
    _ready_document(stack, user, f"chat-{kind.name}-{stream}.txt")
    before = _baseline(database_url, standin)
    standin.clear_requests()
    standin.inject_fault(r"^/responses$", method="POST", **kind.fault)  # counted once the turn API is in
    killer = _kill_connections_soon(database_url, 0.3) if kind.kills_database else None
    # when the user asks, plainly or streamed
    with stack.client(user.token, timeout=60) as http:
        answer = http.post("/chat", json={"message": "Where do comet tails point?", "stream": stream})
        body = answer.read()
    if killer is not None:
        killer.join()
    # then the model call was made (the fault was met), the answer is clear (a streamed answer that
    # began says how it ended), and after one refresh every invariant holds: usage once, nothing pending
    assert [r.path for r in standin.requests if r.path == "/v1/responses"], answer.text
    if stream and answer.status_code == 200:
        assert b"event: error" in body or b"event: done" in body, body[-500:]
    else:
        _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


STUCK_LEASE = ("the database is lost while a registry run is under way: the run cannot record that it failed, "
               "so it keeps the running slot until its lease (2 x the time budget, at least 60 s) ends and the "
               "next refresh answers 409 already_running (common/registry.py, sql/060_registry.sql)")


@pytest.mark.parametrize("kind", [
    pytest.param(k, id=k.name, marks=[pytest.mark.xfail(strict=True, reason=STUCK_LEASE)] if k.kills_database else [])
    for k in RUN_KINDS if not k.succeeds])
def test_the_registry_refresh_with_a_fault_then_a_clean_one(stack: Stack, users: UserFactory, standin: Any,
                                                            database_url: str, kind: Kind) -> None:
    # given a user with a document, and a fault on listing a store's files
    user = users.create()
    _ready_document(stack, user, f"refresh-{kind.name}.txt")
    before = _baseline(database_url, standin)
    killer = _inject(standin, database_url, LIST_STORE_FILES, kind, "GET")
    # when the scheduler runs the refresh
    with stack.client("registry-test-token", timeout=120) as http:
        answer = http.post("/registry-refresh", json={"trigger": "battery"})
    if killer is not None:
        killer.join()
    # then it answers clearly (a run that reports itself partial, or a problem with a code), and the
    # next clean run leaves every invariant holding
    _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


def test_the_fault_figures_are_recorded() -> None:
    # given the matrix above, then faults were injected and are reported
    assert sum(FAULTS.values()) > 0
    record("fault_matrix", faults_injected=sum(FAULTS.values()), by_kind=dict(sorted(FAULTS.items())),
           kinds_run=[k.name for k in RUN_KINDS], invariant_violations=len(VIOLATIONS),
           refreshes_refused_by_stale_connections=len(STALE_CONNECTION_FAILURES),
           violations=sorted({re.sub(r"[0-9a-f-]{36}|vs_\w+|file-\w+", "<id>", v) for v in VIOLATIONS}))


