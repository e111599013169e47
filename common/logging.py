"""Structured logging: one JSON object per line on stdout, in Cloud Logging's format.

:func:`configure_logging` attaches google-cloud-logging's ``StructuredLogHandler`` to the root logger
once per process. Every line carries the current request's id (and user id, once authenticated) from a
``ContextVar`` set by :class:`common.http.FunctionApp`, so concurrent requests on gunicorn threads
never mix their facts. :func:`log_event` writes one structured line with an ``event`` name and fields.

Secrets never reach a log line: request headers are not logged, and :func:`log_event` drops the value
of any field whose name says it holds a credential.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import IO, Any

from common.settings import Settings

__all__ = [
    "RequestLogContext",
    "bind_request",
    "configure_logging",
    "current_request",
    "log_event",
    "request_scope",
    "set_request_user",
    "unbind_request",
]

REDACTED = "[redacted]"
# Field names that hold credentials: "token", "access_token", "api_key", "Authorization", ... but not
# counts such as "input_tokens".
_SECRET_FIELD = re.compile(
    r"(^|[_-])(authorization|token|jwt|secret|password|api_?key|apikey|cookie|credentials?|bearer)($|[_-])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RequestLogContext:
    """The facts of the current request that every log line carries."""

    request_id: str
    function: str | None = None
    user_id: str | None = None

    def fields(self) -> dict[str, str]:
        values = {"request_id": self.request_id, "function": self.function, "user_id": self.user_id}
        return {key: value for key, value in values.items() if value is not None}


_current: contextvars.ContextVar[RequestLogContext | None] = contextvars.ContextVar(
    "docchat_request_log_context", default=None
)


def current_request() -> RequestLogContext | None:
    """The request being served on this thread (or in this context), if any."""
    return _current.get()


def bind_request(context: RequestLogContext) -> contextvars.Token[RequestLogContext | None]:
    """Make ``context`` the current request; hand the returned token to :func:`unbind_request`."""
    return _current.set(context)


def unbind_request(token: contextvars.Token[RequestLogContext | None]) -> None:
    """Restore the request context that was current before :func:`bind_request`."""
    _current.reset(token)


@contextmanager
def request_scope(context: RequestLogContext) -> Iterator[RequestLogContext]:
    """Bind ``context`` for the duration of a ``with`` block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def set_request_user(user_id: str | None) -> None:
    """Record the authenticated user on the current request (no-op outside a request)."""
    context = _current.get()
    if context is not None:
        _current.set(replace(context, user_id=user_id))


class _JsonEncoder(json.JSONEncoder):
    """Log fields as JSON: exact decimals as strings, datetimes in ISO-8601, ids as strings."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return str(o)
        if isinstance(o, (_dt.datetime, _dt.date, _dt.time)):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        return repr(o)


class RequestContextFilter(logging.Filter):
    """Adds the current request's id, function and user id to the record's ``json_fields``."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            existing = getattr(record, "json_fields", None)
            merged = dict(existing) if isinstance(existing, Mapping) else {}
            for key, value in context.fields().items():
                merged.setdefault(key, value)
            record.json_fields = merged
        return True


_configure_lock = threading.Lock()
_HANDLER_NAME = "docchat-structured"


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Attach the structured stdout handler to the root logger once; later calls update its level.

    ``stream`` defaults to ``sys.stdout`` (Cloud Run turns each stdout JSON line into a log entry).
    Returns the handler, so a caller that owns the process (tests, the local stack) can remove it.
    """
    from google.cloud.logging_v2.handlers import StructuredLogHandler

    level = logging.getLevelName(settings.log_level)
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    with _configure_lock:
        handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
        if handler is None:
            handler = StructuredLogHandler(project_id=settings.gcp_project, stream=stream or sys.stdout,
                                           json_encoder_cls=_JsonEncoder)
            handler.set_name(_HANDLER_NAME)
            handler.addFilter(RequestContextFilter())
            root.addHandler(handler)
        elif stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
        root.setLevel(level)
    return handler


def _safe_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (REDACTED if isinstance(value, (str, bytes)) and _SECRET_FIELD.search(key) else value)
            for key, value in fields.items()}


def log_event(logger: logging.Logger, event: str, /, *, level: int = logging.INFO, message: str | None = None,
              **fields: Any) -> None:
    """Write one structured line ``{"event": event, **fields}``; credential-named fields are redacted.

    The current request's id and user id are added here and, for every other line, by the handler's
    filter.
    """
    if not logger.isEnabledFor(level):
        return
    context = _current.get()
    json_fields = {**(context.fields() if context else {}), "event": event, **_safe_fields(fields)}
    logger.log(level, message or event, extra={"json_fields": json_fields})
