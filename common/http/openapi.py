"""The OpenAPI 3.1 document of every endpoint, built from the routes themselves (D9).

Paths are written as the one-port server (and a gateway) serves them: ``/<function>/<route>``.
Schemas come from the routes' pydantic models (request bodies and queries in validation mode,
responses in serialization mode, so exact decimals appear as strings) and live in
``components/schemas``; every error is an ``application/problem+json`` response, and every route
that takes a token declares the pipeline's refusals (401, 403, 503). A route's other statuses that
carry its own body (``errors`` below 400) are declared with that body, and ``Route.responses``
documents other bodies and media types. What a
``POST`` creates links to the routes that take it (OpenAPI links, for clients and stateful fuzzing).

``python -m common.http.openapi`` prints the document of the functions in
:data:`common.http.registry.FUNCTIONS`.
"""

from __future__ import annotations

import http
import json
import sys
from collections.abc import Sequence
from typing import Any, Literal

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from common.http.problem import PROBLEM_CONTENT_TYPE, Problem
from common.http.routing import OPENAPI_PARAM_SCHEMAS, Route, Router
from common.http.registry import mount_path, registered_functions

REF_TEMPLATE = "#/components/schemas/{model}"


class FieldError(pydantic.BaseModel):
    loc: list[str | int]
    type: str


class ValidationProblem(Problem):
    """422 validation_failed: which fields failed and how, never the values sent."""

    errors: list[FieldError]


def _error_statuses(route: Route) -> set[int]:
    """Every error status ``route`` may answer: its own, and what the pipeline adds around it."""
    statuses = {500, *(status for status in route.errors if status >= 400)}
    if route.auth in ("user", "service"):
        # 401: no or a bad token; 403: a disabled account (user) or the wrong caller (service);
        # 503: the signing keys or the database cannot be reached.
        statuses |= {401, 403, 503}
    if route.body is not None:
        statuses |= {400, 413, 415, 422}
    if route.query is not None:
        statuses.add(422)
    if route.path_params:
        statuses.add(404)
    return statuses


def _collect_models(functions: Sequence[tuple[str, Sequence[Route]]]
                    ) -> list[tuple[type[pydantic.BaseModel], JsonSchemaMode]]:
    wanted: list[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = [
        (Problem, "serialization"), (ValidationProblem, "serialization")]
    for _, routes in functions:
        for route in routes:
            for model, mode in ((route.body, "validation"), (route.query, "validation"),
                                (route.response, "serialization"),
                                *((event_model, "serialization") for _, event_model in route.events),
                                *((doc.model, "serialization") for doc in route.responses)):
                if model is not None and (model, mode) not in wanted:
                    wanted.append((model, mode))
    return wanted


def _ref_name(ref: dict[str, Any]) -> str:
    return ref["$ref"].rsplit("/", 1)[-1]


def build_openapi(functions: Sequence[tuple[str, Sequence[Route]]], *, title: str = "docchat API",
                  version: str = "1.0.0") -> dict[str, Any]:
    """One OpenAPI 3.1 document for ``(function name, routes)`` pairs; raises ValueError on clashes."""
    refs, definitions = models_json_schema(_collect_models(functions), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    used_statuses: set[int] = set()
    operation_ids: set[str] = set()
    paths: dict[str, dict[str, Any]] = {}

    for function, routes in functions:
        Router(routes)  # refuses two routes for one method and path shape, as the function would
        for route in routes:
            path = mount_path(function) + route.openapi_path
            operation = _operation(function, route, refs, schemas, operation_ids)
            statuses = _error_statuses(route)
            used_statuses |= statuses
            codes = dict(route.codes)
            for status in sorted(statuses | set(codes)):
                reference = {"$ref": f"#/components/responses/Problem{status}"}
                if status in codes:  # OpenAPI 3.1: a description beside $ref overrides the shared one
                    reference["description"] = codes[status]
                operation["responses"][str(status)] = reference
            used_statuses |= set(codes)
            _document_responses(operation, route, refs)
            methods = paths.setdefault(path, {})
            if route.method.lower() in methods:
                raise ValueError(f"two operations for {route.method} {path}")
            methods[route.method.lower()] = operation

    for function, routes in functions:
        _add_links(paths, mount_path(function), routes)
    problem_ref = refs[(Problem, "serialization")]
    validation_ref = refs[(ValidationProblem, "serialization")]
    responses = {
        f"Problem{status}": {
            "description": http.HTTPStatus(status).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": validation_ref if status == 422 else problem_ref}},
        }
        for status in sorted(used_statuses)
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Each function is mounted under /<function>; on its own Cloud Run URL the same "
                           "routes answer without that prefix.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": responses,
            "securitySchemes": {
                "supabaseAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                 "description": "A Supabase access token of a signed-in user."},
                "schedulerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                  "description": "The Cloud Scheduler service account's Google OIDC ID token "
                                                 "(the configured service token in the local stack)."},
            },
        },
    }


def _operation(function: str, route: Route, refs: dict[Any, dict[str, Any]], schemas: dict[str, Any],
               operation_ids: set[str]) -> dict[str, Any]:
    handler_name = getattr(route.handler, "__name__", "handler")
    operation_id = f"{function}_{handler_name}"
    if operation_id in operation_ids:
        operation_id = f"{function}_{route.method.lower()}" + route.openapi_path.replace("/", "_").replace(
            "{", "").replace("}", "")
    if operation_id in operation_ids:
        raise ValueError(f"duplicate operationId {operation_id}")
    operation_ids.add(operation_id)
    doc = (route.handler.__doc__ or "").strip().splitlines()
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.summary or (doc[0] if doc else f"{route.method} {route.path}"),
        "tags": [function],
        "security": _security(route.auth),
        "parameters": [
            {"name": p.name, "in": "path", "required": True, "schema": dict(OPENAPI_PARAM_SCHEMAS[p.converter])}
            for p in route.path_params
        ],
        "responses": {str(status): _success(route, refs, status) for status in route.success_statuses},
    }
    if route.query is not None:
        query_schema = schemas[_ref_name(refs[(route.query, "validation")])]
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            operation["parameters"].append({"name": name, "in": "query", "required": name in required,
                                            "schema": schema})
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {route.body_media: {"schema": refs[(route.body, "validation")]}},
        }
    return operation


def _document_responses(operation: dict[str, Any], route: Route, refs: dict[Any, dict[str, Any]]) -> None:
    """Add the route's :class:`ResponseDoc` bodies to its responses. A status that is also an error
    keeps its problem+json body beside the documented one."""
    for doc in route.responses:
        key = str(doc.status)
        response = operation["responses"].get(key)
        if response is None or "$ref" in response:
            content: dict[str, Any] = {}
            if response is not None:
                problem = ValidationProblem if doc.status == 422 else Problem
                content[PROBLEM_CONTENT_TYPE] = {"schema": refs[(problem, "serialization")]}
            response = {"description": http.HTTPStatus(doc.status).phrase, "content": content}
            operation["responses"][key] = response
        if doc.description:
            response["description"] = doc.description
        schema = refs[(doc.model, "serialization")] if doc.model is not None else {"type": "string"}
        response.setdefault("content", {})[doc.media] = {"schema": schema}


def _add_links(paths: dict[str, dict[str, Any]], prefix: str, routes: Sequence[Route]) -> None:
    """OpenAPI links from what a route creates to the routes that take it: a route below the
    creator's path whose one new parameter is a field of the created body (``POST /sessions`` ->
    ``GET /sessions/{id}``; ``POST /upload/{id}/access`` -> ``DELETE /upload/{id}/access/{share_id}``)."""
    for creator in routes:
        if creator.method != "POST" or creator.response is None:
            continue
        fields = set(creator.response.model_fields)
        known = {p.name for p in creator.path_params}
        depth = len(creator.segments)
        links: dict[str, Any] = {}
        for target in routes:
            head = target.segments[:depth]
            new = [p for p in target.path_params if p.name not in known]
            if (target is creator or len(target.segments) <= depth or head != creator.segments
                    or len(new) != 1 or new[0] is not target.segments[depth] or new[0].name not in fields):
                continue
            operation = paths[prefix + target.openapi_path][target.method.lower()]
            links[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {p.name: (f"$response.body#/{p.name}" if p is new[0] else f"$request.path.{p.name}")
                               for p in target.path_params}}
        if links:
            paths[prefix + creator.openapi_path]["post"]["responses"][str(creator.status)]["links"] = links


def _security(auth: Literal["user", "service", "none"]) -> list[dict[str, list[str]]]:
    if auth == "user":
        return [{"supabaseAuth": []}]
    if auth == "service":
        return [{"schedulerAuth": []}]
    return []


def _success(route: Route, refs: dict[Any, dict[str, Any]], status: int) -> dict[str, Any]:
    """A success answer of ``route``: its response model (or event stream), or no body.

    A route's other statuses with that body (``errors`` below 400, e.g. 200 for an upload that found
    the same document) are declared alike; a 204 never has a body."""
    description = http.HTTPStatus(status).phrase
    if status == 204:
        return {"description": description}
    content: dict[str, Any] = {}
    if route.response is not None:
        content["application/json"] = {"schema": refs[(route.response, "serialization")]}
    if route.events:
        content["text/event-stream"] = {"schema": _event_stream_schema(route, refs)}
    return {"description": description, "content": content} if content else {"description": description}


def _event_stream_schema(route: Route, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """Server-Sent Events as one schema per event: its ``event`` name and the JSON of its ``data``
    line. Comment lines (``: keep-alive``) may come between events while the server is busy."""
    names = ", ".join(f"`{name}`" for name, _ in route.events)
    return {
        "description": f"Server-Sent Events, in this order: {names}. Each event is `event: <name>` and one "
                       "`data:` line of JSON as given here; `: keep-alive` comment lines keep an idle "
                       "connection open.",
        "oneOf": [{"type": "object", "title": name, "required": ["event", "data"],
                   "properties": {"event": {"const": name},
                                  # the data line is JSON text: its schema is the content's (JSON Schema 2020-12)
                                  "data": {"type": "string", "contentMediaType": "application/json",
                                           "contentSchema": refs[(model, "serialization")]}}}
                  for name, model in route.events],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the document of the registered functions as JSON."""
    del argv
    json.dump(build_openapi(registered_functions()), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
