"""Killing the functions' process at a chosen step, without touching the code.

*While a step is under way*: the OpenAI stand-in holds the step's request (a ``delay`` fault); once
the request has arrived, the process is SIGKILLed. The stand-in performs the request when the delay
ends, after its client died: OpenAI did it and nobody recorded it.

*After a step answered, before the database write that records it*: while the step's request is
held, the test takes a lock on what that write needs; when OpenAI has answered and the write waits
on the lock, the process is killed and the waiting connection terminated (as a dead instance's
connections are) before the lock is let go, so the write never happens.

A :class:`KillScenario` runs one kill, then one registry refresh (after the chat timeout, as the
fault matrix does) and reports the invariants (tests/battery/invariants.py) the scenario broke.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from tests.battery.child_process import FunctionsProcess
from tests.battery.invariants import violations
from tests.battery.stack import Stack
from tests.battery.test_fault_matrix import _after_the_chat_timeout

HOLD_SECONDS = 0.5  # how long the stand-in holds the step's request before performing it
ARRIVAL_SECONDS = 20.0
Call = Callable[[httpx.Client], httpx.Response]


@dataclass(frozen=True)
class Step:
    """An OpenAI request of a flow, by method and path after ``/v1``."""

    name: str
    method: str
    path: str

    def matches(self, request: Any) -> bool:
        return request.method == self.method and re.search(self.path, request.path.removeprefix("/v1")) is not None


STORE = Step("store", "POST", r"^/vector_stores$")
FILE = Step("file", "POST", r"^/files$")
ATTACH = Step("attach", "POST", r"^/vector_stores/[^/]+/files$")
DETACH = Step("detach", "DELETE", r"^/vector_stores/[^/]+/files/[^/]+$")
DELETE_FILE = Step("delete_file", "DELETE", r"^/files/[^/]+$")
CONVERSATION = Step("conversation", "POST", r"^/conversations$")
MODEL = Step("model", "POST", r"^/responses$")
LIST_STORES = Step("list_stores", "GET", r"^/vector_stores$")
LIST_STORE_FILES = Step("list_store_files", "GET", r"^/vector_stores/[^/]+/files$")
LIST_FILES = Step("list_files", "GET", r"^/files$")


class DatabaseHold:
    """A lock held by the test, so that the request's next database write waits on it."""

    def __init__(self, database_url: str, lock_sql: str, args: list[Any]) -> None:
        self.database_url = database_url
        self.conn = psycopg.connect(database_url)
        self.conn.execute(lock_sql, args)

    def waiters(self) -> list[int]:
        """The backends waiting on a lock in this database, once there is one."""
        deadline = time.monotonic() + ARRIVAL_SECONDS
        while time.monotonic() < deadline:
            rows = self.conn.execute(
                "select distinct l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid"
                " where not l.granted and a.datname = current_database() and l.pid <> pg_backend_pid()").fetchall()
            if rows:
                return [pid for (pid,) in rows]
            time.sleep(0.02)
        pytest.fail("no database write waited on the held lock")

    def release(self, pids: list[int]) -> None:
        """Terminate ``pids`` (the dead process's waiting connections), then let the lock go."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for pid in pids:
                conn.execute("select pg_terminate_backend(%s)", [pid])
        self.conn.rollback()
        self.conn.close()


def lock_document(database_url: str, doc_id: str) -> DatabaseHold:
    return DatabaseHold(database_url, "select 1 from public.documents where id = %s for update", [doc_id])


def lock_usage(database_url: str) -> DatabaseHold:
    # A turn's finish inserts its usage rows; recording the response id at response.created does not.
    return DatabaseHold(database_url, "lock table public.usage_logs in share row exclusive mode", [])


@dataclass
class KillRecord:
    """What the module's scenarios did: each kill point, and the invariants they broke."""

    kills: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@dataclass
class KillScenario:
    """One scenario: kill a fresh functions' process at a step, then settle and check."""

    stack: Stack
    spawn: Callable[[], FunctionsProcess]
    standin: Any
    database_url: str
    record: KillRecord
    before: set[str] = field(default_factory=set)

    def while_held(self, step: Step, call: Call, token: str) -> None:
        """Make ``call`` on a fresh process; SIGKILL it once its ``step`` request reaches OpenAI (held
        there); return once the held request has been performed (after the client died)."""
        sender, outcome, process = self._start(step, call, token)
        self._kill(process, sender, outcome, f"held {step.name}")
        time.sleep(HOLD_SECONDS + 0.3)  # the stand-in performs the held request after its delay
        self.standin.clear_faults()

    def before_the_next_write(self, step: Step, call: Call, token: str, lock: Callable[[], DatabaseHold]) -> None:
        """Make ``call`` on a fresh process; while its ``step`` request is held, take ``lock`` (on what
        the write after the step needs); once OpenAI has answered and the write waits, SIGKILL the
        process and end its waiting connection: OpenAI did the step, the database never heard of it."""
        sender, outcome, process = self._start(step, call, token)
        hold = lock()
        waiting: list[int] = []
        try:
            waiting = hold.waiters()
            self._kill(process, sender, outcome, f"after {step.name}")
        finally:
            hold.release(waiting)
        self.standin.clear_faults()

    def settle(self) -> list[str]:
        """One registry refresh (after the chat timeout); the invariants this scenario broke."""
        _after_the_chat_timeout(self.database_url)
        self.stack.refresh()
        found = [v for v in violations(self.database_url, self.standin.base_url) if v not in self.before]
        self.record.violations.extend(found)
        return found

    def _start(self, step: Step, call: Call, token: str) -> tuple[threading.Thread, dict[str, Any], FunctionsProcess]:
        self.before = set(violations(self.database_url, self.standin.base_url))
        process = self.spawn()
        self.standin.clear_requests()
        self.standin.inject_fault(step.path, method=step.method, delay=HOLD_SECONDS, times=1)
        outcome: dict[str, Any] = {}

        def send() -> None:
            try:
                with process.client(token, timeout=60) as http:
                    outcome["answer"] = call(http)
            except httpx.TransportError as exc:
                outcome["error"] = exc

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self._arrived(step)
        return sender, outcome, process

    def _arrived(self, step: Step) -> None:
        deadline = time.monotonic() + ARRIVAL_SECONDS
        while time.monotonic() < deadline:
            if any(step.matches(r) for r in self.standin.requests):
                return
            time.sleep(0.02)
        pytest.fail(f"the {step.name} request never reached OpenAI")

    def _kill(self, process: FunctionsProcess, sender: threading.Thread, outcome: dict[str, Any], where: str) -> None:
        """SIGKILL the process; its caller gets no answer at all."""
        assert process.alive(), f"the functions' process died before the kill; see {process.log_path}"
        process.kill()
        sender.join(timeout=30)
        self.record.kills.append(where)
        assert "answer" not in outcome, f"the killed process answered: {outcome['answer'].text}"
