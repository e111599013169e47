"""``/_standin``: fault injection, request records and settings over HTTP, for another process.

The same controls as :class:`StandinServer`'s methods, under a prefix OpenAI never uses, so the
local stack or a test in a separate process can drive a running stand-in:

    GET    /_standin/health
    GET    /_standin/faults                 pending faults
    POST   /_standin/faults                 {path, method?, status?, retry_after?, delay?, drop?, times?,
                                             code?, cut_after_created?}
    DELETE /_standin/faults                 clear faults and processing failures
    POST   /_standin/processing_failures    {file_id?, code?, message?}
    GET    /_standin/requests               {"data": [{method, path, query, json, headers}]}
    DELETE /_standin/requests
    GET    /_standin/settings, PUT /_standin/settings   {processing_seconds?, reasoning_share?}
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify

from .errors import invalid_request
from .faults import Fault, ProcessingFailure
from .web import json_body, services

blueprint = Blueprint("standin_control", __name__, url_prefix="/_standin")

DEFAULT_FAILURE_MESSAGE = "The file could not be processed."


@blueprint.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/faults")
def list_faults() -> Response:
    return jsonify({"data": services().faults.pending()})


@blueprint.post("/faults")
def add_fault() -> tuple[Response, int]:
    body = json_body()
    fault = _build(lambda: Fault(
        path=_typed(body, "path", str, required=True), method=_typed(body, "method", str),
        status=_typed(body, "status", int), retry_after=_typed(body, "retry_after", int),
        delay=float(_typed(body, "delay", (int, float)) or 0.0), drop=bool(_typed(body, "drop", bool)),
        times=_typed(body, "times", int) or 1, code=_typed(body, "code", str),
        cut_after_created=bool(_typed(body, "cut_after_created", bool))))
    services().faults.add(fault)
    return jsonify(fault.to_json()), 201


@blueprint.delete("/faults")
def clear_faults() -> Response:
    services().faults.clear()
    return jsonify({"cleared": True})


@blueprint.post("/processing_failures")
def add_processing_failure() -> tuple[Response, int]:
    body = json_body()
    failure = _build(lambda: ProcessingFailure(
        file_id=_typed(body, "file_id", str), code=_typed(body, "code", str) or "unsupported_file",
        message=_typed(body, "message", str) or DEFAULT_FAILURE_MESSAGE))
    services().faults.add_processing_failure(failure)
    return jsonify({"file_id": failure.file_id, "code": failure.code, "message": failure.message}), 201


@blueprint.get("/requests")
def list_requests() -> Response:
    return jsonify({"data": [recorded.to_json() for recorded in services().requests.snapshot()]})


@blueprint.delete("/requests")
def clear_requests() -> Response:
    services().requests.clear()
    return jsonify({"cleared": True})


@blueprint.get("/settings")
def get_settings() -> Response:
    state = services().state
    return jsonify({"processing_seconds": state.processing_seconds, "reasoning_share": state.reasoning_share})


@blueprint.put("/settings")
def put_settings() -> Response:
    body = json_body()
    seconds = _typed(body, "processing_seconds", (int, float))
    share = _typed(body, "reasoning_share", (int, float))
    if seconds is None and share is None:
        raise invalid_request("Give processing_seconds or reasoning_share.", param="processing_seconds",
                              code="missing_required_parameter")
    if seconds is not None and seconds < 0:
        raise invalid_request("processing_seconds must not be negative.", param="processing_seconds")
    if share is not None and not 0 <= share <= 0.99:
        raise invalid_request("reasoning_share must be between 0 and 0.99.", param="reasoning_share")
    state = services().state
    if seconds is not None:
        state.processing_seconds = float(seconds)
    if share is not None:
        state.reasoning_share = float(share)
    return get_settings()


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        if required:
            raise invalid_request(f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise invalid_request(f"Invalid type for '{key}'.", param=key, code="invalid_type")
    return value


def _build(factory: Any) -> Any:
    """Run a constructor that validates with ValueError (or a bad regex), answering 400 on a bad value."""
    try:
        return factory()
    except (ValueError, re.error) as exc:
        raise invalid_request(str(exc)) from exc
