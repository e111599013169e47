"""GET /admin/health: 200 when every check passes; 503 naming the check when the database is
stopped, migrations are not current, the stand-in errors, the registry refresh is stale or failed,
or turns are stuck; the scheduler check through the real google-cloud-scheduler client against a
loopback fake of its API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import flask.testing
import psycopg
import pytest

from common.db.base import Database
from common.db.psycopg_transport import PsycopgDatabase
from common.health import check_scheduler_job, run_health, shipped_migrations
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.admin.conftest import record_registry_run, with_admin_settings
from tests.admin.scheduler_fake import FakeScheduler, SchedulerServer
from tests.support.factories import backend, begin_turn
from tests.support.functions import build_function_app
from tests.support.openapi import assert_matches_openapi
from tests.support.users import AppUser, UserFactory
from tests.upload.conftest import auth

JOB = "projects/demo/locations/europe-west1/jobs/registry-refresh"

OPENAPI = build_openapi(registered_functions())


@pytest.fixture(scope="module")
def admin(users: UserFactory) -> AppUser:
    return users.create(admin=True)


@pytest.fixture(autouse=True)
def _fresh_registry_run(psycopg_db: Database) -> None:
    record_registry_run(psycopg_db)


def _checks(body: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in body["checks"]}


def test_all_well_is_200_with_every_check(client: flask.testing.FlaskClient, admin: AppUser) -> None:
    got = client.get("/health", headers=auth(admin))
    assert got.status_code == 200, got.json
    assert_matches_openapi(OPENAPI, "GET", "/admin/health", 200, got.json)
    assert got.json["failing"] == []
    assert _checks(got.json) == {"database": "ok", "registry": "ok", "pending_turns": "ok", "openai": "ok",
                                 "scheduler": "not_applicable"}
    assert all(c["latency_ms"] is not None for c in got.json["checks"] if c["name"] in ("database", "openai"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stopped_database_is_503_naming_it(runtime: Runtime, functions_dir: Path, admin: AppUser) -> None:
    # given the function's database at a port nobody listens on
    stopped = PsycopgDatabase(f"host=127.0.0.1 port={_closed_port()} dbname=postgres user=postgres", timeout_seconds=1)
    try:
        app = build_function_app(functions_dir, "admin", with_admin_settings(runtime, database=stopped))
        got = app.test_client().get("/health", headers=auth(admin))
    finally:
        stopped.close()
    assert got.status_code == 503
    assert got.json["failing"] == ["database", "registry", "pending_turns"]
    assert_matches_openapi(OPENAPI, "GET", "/admin/health", 503, got.json, content_type="application/json")
    # and without a database to confirm the caller is an admin, nothing else is told
    assert set(_checks(got.json)) == {"database", "registry", "pending_turns"}


def test_the_standin_erroring_is_503_naming_openai(client: flask.testing.FlaskClient, admin: AppUser,
                                                   standin: Any) -> None:
    standin.inject_fault(r"^/files", method="GET", status=500, times=5)
    got = client.get("/health", headers=auth(admin))
    assert got.status_code == 503 and got.json["failing"] == ["openai"]
    assert_matches_openapi(OPENAPI, "GET", "/admin/health", 503, got.json, content_type="application/json")
    detail = next(c["detail"] for c in got.json["checks"] if c["name"] == "openai")
    assert "500" in detail and "sk-" not in detail


def test_a_migration_not_applied_is_503_naming_the_file(client: flask.testing.FlaskClient, admin: AppUser,
                                                        database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update private.schema_migrations set sha256 = 'old' where filename = '045_usage_reports.sql'")
        try:
            got = client.get("/health", headers=auth(admin))
        finally:
            conn.execute("update private.schema_migrations set sha256 = %s where filename = '045_usage_reports.sql'",
                         [next(f["sha256"] for f in shipped_migrations() if f["filename"] == "045_usage_reports.sql")])
    assert got.status_code == 503 and got.json["failing"] == ["database"]
    database = next(c for c in got.json["checks"] if c["name"] == "database")
    assert database["data"]["migrations_pending"] == ["045_usage_reports.sql"]
    assert client.get("/health", headers=auth(admin)).status_code == 200


def test_a_stale_or_failed_registry_refresh_is_503(client: flask.testing.FlaskClient, admin: AppUser,
                                                   database_url: str, psycopg_db: Database) -> None:
    # given the last run failed
    record_registry_run(psycopg_db, status="failed")
    failed = client.get("/health", headers=auth(admin))
    assert failed.status_code == 503 and failed.json["failing"] == ["registry"]
    # given the last run is older than twice the schedule (5 minutes)
    record_registry_run(psycopg_db)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set started_at = started_at - interval '11 minutes'"
                     " where started_at <= now()")
    stale = client.get("/health", headers=auth(admin))
    assert stale.status_code == 503 and stale.json["failing"] == ["registry"]
    assert "stale" in next(c["detail"] for c in stale.json["checks"] if c["name"] == "registry")


def test_a_turn_pending_past_the_timeout_is_503(client: flask.testing.FlaskClient, admin: AppUser,
                                                users: UserFactory, psycopg_db: Database, database_url: str) -> None:
    user = users.create()
    turn = begin_turn(psycopg_db, user)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.chat_messages set created_at = now() - interval '16 minutes' where id = %s",
                     [turn["assistant_message_id"]])
    got = client.get("/health", headers=auth(admin))
    assert got.status_code == 503 and got.json["failing"] == ["pending_turns"]
    assert next(c["data"]["count"] for c in got.json["checks"] if c["name"] == "pending_turns") == 1
    psycopg_db.call("fail_chat_turn", {"p_message_id": turn["assistant_message_id"], "p_error_code": "timeout",
                                       "p_error_message": "settled by the test"}, backend(user))
    assert client.get("/health", headers=auth(admin)).status_code == 200


@pytest.fixture
def scheduler() -> Iterator[SchedulerServer]:
    server = SchedulerServer(FakeScheduler())
    yield server
    server.stop()


def _job(state: str = "ENABLED", code: int = 0) -> dict[str, Any]:
    return {"name": JOB, "schedule": "*/5 * * * *", "state": state, "lastAttemptTime": "2026-12-01T10:00:00Z",
            "status": {"code": code, "message": "" if code == 0 else "the target answered 500"}}


def test_the_scheduler_job_through_the_real_client(scheduler: SchedulerServer) -> None:
    client = scheduler.client()
    scheduler.fake.jobs[JOB] = _job()
    ok = check_scheduler_job(client, JOB)
    assert (ok.status, ok.data["state"], ok.data["last_attempt_at"]) == ("ok", "ENABLED", "2026-12-01T10:00:00+00:00")
    assert scheduler.fake.calls == [f"GET /v1/{JOB}"]
    scheduler.fake.jobs[JOB] = _job(state="PAUSED")
    assert check_scheduler_job(client, JOB).status == "failed"
    scheduler.fake.jobs[JOB] = _job(code=13)
    failed_attempt = check_scheduler_job(client, JOB)
    assert failed_attempt.status == "failed" and "code 13" in failed_attempt.detail
    missing = check_scheduler_job(client, JOB.replace("registry-refresh", "gone"))
    assert missing.status == "failed" and "404" in missing.detail
    scheduler.fake.fail_with = 500
    assert check_scheduler_job(client, JOB).status == "failed"


def test_on_google_cloud_the_scheduler_check_is_part_of_health(runtime: Runtime, scheduler: SchedulerServer,
                                                               admin: AppUser) -> None:
    scheduler.fake.jobs[JOB] = _job(state="PAUSED")
    configured = with_admin_settings(runtime, scheduler_job=JOB, on_google_cloud=True)
    body, status = run_health(configured, admin.identity, scheduler_client=scheduler.client)
    assert status == 503 and body["failing"] == ["scheduler"]
    unconfigured = with_admin_settings(runtime, on_google_cloud=True)
    body, status = run_health(unconfigured, admin.identity, scheduler_client=scheduler.client)
    assert status == 503 and body["failing"] == ["scheduler"]


def test_health_is_for_admins(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    assert client.get("/health").status_code == 401
    got = client.get("/health", headers=auth(users.create()))
    assert (got.status_code, got.json["code"]) == (403, "forbidden")
