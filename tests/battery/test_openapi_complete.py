"""The OpenAPI document is complete enough for a frontend to generate its client from it: every route
is an operation with its auth requirement, every error a handler or the pipeline may answer is
declared as problem+json, success bodies are the routes' models (never a problem), streams declare
their events, and every reference resolves."""

from __future__ import annotations

from typing import Any

import pytest

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.battery.routes import Endpoint, all_endpoints

DOCUMENT = build_openapi(registered_functions())
PROBLEM = "application/problem+json"


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    return DOCUMENT["paths"][endpoint.template][endpoint.method.lower()]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.mark.parametrize("endpoint", all_endpoints(), ids=str)
def test_each_route_declares_its_auth_and_every_error_it_may_answer(endpoint: Endpoint) -> None:
    # given a route and its operation in the document
    operation = _operation(endpoint)
    declared = set(operation["responses"])
    # then its auth requirement is stated, with the refusals that come with it
    if endpoint.route.auth == "none":
        assert operation["security"] == []
    else:
        assert operation["security"] in ([{"supabaseAuth": []}], [{"schedulerAuth": []}])
        assert {"401", "403", "503"} <= declared
    # and every error status the route names, and 500, is a problem+json answer
    errors = {str(s) for s in endpoint.route.errors if s >= 400} | {"500"}
    assert errors <= declared
    for status in errors:
        assert PROBLEM in _resolve(operation["responses"][status])["content"], status
    # and its path parameters and body are declared
    assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == [
        p.name for p in endpoint.route.path_params]
    assert ("requestBody" in operation) == (endpoint.route.body is not None)


@pytest.mark.parametrize("endpoint", all_endpoints(), ids=str)
def test_success_answers_carry_the_routes_own_body(endpoint: Endpoint) -> None:
    # given a route's success statuses
    operation = _operation(endpoint)
    for status in endpoint.route.success_statuses:
        response = _resolve(operation["responses"][str(status)])
        content = response.get("content", {})
        # then none is documented as a problem, and each carries the response model when there is one
        assert PROBLEM not in content, status
        if status == 204:
            assert content == {}
        elif endpoint.route.response is not None:
            assert content["application/json"]["schema"]["$ref"].endswith(endpoint.route.response.__name__)
        if endpoint.route.events and status != 204:
            assert {variant["title"] for variant in content["text/event-stream"]["schema"]["oneOf"]} == {
                name for name, _ in endpoint.route.events}


def test_an_upload_of_the_same_bytes_again_is_documented_as_the_document() -> None:
    # given POST /upload, whose 200 answers the document it already has
    responses = DOCUMENT["paths"]["/upload"]["post"]["responses"]
    # then the 200 and the 201 declare the same document body, not a problem
    assert responses["200"]["content"] == responses["201"]["content"]
    assert list(responses["200"]["content"]) == ["application/json"]


def test_streamed_chat_declares_its_events() -> None:
    content = DOCUMENT["paths"]["/chat"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(content)


def test_every_reference_resolves_and_every_operation_id_is_unique() -> None:
    for ref in _refs(DOCUMENT):
        assert _resolve({"$ref": ref}), ref
    ids = [op["operationId"] for methods in DOCUMENT["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids)) == len(all_endpoints())

