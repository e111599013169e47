"""CORS for the configured frontend origins (D9; Cloud Run adds none).

Preflights are answered before authentication (browsers send no credentials on them). An origin that
is not configured gets no CORS headers at all, so the browser refuses the response. ``*`` in
``CORS_ORIGINS`` allows any origin (tokens travel in ``Authorization``, never in cookies, so no
``Allow-Credentials`` is sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import flask

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id")
EXPOSED_HEADERS = ("X-Request-Id", "Retry-After", "Location")
MAX_AGE_SECONDS = 3600


def allowed_origin(request: flask.Request, origins: Sequence[str]) -> str | None:
    """The request's ``Origin`` when it is allowed, else None."""
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return None
    return origin if origin in origins or "*" in origins else None


def is_preflight(request: flask.Request) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)


def add_vary_origin(response: flask.Response) -> None:
    if "Origin" not in response.vary:
        response.vary.add("Origin")


def apply_cors(response: flask.Response, request: flask.Request, origins: Sequence[str]) -> None:
    """Headers for a real (non-preflight) response."""
    add_vary_origin(response)
    origin = allowed_origin(request, origins)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)


def preflight_response(request: flask.Request, origins: Sequence[str], methods: Iterable[str]) -> flask.Response:
    """204 with the CORS grant when the origin is allowed; 204 without CORS headers otherwise."""
    response = flask.Response(status=204)
    add_vary_origin(response)
    origin = allowed_origin(request, origins)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted({*methods, "OPTIONS"}))
        response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
    return response
