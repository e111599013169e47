"""Faults on demand and a record of every request, so tests can see how clients cope.

A :class:`Fault` matches requests by a regular expression searched in the path after ``/v1`` and,
optionally, the method; for its next ``times`` matches it waits ``delay`` seconds and then drops the
connection, answers an error status (with OpenAI's ``code``, e.g. ``insufficient_quota``), lets the
request through, or lets it through and cuts its event stream right after ``response.created``. A :class:`ProcessingFailure`
makes the next vector-store ingestion (or that of one file) end ``failed``. Both are thread-safe:
the server answers on many threads while a test adds faults from another.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import Headers

PROCESSING_ERROR_CODES = frozenset({"server_error", "unsupported_file", "invalid_file"})
_MAX_RECORDED = 10_000


@dataclass
class Fault:
    """What to do to the next ``times`` requests matching ``path`` (and ``method``, when given)."""

    path: str
    method: str | None = None
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int = 1
    code: str | None = None
    cut_after_created: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.drop and self.status is not None:
            raise ValueError("a fault either drops the connection or answers a status, not both")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if self.code is not None and self.status is None:
            raise ValueError("an error code needs a status")
        if self.cut_after_created and (self.drop or self.status is not None):
            raise ValueError("a stream cut lets the request through: no status, no drop")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self.method = self.method.upper() if self.method else None
        self.pattern = re.compile(self.path)

    def to_json(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        return {"path": self.path, "method": self.method, "status": self.status, "retry_after": self.retry_after,
                "delay": self.delay, "drop": self.drop, "times": self.times, "code": self.code,
                "cut_after_created": self.cut_after_created}


@dataclass(frozen=True)
class ProcessingFailure:
    """Make an ingestion end ``failed`` with ``last_error`` {code, message}; any file when ``file_id`` is None."""

    file_id: str | None
    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in PROCESSING_ERROR_CODES:
            raise ValueError(f"code must be one of {sorted(PROCESSING_ERROR_CODES)}")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received.

    ``path`` is the full path (``/v1/files``), ``query`` the query string's values by name, ``json``
    the parsed JSON body (None for other bodies) and ``headers`` case-insensitive.
    """

    method: str
    path: str
    query: Mapping[str, list[str]]
    json: Any
    headers: Headers

    def to_json(self) -> dict[str, Any]:
        """The request as the control API shows it."""
        return {"method": self.method, "path": self.path, "query": dict(self.query), "json": self.json,
                "headers": dict(self.headers)}


class FaultInjector:
    """The pending faults and processing failures, consumed as requests arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._failures: list[ProcessingFailure] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault``; faults added earlier win when several match the same request."""
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, with one of its uses consumed; None if none matches."""
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method.upper()) and fault.pattern.search(path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def add_processing_failure(self, failure: ProcessingFailure) -> None:
        """Queue a processing failure for the next ingestion (or for ``failure.file_id``'s)."""
        with self._lock:
            self._failures.append(failure)

    def take_processing_failure(self, file_id: str) -> ProcessingFailure | None:
        """The failure aimed at ``file_id``, else the first untargeted one; consumed."""
        with self._lock:
            chosen = next((f for f in self._failures if f.file_id == file_id), None)
            if chosen is None:
                chosen = next((f for f in self._failures if f.file_id is None), None)
            if chosen is not None:
                self._failures.remove(chosen)
            return chosen

    def pending(self) -> list[dict[str, Any]]:
        """The faults still queued, for the control API."""
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def clear(self) -> None:
        """Forget every pending fault and processing failure."""
        with self._lock:
            self._faults.clear()
            self._failures.clear()


class RequestLog:
    """The most recent requests received (bounded, so a long-running local stack does not grow)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: deque[RecordedRequest] = deque(maxlen=_MAX_RECORDED)

    def append(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
