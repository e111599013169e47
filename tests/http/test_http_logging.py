"""Structured logging: one handler per process, request facts on every line, credentials redacted."""

from __future__ import annotations

import io
import json
import logging

import flask.testing

from common.logging import RequestLogContext, configure_logging, log_event, request_scope
from common.settings import Settings
from tests.http.conftest import StructuredLog


def test_configure_logging_is_idempotent(settings: Settings, structured_log: StructuredLog) -> None:
    again = io.StringIO()
    handler = configure_logging(settings, stream=again)
    configure_logging(settings)
    ours = [h for h in logging.getLogger().handlers if h is handler]
    assert len(ours) == 1
    assert len([h for h in logging.getLogger().handlers if h.get_name() == handler.get_name()]) == 1
    logging.getLogger("tests.logging").warning("once")
    assert [json.loads(line).get("message") for line in again.getvalue().splitlines()].count("once") == 1


def test_log_event_writes_fields_with_the_request_context_and_redacts_credentials(
        structured_log: StructuredLog) -> None:
    logger = logging.getLogger("tests.logging")
    with request_scope(RequestLogContext(request_id="req-log-1", function="upload", user_id="u-1")):
        log_event(logger, "upload_step", step="vector_store", input_tokens=12, api_key="sk-abc123secret",
                  authorization="Bearer abc.def.ghi", service_token="tok-123456")
    [line] = structured_log.events("upload_step")
    assert line["request_id"] == "req-log-1"
    assert line["function"] == "upload"
    assert line["user_id"] == "u-1"
    assert line["step"] == "vector_store"
    assert line["input_tokens"] == 12
    assert line["api_key"] == line["authorization"] == line["service_token"] == "[redacted]"
    for secret in ("sk-abc123secret", "abc.def.ghi", "tok-123456"):
        assert secret not in structured_log.text


def test_access_line_for_each_request_outside_any_request_scope_afterwards(
        client: flask.testing.FlaskClient, structured_log: StructuredLog) -> None:
    client.get("/boom", headers={"X-Request-Id": "req-a"})
    client.get("/nowhere", headers={"X-Request-Id": "req-b"})
    logging.getLogger("tests.logging").info("after the requests")
    access = structured_log.events("http_request")
    assert [(line["request_id"], line["status"]) for line in access] == [("req-a", 500), ("req-b", 404)]
    assert access[0]["severity"] == "WARNING"
    after = [line for line in structured_log.lines() if line.get("message") == "after the requests"]
    assert after and "request_id" not in after[0]
