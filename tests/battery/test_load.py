"""Bounded load on loopback: locust (headless, its own process) drives the served functions with
``LOAD_USERS`` simulated users uploading, chatting (plain and streamed), listing and reading usage
for ``LOAD_SECONDS``. Then: no server error, p95 per endpoint reported, every acknowledged upload is
a document row, and every answered turn's cost is in its usage rows and in the user's totals.

Runs under ``./deploy.sh test --long`` only (50 users, 60 s): on a shared 2-core machine it is the
longest part of the battery."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.runtime import Runtime
from common.settings import ChatSettings
from tests.battery.figures import record
from tests.battery.stack import Stack
from tests.support.functions import make_runtime
from tests.support.users import UserFactory

pytestmark = pytest.mark.long

LOAD_USERS = 50
# The load is about capacity, not the per-user rate limit (20 turns a minute by default, tested on
# its own in tests/chat): each simulated user has its own account, allowed 1,000 turns a minute.
LOAD_TURNS_PER_MINUTE = 1000
LOAD_SECONDS = 60
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CHAT = ("POST /chat", "POST /chat (stream)")


@pytest.fixture(scope="module")
def runtime(psycopg_db: PsycopgDatabase, database_url: str, standin: Any) -> Iterator[Runtime]:
    """The battery's Runtime with the load's chat rate limit."""
    rt = make_runtime(psycopg_db, database_url, standin.base_url,
                      chat=ChatSettings(turns_per_minute=LOAD_TURNS_PER_MINUTE))
    yield rt
    rt.openai.client.close()


def _by_status(failures: list[dict[str, str]]) -> dict[str, int]:
    """Failed requests per endpoint and HTTP status (or error kind when there was no status)."""
    counted: dict[str, int] = {}
    for failure in failures:
        found = re.search(r"\b([1-5][0-9]{2})\b", failure["Error"])
        key = f"{failure['Name']} {found.group(1) if found else failure['Error'][:40]}"
        counted[key] = counted.get(key, 0) + int(failure["Occurrences"])
    return dict(sorted(counted.items()))


@pytest.fixture(scope="module")
def load_run(stack: Stack, users: UserFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run locust once; returns its per-endpoint stats rows, the failures and the acknowledged writes."""
    out = tmp_path_factory.mktemp("load")
    tokens = [users.create().token for _ in range(LOAD_USERS)]
    env = {**os.environ, "LOAD_TOKENS": json.dumps(tokens), "LOAD_RESULTS": str(out / "acknowledged.json")}
    ran = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(LOAD_USERS),
         "--spawn-rate", "25", "--run-time", f"{LOAD_SECONDS}s", "--host", stack.base, "--csv", str(out / "load"),
         "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "10"],
        env=env, capture_output=True, text=True, timeout=LOAD_SECONDS + 120, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    with (out / "load_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    with (out / "load_failures.csv").open() as failed:
        failures = list(csv.DictReader(failed))
    acknowledged = json.loads((out / "acknowledged.json").read_text())
    record("load", users=LOAD_USERS, seconds=LOAD_SECONDS,
           requests={name: int(row["Request Count"]) for name, row in rows.items()},
           failures={name: int(row["Failure Count"]) for name, row in rows.items()},
           failures_by_status=_by_status(failures),
           p95_ms={name: row["95%"] for name, row in rows.items()},
           acknowledged_uploads=len(acknowledged["documents"]), acknowledged_turns=len(acknowledged["turns"]))
    return {"rows": rows, "failures": failures, "acknowledged": acknowledged}


def _server_errors(failures: list[dict[str, str]], names: tuple[str, ...] | None, exclude: tuple[str, ...] = ()
                   ) -> list[dict[str, str]]:
    return [f for f in failures if (names is None or f["Name"] in names) and f["Name"] not in exclude
            and ("50" in f["Error"] or "ConnectionError" in f["Error"] or "RemoteDisconnected" in f["Error"])]


def test_the_documents_and_usage_endpoints_hold_under_load(load_run: dict[str, Any]) -> None:
    # given the load run, then every endpoint but chat answered every request without a server error
    assert int(load_run["rows"]["Aggregated"]["Request Count"]) > LOAD_USERS
    assert _server_errors(load_run["failures"], None, exclude=CHAT) == []


def test_chat_holds_under_load(load_run: dict[str, Any]) -> None:
    # given the load run, then chat answered without a server error and some turns were answered
    assert _server_errors(load_run["failures"], CHAT) == []
    assert load_run["acknowledged"]["turns"]


def test_every_acknowledged_upload_is_in_the_database(load_run: dict[str, Any], database_url: str) -> None:
    # given every upload the load run saw acknowledged with 201
    acknowledged = set(load_run["acknowledged"]["documents"])
    assert acknowledged
    # then each is a document row that says where it stands
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("select id::text, status from public.documents where id = any(%s::uuid[])",
                                 [sorted(acknowledged)]).fetchall())
    assert set(rows) == acknowledged
    assert set(rows.values()) <= {"ready", "processing"}


def test_every_answered_turns_cost_is_in_the_usage_totals(load_run: dict[str, Any], database_url: str) -> None:
    # given every turn the load run saw answered with its cost
    turns = load_run["acknowledged"]["turns"]
    assert turns
    with psycopg.connect(database_url) as conn:
        # then the usage rows of each add up to the cost the client was told
        for turn in turns:
            row = conn.execute("select coalesce(sum(cost_usd), 0) from public.usage_logs where message_id = %s",
                               [turn["message_id"]]).fetchone()
            assert row is not None and row[0] == Decimal(str(turn["cost_usd"] or 0)), turn
        # and the daily totals the usage report reads hold exactly the ledger
        totals = conn.execute("select (select coalesce(sum(cost_usd), 0) from public.usage_logs),"
                              " (select coalesce(sum(cost_usd), 0) from public.usage_daily)").fetchone()
    assert totals is not None and totals[0] == totals[1]
