"""The OpenAPI document is built from the routes, and real responses are checked against it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import flask.testing
import pytest

from common.http import Route
from common.http.openapi import build_openapi
from tests.http.demo import MISSING_ID, REFRESH_ROUTES, ROUTES
from tests.support.jwt_keys import KeyPair, mint, supabase_claims
from tests.support.openapi import assert_matches_openapi

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi([("demo", ROUTES), ("registry_refresh", REFRESH_ROUTES)])


def test_every_demo_route_is_documented_under_its_mount(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("/demo", "get"), ("/demo", "post"), ("/demo/me", "get"), ("/demo/{id}", "get"),
        ("/demo/{id}/access/{user_id}", "delete"), ("/demo/boom", "get"), ("/demo/wrong-shape", "get"),
        ("/demo/stream", "get"), ("/demo/refresh", "post"), ("/registry-refresh", "post"),
    }


def test_models_become_component_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create = document["paths"]["/demo"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemIn"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemOut"}
    assert schemas["ItemIn"]["required"] == ["name", "price"]
    assert schemas["ItemOut"]["properties"]["price"]["type"] == "string"  # exact decimals travel as strings
    assert schemas["ItemOut"]["properties"]["created_at"]["format"] == "date-time"
    assert {"Problem", "ValidationProblem", "FieldError", "ItemPage", "WhoAmI"} <= set(schemas)


def test_parameters_security_and_problem_responses(document: dict[str, Any]) -> None:
    listing = document["paths"]["/demo"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in listing["parameters"]] == [
        ("limit", "query", False), ("cursor", "query", False)]
    assert listing["security"] == [{"supabaseAuth": []}]
    revoke = document["paths"]["/demo/{id}/access/{user_id}"]["delete"]
    assert [(p["name"], p["schema"]) for p in revoke["parameters"]] == [
        ("id", {"type": "string", "format": "uuid"}), ("user_id", {"type": "string", "format": "uuid"})]
    # a route that takes a token also declares the pipeline's refusals: 403 (a disabled account), 503
    assert set(revoke["responses"]) == {"204", "401", "403", "404", "409", "500", "503"}
    assert document["paths"]["/demo/boom"]["get"]["security"] == []
    assert document["paths"]["/registry-refresh"]["post"]["security"] == [{"schedulerAuth": []}]
    problem_422 = document["components"]["responses"]["Problem422"]
    assert problem_422["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblem"}
    assert document["components"]["securitySchemes"]["supabaseAuth"]["scheme"] == "bearer"


def test_real_responses_match_the_document(document: dict[str, Any], client: flask.testing.FlaskClient,
                                           es_key: KeyPair) -> None:
    auth = {"Authorization": f"Bearer {mint(es_key, supabase_claims())}"}
    cases = [
        ("POST", "/demo", client.post("/", json={"name": "pen", "price": "1.25"}, headers=auth)),
        ("GET", "/demo", client.get("/?limit=2", headers=auth)),
        ("GET", "/demo/{id}", client.get(f"/{uuid.uuid4()}", headers=auth)),
        ("GET", "/demo/{id}", client.get(f"/{MISSING_ID}", headers=auth)),
        ("POST", "/demo", client.post("/", json={"price": -1}, headers=auth)),
        ("GET", "/demo/me", client.get("/me", headers=auth)),
        ("GET", "/demo/me", client.get("/me")),
        ("GET", "/demo/boom", client.get("/boom")),
    ]
    for method, path, response in cases:
        body = response.get_json() if response.get_data() else None
        assert_matches_openapi(document, method, path, response.status_code, body)
    delete = client.delete(f"/{uuid.uuid4()}/access/{uuid.uuid4()}", headers=auth)
    assert_matches_openapi(document, "DELETE", "/demo/{id}/access/{user_id}", delete.status_code, None)


def test_the_helper_detects_a_response_that_does_not_match(document: dict[str, Any],
                                                           client: flask.testing.FlaskClient) -> None:
    response = client.get("/wrong-shape")
    assert response.status_code == 200
    with pytest.raises(AssertionError) as failure:
        assert_matches_openapi(document, "GET", "/demo/wrong-shape", 200, response.get_json())
    assert "/id" in str(failure.value) and "/name" in str(failure.value)
    with pytest.raises(AssertionError, match="does not declare status 418"):
        assert_matches_openapi(document, "GET", "/demo/me", 418, {})
    with pytest.raises(AssertionError, match="not in the OpenAPI document"):
        assert_matches_openapi(document, "PUT", "/demo/me", 200, {})


def test_conflicting_routes_are_refused() -> None:
    with pytest.raises(ValueError, match="two routes"):
        build_openapi([("demo", [*ROUTES, Route("GET", "/{other:uuid}", ROUTES[0].handler)])])


def test_module_prints_the_registered_document() -> None:
    result = subprocess.run([sys.executable, "-m", "common.http.openapi"], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60)
    document = json.loads(result.stdout)
    assert document["openapi"] == "3.1.0"
    assert "Problem" in document["components"]["schemas"]
