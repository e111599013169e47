"""The request pipeline every function shares (STYLE habits 1-5).

For each request :meth:`FunctionApp.handle` does, in order: request id (``X-Request-Id`` when sane,
else generated) bound to the logging context -> CORS preflight (before authentication) -> routing
(404 / 405 with ``Allow``) -> authentication of the route (user token, scheduler, or none) -> JSON
body and query validation (422 ``validation_failed`` naming fields, never values) -> the handler ->
the result as JSON (or the handler's own ``flask.Response``) -> errors as problem+json -> request id
and CORS headers -> one access log line.

A handler has one shape: ``handler(ctx: RequestContext) -> Result`` where Result is a pydantic model,
a dict or list (JSON), ``None`` (empty body, e.g. 204), ``(body, status)``, ``(body, status, headers)``
or a ``flask.Response`` (streams).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import flask
import pydantic

from common.auth.service import verify_service_caller
from common.auth.tokens import bearer_token
from common.db.base import Identity
from common.errors import AppError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError
from common.http import cors
from common.http.jsonio import json_response, read_json_body
from common.http.problem import problem_response, validation_error
from common.http.routing import Route, Router
from common.logging import (
    RequestLogContext,
    bind_request,
    current_request,
    log_event,
    request_scope,
    set_request_user,
    unbind_request,
)
from common.runtime import Runtime, get_runtime

log = logging.getLogger("docchat.http")
access_log = logging.getLogger("docchat.access")

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class RequestContext:
    """What a handler gets: the request, who calls, validated inputs and the process's collaborators."""

    request: flask.Request
    request_id: str
    identity: Identity | None
    path_params: Mapping[str, Any]
    query: pydantic.BaseModel | None
    body: pydantic.BaseModel | None
    runtime: Runtime
    function: str = ""

    @property
    def user_id(self) -> str | None:
        return self.identity.user_id if self.identity is not None else None

    @property
    def idempotency_key(self) -> str | None:
        value = (self.request.headers.get("Idempotency-Key") or "").strip()
        return value or None


def request_id_from(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Request-Id`` when it is a short token of safe characters, else a new id."""
    candidate = headers.get(REQUEST_ID_HEADER, "")
    return candidate if _SANE_REQUEST_ID.match(candidate) else uuid.uuid4().hex


class FunctionApp:
    """One Cloud Run function's routes behind the shared pipeline; see the module docstring.

    ``runtime_factory`` is called per request and must return the process's (cached) runtime.
    """

    def __init__(self, name: str, routes: Sequence[Route], *,
                 runtime_factory: Callable[[], Runtime] = get_runtime) -> None:
        self.name = name
        self.routes = tuple(routes)
        self.router = Router(self.routes)
        self._runtime_factory = runtime_factory
        if flask.has_app_context():
            # functions-framework imports main.py inside its Flask app's context: the requests its
            # URL map never hands to the entry point (a path segment holding a control character,
            # /robots.txt, /favicon.ico) get problem+json too, instead of Flask's HTML page.
            install_problem_fallbacks(flask.current_app)

    def handle(self, request: flask.Request) -> flask.Response:
        """Serve one request; never raises (unknown failures become a logged, generic 500)."""
        started = time.perf_counter()
        request_id = request_id_from(request.headers)
        token = bind_request(RequestLogContext(request_id=request_id, function=self.name))
        try:
            origins: Sequence[str] = ()
            try:
                runtime = self._runtime_factory()
                origins = runtime.settings.cors_origins
                response = self._dispatch(request, request_id, runtime)
            except AppError as error:
                if error.status >= 500:
                    log.error("request failed: %s", error.code, exc_info=error)
                response = problem_response(error, request_id)
                if isinstance(error, PayloadTooLargeError):
                    _refuse_body(response)
            except Exception as exc:  # the one place unknown failures are caught: logged, generic 500
                log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
                response = problem_response(AppError(), request_id)
            response.headers[REQUEST_ID_HEADER] = request_id
            if cors.is_preflight(request) and response.status_code == 204:
                cors.add_vary_origin(response)
            else:
                cors.apply_cors(response, request, origins)
            self._log_access(request, response, started)
            if response.is_streamed:
                context = current_request()
                if context is not None:
                    response.response = _in_request_scope(response.response, context)
            return response
        finally:
            unbind_request(token)

    def _dispatch(self, request: flask.Request, request_id: str, runtime: Runtime) -> flask.Response:
        path = request.path
        if request.method == "OPTIONS":
            methods = self._methods_for(path)
            if not methods:
                raise NotFoundError("No such endpoint.")
            if cors.is_preflight(request):
                return cors.preflight_response(request, runtime.settings.cors_origins, methods)
            response = flask.Response(status=204)
            response.headers["Allow"] = ", ".join(sorted({*methods, "OPTIONS"}))
            return response
        found = self.router.resolve(request.method, path)
        if isinstance(found, list):
            if found:
                raise MethodNotAllowedError(found)
            raise NotFoundError("No such endpoint.")
        route = found.route
        identity = self._authenticate(route, request, runtime)
        if identity is not None:
            set_request_user(identity.user_id)
        ctx = RequestContext(
            request=request, request_id=request_id, identity=identity, path_params=found.params,
            query=_validate(route.query, _query_input(request), "query") if route.query else None,
            body=(_validate(route.body, read_json_body(request), "body")
                  if route.body and route.body_media == "application/json" else None),
            runtime=runtime, function=self.name,
        )
        return to_response(route.handler(ctx), route.status)

    def _methods_for(self, path: str) -> list[str]:
        found = self.router.resolve("OPTIONS", path)
        return found if isinstance(found, list) else [found.route.method]

    @staticmethod
    def _authenticate(route: Route, request: flask.Request, runtime: Runtime) -> Identity | None:
        if route.auth == "none":
            return None
        if route.auth == "service":
            return verify_service_caller(request.headers, runtime.settings.registry,
                                         user_verifier=runtime.token_verifier)
        return runtime.token_verifier.verify(bearer_token(request.headers))

    def _log_access(self, request: flask.Request, response: flask.Response, started: float) -> None:
        context = current_request()
        log_event(
            access_log, "http_request",
            level=logging.WARNING if response.status_code >= 500 else logging.INFO,
            message=f"{request.method} {request.path} {response.status_code}",
            method=request.method, path=request.path, status=response.status_code,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            user_id=context.user_id if context else None,
            streamed=response.is_streamed or None,
        )


def install_problem_fallbacks(app: flask.Flask) -> None:
    """Answer ``app``'s own 404 and 405 (raised by its URL map before any handler runs) as
    problem+json with a request id, like every other error of the function."""
    app.register_error_handler(404, _unrouted)
    app.register_error_handler(405, _unrouted)


def _unrouted(error: Exception) -> flask.Response:
    """The problem+json answer to a request Flask's URL map refused (404, or 405 naming the methods)."""
    request_id = request_id_from(flask.request.headers)
    allowed = getattr(error, "valid_methods", None)
    problem = MethodNotAllowedError(list(allowed)) if allowed else NotFoundError("No such endpoint.")
    response = problem_response(problem, request_id)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _query_input(request: flask.Request) -> dict[str, Any]:
    """Query arguments for validation: repeated keys become lists."""
    return {key: values[0] if len(values) == 1 else values for key, values in request.args.lists()}


def _validate(model: type[pydantic.BaseModel], data: Any, location: str) -> pydantic.BaseModel:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, location) from exc


def to_response(result: Any, default_status: int = 200) -> flask.Response:
    """A handler's result as a response; see the module docstring for the accepted shapes."""
    if isinstance(result, flask.Response):
        return result
    headers: dict[str, str] = {}
    status = default_status
    body = result
    if isinstance(result, tuple):
        if len(result) == 2:
            body, status = result
        elif len(result) == 3:
            body, status, headers = result
        else:
            raise TypeError("a handler returns (body, status) or (body, status, headers)")
    if body is None:
        response = flask.Response(status=status)
        response.headers.update(headers)
        return response
    return json_response(body, status, dict(headers))


def _refuse_body(response: flask.Response) -> None:
    """Answer a too-large request without reading the rest of its body: functions-framework drains
    the body after every non-streamed response (``read_request``), so this answer is streamed, and
    the connection is closed rather than kept for a body nobody will read."""
    data = response.get_data()
    response.response = iter([data])
    response.headers["Content-Length"] = str(len(data))
    response.headers["Connection"] = "close"


def _in_request_scope(body: Iterable[Any], context: RequestLogContext) -> Iterator[Any]:
    """A streamed body that logs with the request's id while it is produced after ``handle`` returned."""
    with request_scope(context):
        yield from body
