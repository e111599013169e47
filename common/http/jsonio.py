"""JSON in and out: exact decimals (as strings), ISO-8601 datetimes, pydantic models, and a request
body that is JSON or an error with a stable code."""

from __future__ import annotations

import datetime as _dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any

import flask
import pydantic

from common.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

JSON_CONTENT_TYPE = "application/json"
MAX_JSON_BYTES = 1024 * 1024  # JSON bodies are small; files arrive as multipart on their own routes


def _default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, Decimal):
        # Money is exact (D7): a JSON number would be read back as a binary float.
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """``value`` as compact JSON text; raises TypeError for a value JSON cannot carry."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json(by_alias=True)
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(dumps(value), status=status, mimetype=JSON_CONTENT_TYPE)
    for name, header_value in (headers or {}).items():
        response.headers[name] = header_value
    return response


def _is_json(mimetype: str) -> bool:
    return mimetype == JSON_CONTENT_TYPE or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_body(request: flask.Request) -> Any:
    """The request's JSON body (``{}`` when the body is empty).

    Raises PayloadTooLargeError (413) above :data:`MAX_JSON_BYTES`, UnsupportedMediaTypeError (415)
    for a non-empty body that is not declared JSON, and InvalidInputError (400) for a body that is not
    valid UTF-8 JSON.
    """
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise PayloadTooLargeError(f"A JSON body may hold at most {MAX_JSON_BYTES} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLargeError(f"A JSON body may hold at most {MAX_JSON_BYTES} bytes.")
    if not raw.strip():
        return {}
    if not _is_json(request.mimetype):
        raise UnsupportedMediaTypeError("The request body must be application/json.")
    try:
        return json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError("The request body is not valid JSON.") from exc
