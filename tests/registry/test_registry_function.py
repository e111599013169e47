"""The registry refresh as a function: only the scheduler may call it; it answers the run's figures."""

from __future__ import annotations

import flask.testing
import psycopg
import pytest

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.support.functions import REGISTRY_TOKEN, build_function_app
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory

SERVICE = {"Authorization": f"Bearer {REGISTRY_TOKEN}"}


@pytest.fixture(scope="module")
def client(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> flask.testing.FlaskClient:
    return build_function_app(tmp_path_factory.mktemp("fns"), "registry_refresh", runtime).test_client()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic abc"}])
def test_no_or_a_wrong_token_is_401(client: flask.testing.FlaskClient, headers: dict[str, str]) -> None:
    response = client.post("/", headers=headers)
    assert response.status_code == 401 and response.json["code"] == "unauthorized"


def test_a_users_token_is_403(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    response = client.post("/", headers={"Authorization": f"Bearer {users.create().token}"})
    assert response.status_code == 403 and response.json["code"] == "forbidden"


def test_the_scheduler_gets_the_runs_figures(client: flask.testing.FlaskClient) -> None:
    response = client.post("/", headers=SERVICE, json={"trigger": "schedule"})
    assert response.status_code == 200 and response.json["status"] == "completed"
    assert_matches_openapi(build_openapi(registered_functions()), "POST", "/registry-refresh", 200, response.json)
    assert {"stores", "files_seen", "updated", "adopted", "removed", "missing", "errors", "duration_ms"} <= set(
        response.json["figures"])
    # and its housekeeping: stale chat turns settled, orphan vector stores swept
    assert {"turns_stale", "turns_finished", "turns_failed", "turns_waiting", "turn_errors", "stores_seen",
            "orphan_stores", "orphan_stores_deleted", "orphan_stores_in_grace"} <= set(response.json["figures"])


def test_a_second_run_while_one_holds_the_lease_is_409(client: flask.testing.FlaskClient, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into public.registry_runs (lease_until) values (now() + interval '1 minute')")
    try:
        response = client.post("/", headers=SERVICE)
        assert response.status_code == 409 and response.json["code"] == "already_running"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("update public.registry_runs set status = 'failed' where status = 'running'")
