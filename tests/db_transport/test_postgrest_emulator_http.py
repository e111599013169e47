"""The PostgREST emulator answers on the wire as PostgREST and the Supabase gateway do (status, body,
headers), so the supabase-py transport is tested against realistic answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from supabase import ClientOptions, create_client

from tests.support.postgrest_emulator import PostgrestEmulator, http_status
from tests.support.users import TEST_JWT_SECRET, service_role_key


@pytest.fixture
def http(emulator: PostgrestEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url + "/rest/v1/rpc", timeout=10) as client:
        yield client


def _headers(bearer: str | None = None, **extra: str) -> dict[str, str]:
    key = service_role_key()
    return {"apikey": key, "Authorization": f"Bearer {bearer or key}", "Content-Profile": "public", **extra}


def test_supabase_py_reaches_the_emulator_with_a_plain_rpc(emulator: PostgrestEmulator) -> None:
    # given an unmodified supabase-py client pointed at the emulator
    http_client = httpx.Client(timeout=10)
    client = create_client(emulator.url, service_role_key(),
                           ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http_client))
    try:
        # when / then: a jsonb function's data is the bare value, a void function's is []
        assert client.rpc("t_echo", {"p_x": {"amount": "1"}}).execute().data == {"echo": {"amount": "1"}, "total": 1}
        assert client.rpc("t_void", {}).execute().data == []
    finally:
        http_client.close()


def test_a_void_function_answers_204_without_a_body(http: httpx.Client) -> None:
    response = http.post("/t_void", json={}, headers=_headers())
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({"apikey": ""}, 401, None),
    ({"apikey": "not-a-key"}, 401, None),
    ({"Authorization": "Bearer not.a.jwt"}, 401, "PGRST301"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "PGRST301"),
    ({"Content-Profile": "private"}, 406, "PGRST106"),
])
def test_requests_the_api_refuses(http: httpx.Client, headers: dict[str, str], status: int, code: str | None) -> None:
    response = http.post("/t_whoami", json={}, headers={**_headers(), **headers})
    assert response.status_code == status
    assert response.json().get("code") == code


@pytest.mark.parametrize(("claims", "status", "code"), [
    ({"role": "authenticated", "exp": 1}, 401, "PGRST303"),
    ({"sub": "x"}, 401, "PGRST303"),
    ({"role": "postgres"}, 401, "22023"),
])
def test_tokens_the_api_refuses(http: httpx.Client, claims: dict[str, Any], status: int, code: str) -> None:
    token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    response = http.post("/t_whoami", json={}, headers=_headers(token))
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_no_bearer_runs_as_anon(http: httpx.Client) -> None:
    response = http.post("/t_whoami", json={}, headers={"apikey": service_role_key()})
    assert response.json()["current_user"] == "anon"


def test_unknown_argument_names_answer_404_pgrst202_with_a_hint(http: httpx.Client) -> None:
    response = http.post("/t_echo", json={"p_y": 1}, headers=_headers())
    body = response.json()
    assert (response.status_code, body["code"]) == (404, "PGRST202")
    assert set(body) == {"code", "message", "details", "hint"}
    assert "p_x" in body["hint"]
    assert response.headers["Proxy-Status"] == "PostgREST; error=PGRST202"


def test_a_write_inside_a_stable_function_answers_405_25006(http: httpx.Client) -> None:
    response = http.post("/t_stable_write", json={}, headers=_headers())
    assert (response.status_code, response.json()["code"]) == (405, "25006")


def test_a_missing_grant_answers_403_with_a_token_and_401_without(
        http: httpx.Client, make_user: Callable[..., Any]) -> None:
    with_token = http.post("/t_service_only", json={}, headers=_headers(make_user().token))
    anonymous = http.post("/t_service_only", json={}, headers={"apikey": service_role_key()})
    assert (with_token.status_code, with_token.json()["code"]) == (403, "42501")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "42501")


def test_an_error_body_carries_the_sqlstate_message_detail_and_hint(http: httpx.Client) -> None:
    response = http.post("/t_fail", json={"p_code": "DC404"}, headers=_headers())
    assert response.status_code == 400
    assert response.json() == {"code": "DC404", "message": "failure DC404", "details": None, "hint": None}


def test_a_body_that_is_not_a_json_object_answers_400_pgrst102(http: httpx.Client) -> None:
    response = http.post("/t_echo", content=b"[1, 2", headers={**_headers(), "Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "PGRST102")


def test_only_post_is_served(http: httpx.Client) -> None:
    assert http.get("/t_whoami", headers=_headers()).status_code == 405


@pytest.mark.parametrize(("sqlstate", "status"), [
    ("08006", 503), ("23503", 409), ("23505", 409), ("23502", 400), ("25006", 405), ("25001", 500),
    ("28000", 403), ("40001", 500), ("42883", 404), ("42P01", 404), ("53300", 503), ("53400", 500),
    ("57014", 500), ("57P01", 503), ("P0001", 400), ("P0002", 500), ("PT402", 402), ("DC404", 400),
    ("22P02", 400), ("XX000", 500), ("55P03", 500), ("54000", 500), ("22007", 400), ("40P01", 500),
    ("0L000", 403), ("0P000", 403), ("09000", 500), ("2D000", 500), ("38000", 500), ("39000", 500),
    ("3B000", 500), ("58000", 500), ("F0000", 500), ("HV000", 500), ("42P17", 500), ("21000", 500),
    # every code class our own SQL raises (DC...) is PostgREST's "anything else": 400
    ("DC400", 400), ("DC401", 400), ("DC402", 400), ("DC403", 400), ("DC409", 400), ("DC410", 400),
    ("DC423", 400),
])
def test_sqlstates_map_to_postgrest_statuses(sqlstate: str, status: int) -> None:
    assert http_status(sqlstate, with_jwt=True) == status


def test_pg_safeupdates_refusal_is_a_400_and_other_cardinality_errors_a_500() -> None:
    assert http_status("21000", with_jwt=True, message="UPDATE requires a WHERE clause") == 400
    assert http_status("21000", with_jwt=True, message="more than one row returned by a subquery") == 500


def test_a_missing_grant_without_a_jwt_is_401() -> None:
    assert http_status("42501", with_jwt=False) == 401
