"""The shared request pipeline: routing, validation, problem+json, request ids, CORS and logging."""

from __future__ import annotations

import json
import logging
import uuid

import flask.testing
import pytest

from tests.http.conftest import ALLOWED_ORIGIN, StructuredLog
from common.http.routing import Match, Router
from tests.http.demo import MISSING_ID, ROUTES
from tests.support.jwt_keys import KeyPair, mint, mint_hs256, supabase_claims


@pytest.fixture
def auth(es_key: KeyPair) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(es_key, supabase_claims())}"}


def problem(response: flask.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code
    assert body["type"] == f"https://docchat.dev/problems/{code}"
    assert body["status"] == status
    assert {"title", "detail", "request_id"} <= set(body)
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


# --- routing ------------------------------------------------------------------------------------

def test_unknown_path_is_404(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    problem(client.get("/no/such/thing", headers=auth), 404, "not_found")


def test_known_path_with_another_method_is_405_with_allow(client: flask.testing.FlaskClient) -> None:
    response = client.put("/")
    problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    assert client.patch(f"/{uuid.uuid4()}").headers["Allow"] == "GET"


def test_root_answers_at_slash(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    # (a mounted function's root arrives as "": see test_local_server.py for POST /demo)
    response = client.post("/", json={"name": "pen", "price": "1.5"}, headers=auth)
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["", "/", "//", "/me", "/me/", "me", "//me//"])
def test_router_ignores_leading_and_trailing_slashes(path: str) -> None:
    router = Router(ROUTES)
    found = router.resolve("GET", path)
    assert isinstance(found, Match)
    assert found.route.path == ("/me" if "me" in path else "/")


@pytest.mark.parametrize("suffix", ["", "/"])
def test_trailing_slash_does_not_matter(client: flask.testing.FlaskClient, auth: dict[str, str], suffix: str) -> None:
    item_id = uuid.uuid4()
    response = client.get(f"/{item_id}{suffix}", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["id"] == str(item_id)


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "0000000000004000800000000000040", uuid.uuid4().hex,
                                    "%7B" + str(uuid.uuid4()) + "%7D"])
def test_malformed_uuid_answers_like_a_missing_one(client: flask.testing.FlaskClient, auth: dict[str, str],
                                                   bad_id: str) -> None:
    missing = problem(client.get(f"/{MISSING_ID}", headers=auth), 404, "not_found")
    malformed = problem(client.get(f"/{bad_id}", headers=auth), 404, "not_found")
    assert malformed["status"] == missing["status"]


def test_typed_path_parameters_reach_the_handler(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    response = client.delete(f"/{uuid.uuid4()}/access/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.delete(f"/{uuid.uuid4()}/access/someone", headers=auth).status_code == 404


def test_unknown_path_is_404_before_authentication(client: flask.testing.FlaskClient) -> None:
    problem(client.get("/nothing-here"), 404, "not_found")


# --- bodies, queries and results ----------------------------------------------------------------

def test_created_item_has_exact_decimal_iso_datetime_and_handler_headers(client: flask.testing.FlaskClient,
                                                                          auth: dict[str, str]) -> None:
    response = client.post("/", data='{"name": "pen", "price": 0.10000000000000000001}',
                           content_type="application/json", headers=auth)
    assert response.status_code == 422  # max 4 decimal places: the exact value was seen, not a float
    response = client.post("/", data='{"name": "pen", "price": 12.3450, "quantity": 3}',
                           content_type="application/json", headers=auth)
    assert response.status_code == 201
    body = response.get_json()
    assert body["price"] == "12.3450"
    assert body["created_at"] == "2026-01-02T03:04:05Z"
    assert response.headers["Location"] == f"/demo/{body['id']}"


def test_validation_failure_names_fields_and_never_echoes_values(client: flask.testing.FlaskClient,
                                                                 auth: dict[str, str]) -> None:
    secret_value = "sk-live-do-not-echo-4f2a"
    response = client.post("/", json={"name": "", "price": secret_value, "quantity": 0, "extra": secret_value},
                           headers=auth)
    body = problem(response, 422, "validation_failed")
    assert sorted((tuple(e["loc"]), e["type"]) for e in body["errors"]) == [
        (("body", "extra"), "extra_forbidden"),
        (("body", "name"), "string_too_short"),
        (("body", "price"), "decimal_parsing"),
        (("body", "quantity"), "greater_than_equal"),
    ]
    assert all(set(error) == {"loc", "type"} for error in body["errors"])
    assert secret_value not in response.get_data(as_text=True)


def test_query_is_validated(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    assert len(client.get("/?limit=1", headers=auth).get_json()["items"]) == 1
    body = problem(client.get("/?limit=1000", headers=auth), 422, "validation_failed")
    assert body["errors"] == [{"loc": ["query", "limit"], "type": "less_than_equal"}]


@pytest.mark.parametrize("data", ['{"name": "pen", "price":', "{'name': 'pen'}", '{"price": NaN, "name": "x"}',
                                  b'{"name": "\xff"}'])
def test_malformed_json_is_400(client: flask.testing.FlaskClient, auth: dict[str, str], data: str | bytes) -> None:
    problem(client.post("/", data=data, content_type="application/json", headers=auth), 400, "invalid_input")


def test_body_that_is_not_json_is_415(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    problem(client.post("/", data="name=pen&price=1", content_type="application/x-www-form-urlencoded",
                        headers=auth), 415, "unsupported_media_type")


def test_empty_body_is_validated_as_an_empty_object(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    body = problem(client.post("/", headers=auth), 422, "validation_failed")
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "name"), ("body", "price")}


def test_expected_error_is_problem_json_with_stable_code(client: flask.testing.FlaskClient,
                                                         auth: dict[str, str]) -> None:
    body = problem(client.get(f"/{MISSING_ID}", headers=auth), 404, "not_found")
    assert body["detail"] == "No such item."


# --- unexpected failures and logs ---------------------------------------------------------------

def test_unknown_exception_is_a_generic_500_and_an_error_log_with_traceback(
        client: flask.testing.FlaskClient, structured_log: StructuredLog) -> None:
    response = client.get("/boom", headers={"X-Request-Id": "req-boom-1"})
    body = problem(response, 500, "internal_error")
    assert body["detail"] == "Internal error"
    assert "hunter2" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)
    errors = [line for line in structured_log.lines() if line["severity"] == "ERROR"]
    assert len(errors) == 1
    assert "Traceback (most recent call last)" in errors[0]["message"]
    assert "RuntimeError" in errors[0]["message"]
    assert errors[0]["request_id"] == "req-boom-1"


def test_request_id_is_echoed_and_in_every_log_line(client: flask.testing.FlaskClient, auth: dict[str, str],
                                                    structured_log: StructuredLog) -> None:
    response = client.post("/", json={"name": "pen", "price": "2"}, headers={**auth, "X-Request-Id": "req-42.a:b"})
    assert response.headers["X-Request-Id"] == "req-42.a:b"
    user_id = response.get_json()["owner_id"]
    lines = [line for line in structured_log.lines() if "logging.googleapis.com/diagnostic" not in line]
    assert lines and all(line["request_id"] == "req-42.a:b" for line in lines)
    handler_line = next(line for line in lines if line.get("message") == "item created")
    assert handler_line["user_id"] == user_id
    [access] = structured_log.events("http_request")
    assert access["method"] == "POST"
    assert access["path"] == "/"
    assert access["status"] == 201
    assert access["user_id"] == user_id
    assert access["function"] == "demo"
    assert isinstance(access["latency_ms"], (int, float))
    assert access["severity"] == "INFO"


@pytest.mark.parametrize("given", ["", "has spaces", "x" * 200, "<script>", "req;drop", "-leading-dash"])
def test_insane_request_id_is_replaced(client: flask.testing.FlaskClient, given: str) -> None:
    response = client.get("/boom", headers={"X-Request-Id": given})
    request_id = response.headers["X-Request-Id"]
    assert request_id != given and len(request_id) == 32 and request_id.isalnum()


def test_streamed_response_logs_with_the_request_id(client: flask.testing.FlaskClient,
                                                    structured_log: StructuredLog) -> None:
    response = client.get("/stream", headers={"X-Request-Id": "req-stream-1"})
    assert response.mimetype == "text/event-stream"
    assert response.get_data(as_text=True).endswith("event: done\ndata: {}\n\n")
    events = [line for line in structured_log.lines() if str(line.get("message", "")).startswith("stream event")]
    assert [line["request_id"] for line in events] == ["req-stream-1", "req-stream-1"]


def test_tokens_never_reach_the_logs(client: flask.testing.FlaskClient, es_key: KeyPair,
                                     structured_log: StructuredLog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    valid = mint(es_key, supabase_claims())
    invalid = mint_hs256(supabase_claims(), "some-other-secret-0123456789abcdef")
    client.get("/me", headers={"Authorization": f"Bearer {valid}"})
    client.get("/me", headers={"Authorization": f"Bearer {invalid}"})
    client.post("/refresh", headers={"Authorization": "Bearer wrong-service-token-123"})
    client.get("/boom", headers={"Authorization": f"Bearer {valid}"})
    everything = structured_log.text + caplog.text + json.dumps([r.__dict__.get("json_fields") for r in caplog.records])
    assert structured_log.events("http_request")
    for secret in (valid, invalid, "wrong-service-token-123", valid.split(".")[2], invalid.split(".")[2]):
        assert secret not in everything


# --- CORS ---------------------------------------------------------------------------------------

def preflight(client: flask.testing.FlaskClient, origin: str, path: str = "/") -> flask.Response:
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "authorization, content-type"})


def test_preflight_from_a_configured_origin_is_204_before_auth(client: flask.testing.FlaskClient) -> None:
    response = preflight(client, ALLOWED_ORIGIN)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    allowed_headers = set(response.headers["Access-Control-Allow-Headers"].split(", "))
    assert allowed_headers == {"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"}
    assert "Origin" in response.headers["Vary"]
    assert response.headers["X-Request-Id"]


def test_preflight_from_another_origin_gets_no_cors_headers(client: flask.testing.FlaskClient) -> None:
    response = preflight(client, "https://evil.example")
    assert response.status_code == 204
    assert not [name for name in response.headers.keys() if name.lower().startswith("access-control-")]


def test_actual_response_carries_cors_headers_for_a_configured_origin_only(client: flask.testing.FlaskClient,
                                                                           auth: dict[str, str]) -> None:
    allowed = client.get("/me", headers={**auth, "Origin": ALLOWED_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Request-Id" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Origin" in allowed.headers["Vary"]
    refused = client.get("/me", headers={**auth, "Origin": "https://evil.example"})
    assert refused.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    # errors carry them too, so the browser can read the problem
    unauthorized = client.get("/me", headers={"Origin": ALLOWED_ORIGIN})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_oversized_json_body_is_413(client: flask.testing.FlaskClient, auth: dict[str, str]) -> None:
    data = '{"name": "pen", "price": 1, "tags": ["' + "x" * (1024 * 1024) + '"]}'
    problem(client.post("/", data=data, content_type="application/json", headers=auth), 413, "payload_too_large")
