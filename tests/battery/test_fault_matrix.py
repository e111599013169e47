"""The fault matrix: upload, chat, delete, share and the registry refresh, each with OpenAI failing at
each of its steps (429, insufficient_quota, 500, a dropped connection, slow) and with the database
lost while a step is under way: its connections killed (a restart or failover: the server is back at
once), or the database down until the request has answered (no connection is accepted); then one
registry refresh, then the invariants (tests/battery/invariants.py). The client always gets a clear
answer: success, or problem+json with a stable code."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.battery.conftest import LONG
from tests.battery.figures import record
from tests.battery.invariants import billed_responses, violations
from common.db.psycopg_transport import PsycopgDatabase
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
    database_down: bool = False


KINDS = [
    Kind("rate_limited", {"status": 429, "retry_after": 0, "times": 3}),
    Kind("insufficient_quota", {"status": 429, "code": "insufficient_quota", "times": 3}),
    Kind("server_error", {"status": 500, "times": 3}),
    Kind("dropped", {"drop": True, "times": 3}),
    Kind("slow", {"delay": 0.5, "times": 1}, succeeds=True),
    Kind("database_dropped", {"delay": 1.0, "times": 1}, kills_database=True),
    Kind("database_down", {"delay": 1.0, "times": 1}, kills_database=True, database_down=True),
]
# The default run covers each step with the kinds that take different code paths; --long runs all.
# An outage costs the pool's timeout per database call, so by default it runs where the first record
# is lost (the upload's store and file steps, a plain chat turn) and on the refresh; --long runs it
# at every step.
DEFAULT_KINDS = {"insufficient_quota", "server_error", "database_dropped", "database_down"}
OUTAGE_DEFAULT_SCENARIOS = {"store-database_down", "file-database_down"}
RUN_KINDS = [k for k in KINDS if LONG or k.name in DEFAULT_KINDS]
# While the database is down, each call waits this long for a connection, then answers 503.
POOL_TIMEOUT_SECONDS = 1.0
FAULTS: dict[str, int] = {}
VIOLATIONS: list[str] = []
STALE_CONNECTION_FAILURES: list[int] = []
REFUSED_WHILE_LEASED: list[int] = []


@pytest.fixture(scope="module")
def psycopg_db(database_url: str) -> Iterator[PsycopgDatabase]:
    """The functions' database, with a short pool timeout so an outage answers within seconds."""
    db = PsycopgDatabase(database_url, timeout_seconds=POOL_TIMEOUT_SECONDS)
    yield db
    db.close()


class DatabaseFault:
    """The database lost ``after`` seconds from now, while the request is inside an OpenAI step:
    every connection to the test database terminated (a restart or failover) and, when ``down``,
    no new connection accepted until :meth:`end` (after the request has answered)."""

    def __init__(self, database_url: str, after: float, *, down: bool) -> None:
        self.name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
        self.admin_url = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
        self.down = down
        self.thread = threading.Thread(target=self._lose, args=[after], daemon=True)
        self.thread.start()

    def _lose(self, after: float) -> None:
        time.sleep(after)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            if self.down:
                conn.execute(psycopg.sql.SQL("alter database {} with allow_connections false").format(
                    psycopg.sql.Identifier(self.name)))
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [self.name])

    def end(self) -> None:
        self.thread.join()
        if self.down:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(psycopg.sql.SQL("alter database {} with allow_connections true").format(
                    psycopg.sql.Identifier(self.name)))


def _lose_the_database(database_url: str, kind: Kind) -> DatabaseFault | None:
    return DatabaseFault(database_url, 0.3, down=kind.database_down) if kind.kills_database else None


def _inject(standin: Any, database_url: str, step: str, kind: Kind, method: str) -> DatabaseFault | None:
    standin.inject_fault(step, method=method, **kind.fault)
    FAULTS[kind.name] = FAULTS.get(kind.name, 0) + 1
    return _lose_the_database(database_url, kind)


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


def _after_the_lease(database_url: str) -> None:
    """Time passes: a run that the outage stopped (it could not record its end) has held the running
    slot past its lease (common/registry.py LEASE_SECONDS), so the next scheduled refresh takes the slot over."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set lease_until = now() - interval '1 second'"
                     " where status = 'running'")


def _refresh_once_the_database_answers(stack: Stack, database_url: str) -> None:
    """The registry refresh, as the scheduler runs it after the database is lost: while the pool
    reconnects it answers 503 database_unavailable (counted), and while a run the outage stopped still
    holds its lease, 409 already_running (counted; the lease then runs out); then it runs."""
    for _ in range(8):
        with stack.client("registry-test-token", timeout=120) as http:
            answer = http.post("/registry-refresh", json={"trigger": "battery"})
        code = answer.json().get("code") if answer.status_code >= 400 else None
        if code == "database_unavailable":
            STALE_CONNECTION_FAILURES.append(1)
            time.sleep(1.0)
        elif code == "already_running":
            REFUSED_WHILE_LEASED.append(1)
            _after_the_lease(database_url)
        else:
            assert answer.status_code == 200, answer.text
            return
    pytest.fail("the registry refresh did not run once the database was back")


def _baseline(database_url: str, standin: Any) -> set[str]:
    """The violations already there before a scenario (left by an earlier one: each is reported by
    the scenario that made it, not again by every later one)."""
    return set(violations(database_url, standin.base_url, billed_responses(standin)))


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
    _refresh_once_the_database_answers(stack, database_url)
    found = [v for v in violations(database_url, standin.base_url, billed_responses(standin)) if v not in before]
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


def _invited(stack: Stack, users: UserFactory, name: str) -> tuple[AppUser, str, str]:
    """A new user B invited to a new user A's ready document ``name``: (B, the document id, the share id)."""
    owner, grantee = users.create(), users.create()
    doc_id = _ready_document(stack, owner, name)
    with stack.client(owner.token) as http:
        invited = http.post(f"/upload/{doc_id}/access", json={"email": grantee.email})
    assert invited.status_code == 202, invited.text
    return grantee, doc_id, str(invited.json()["share_id"])


def _scenario_id(step: tuple[str, str, str], kind: Kind) -> str:
    return f"{step[0]}-{kind.name}"


UPLOAD_STEPS = [("store", STORE, "POST"), ("file", FILE, "POST"), ("attach", ATTACH, "POST")]
DELETE_STEPS = [("detach", DETACH, "DELETE"), ("delete_file", DELETE_FILE, "DELETE")]
SHARE_STEPS = [("grantee_store", STORE, "POST"), ("grantee_attach", ATTACH, "POST")]


# Scenarios that break an invariant today; strict, so each fails once fixed (then drop it here).
KNOWN_VIOLATIONS: dict[str, str] = {}


def _runs(scenario: str, kind: Kind) -> bool:
    return LONG or not kind.database_down or scenario in OUTAGE_DEFAULT_SCENARIOS


def _matrix(steps: list[tuple[str, str, str]]) -> list[Any]:
    return [pytest.param(step, kind, id=_scenario_id(step, kind),
                         marks=[pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[_scenario_id(step, kind)])]
                         if _scenario_id(step, kind) in KNOWN_VIOLATIONS else [])
            for step in steps for kind in RUN_KINDS if _runs(_scenario_id(step, kind), kind)]


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
        killer.end()
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
        killer.end()
    # then the answer is clear, and after one refresh every invariant holds (the delete is finished)
    _assert_clear(answer, kind, (204,))
    assert _settle(stack, database_url, standin, before) == []


@pytest.mark.parametrize(("step", "kind"), _matrix(SHARE_STEPS))
def test_accepting_a_share_with_a_fault_at_each_step(stack: Stack, users: UserFactory, standin: Any,
                                                     database_url: str, step: tuple[str, str, str],
                                                     kind: Kind) -> None:
    # given A's ready document shared with a new user B (who has no store yet), and a fault at one step
    grantee, _, share_id = _invited(stack, users, f"share-{step[0]}-{kind.name}.txt")
    before = _baseline(database_url, standin)
    killer = _inject(standin, database_url, step[1], kind, step[2])
    # when B accepts
    with stack.client(grantee.token) as http:
        answer = http.post(f"/upload/invitations/{share_id}/accept")
    if killer is not None:
        killer.end()
    # then the answer is clear, and after one refresh every invariant holds
    _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


CUT_STREAM = Kind("stream_cut", {"cut_after_created": True, "times": 1})
CHAT_KINDS = [*RUN_KINDS, CUT_STREAM]
CHAT_SCENARIOS = [pytest.param(kind, stream, id=f"{kind.name}-{'streamed' if stream else 'plain'}",
                               marks=[pytest.mark.long] if kind.database_down and stream else [])
                  for kind in CHAT_KINDS for stream in (False, True)]


@pytest.mark.parametrize(("kind", "stream"), CHAT_SCENARIOS)
def test_a_chat_turn_with_a_fault_at_the_model_call(stack: Stack, users: UserFactory, standin: Any,
                                                    database_url: str, kind: Kind, stream: bool) -> None:
    # given a user with a document, and a fault on the model call (the Responses API)
    user = users.create()
    _ready_document(stack, user, f"chat-{kind.name}-{stream}.txt")
    before = _baseline(database_url, standin)
    standin.clear_requests()
    standin.inject_fault(r"^/responses$", method="POST", **kind.fault)
    FAULTS[kind.name] = FAULTS.get(kind.name, 0) + 1
    killer = _lose_the_database(database_url, kind)
    # when the user asks, plainly or streamed
    with stack.client(user.token, timeout=60) as http:
        answer = http.post("/chat", json={"message": "Where do comet tails point?", "stream": stream})
        body = answer.read()
    if killer is not None:
        killer.end()
    # then the model call was made (the fault was met), the answer is clear (a streamed answer that
    # began says how it ended), and after one refresh every invariant holds: usage once, nothing pending
    assert [r.path for r in standin.requests if r.path == "/v1/responses"], answer.text
    if stream and answer.status_code == 200:
        assert b"event: error" in body or b"event: done" in body, body[-500:]
    else:
        _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.name) for k in RUN_KINDS if not k.succeeds])
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
        killer.end()
    # then it answers clearly (a run that reports itself partial, or a problem with a code), and the
    # next clean run leaves every invariant holding
    _assert_clear(answer, kind, (200,))
    assert _settle(stack, database_url, standin, before) == []


def test_the_fault_figures_are_recorded() -> None:
    # given the matrix above, then faults were injected and are reported
    assert sum(FAULTS.values()) > 0
    record("fault_matrix", faults_injected=sum(FAULTS.values()), by_kind=dict(sorted(FAULTS.items())),
           kinds_run=[k.name for k in RUN_KINDS], invariant_violations=len(VIOLATIONS),
           refreshes_refused_while_reconnecting=len(STALE_CONNECTION_FAILURES),
           refreshes_refused_while_a_stopped_run_held_its_lease=len(REFUSED_WHILE_LEASED),
           violations=sorted({re.sub(r"resp_\w+|vs_\w+|file-\w+|[0-9a-f-]{36}", "<id>", v) for v in VIOLATIONS}))


