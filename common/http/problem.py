"""The one place where errors become HTTP answers: ``application/problem+json`` (RFC 9457).

Body members: ``type`` (``https://docchat.dev/problems/<code>``, stable), ``title``, ``status``,
``detail``, ``code`` (the same stable machine code), ``request_id``, plus the error's ``extra``
members (for example ``errors`` of a validation failure). Headers the error asks for (``Allow``,
``Retry-After``, ``WWW-Authenticate``) are set on the response.
"""

from __future__ import annotations

from typing import Any

import flask
import pydantic

from common.errors import AppError, ValidationError
from common.http.jsonio import dumps

PROBLEM_TYPE_BASE = "https://docchat.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(pydantic.BaseModel):
    """An error (RFC 9457). The code is stable; the type is https://docchat.dev/problems/ + code."""

    model_config = pydantic.ConfigDict(extra="allow")

    type: str = pydantic.Field(examples=[PROBLEM_TYPE_BASE + "not_found"])
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None


def problem_body(error: AppError, request_id: str | None) -> dict[str, Any]:
    """The problem document of ``error``; standard members win over ``extra`` members of the same name."""
    body: dict[str, Any] = dict(error.extra)
    body.update({
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    })
    if request_id:
        body["request_id"] = request_id
    return body


def problem_response(error: AppError, request_id: str | None) -> flask.Response:
    """``error`` as an ``application/problem+json`` response with the headers it asks for."""
    response = flask.Response(dumps(problem_body(error, request_id)), status=error.status,
                              mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in error.headers().items():
        response.headers[name] = value
    return response


def validation_error(exc: pydantic.ValidationError, location: str) -> ValidationError:
    """A 422 that names each failing field (``loc``) and the kind of failure (``type``) only.

    The caller's input values are never echoed: they may be large, personal or secret.
    """
    errors = [{"loc": [location, *error["loc"]], "type": error["type"]}
              for error in exc.errors(include_url=False, include_context=False, include_input=False)]
    return ValidationError(errors)
