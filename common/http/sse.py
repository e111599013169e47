"""Server-Sent Events for handlers that stream (``text/event-stream``).

:func:`event_stream` turns a source of ``(event name, data)`` pairs into a streamed response. The
source runs to its end on a worker thread whatever the client does: the response relays its events
as they come, sends a ``: keep-alive`` comment when the source is idle for ``heartbeat_seconds``,
and when the client goes away (the server closes the body early) it waits for the source to finish
within the request, so work such as storing an answer is never lost and never left for after the
response (D3). A deliberate error of the source becomes an ``error`` event carrying its problem
object; an unknown one is logged with its traceback and sent as a generic ``internal_error``.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import flask

from common.errors import AppError
from common.http.jsonio import dumps
from common.http.problem import problem_body

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
HEARTBEAT = ": keep-alive\n\n"
_END = object()

Source = Iterator[tuple[str, Any]]


def format_event(name: str, data: Any) -> str:
    """One SSE event: ``event: <name>`` and its data as one line of JSON."""
    return f"event: {name}\ndata: {dumps(data)}\n\n"


def wants_event_stream(request: flask.Request) -> bool:
    """True when the client's ``Accept`` prefers SSE to JSON (a tie, such as ``*/*``, is JSON)."""
    return request.accept_mimetypes.best_match(["application/json", EVENT_STREAM]) == EVENT_STREAM


class _Relay:
    """Runs a source on a thread, handing its events over a queue."""

    def __init__(self, source: Source, request_id: str, finish_seconds: float) -> None:
        self._source = source
        self._request_id = request_id
        self._finish_seconds = finish_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="sse-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._source:
                self._queue.put(item)
        except AppError as error:
            if error.status >= 500:
                log.error("stream failed: %s", error.code, exc_info=error)
            self._queue.put(("error", problem_body(error, self._request_id)))
        except Exception as exc:  # the stream's one place for unknown failures: logged, generic error event
            log.error("unhandled error in a streamed response", exc_info=exc)
            self._queue.put(("error", problem_body(AppError(), self._request_id)))
        finally:
            self._queue.put(_END)

    def events(self, heartbeat_seconds: float) -> Iterator[str]:
        """The encoded events, heartbeats while idle; on early close, waits for the source to end."""
        finished = False
        try:
            while True:
                try:
                    item = self._queue.get(timeout=heartbeat_seconds)
                except queue.Empty:
                    yield HEARTBEAT
                    continue
                if item is _END:
                    finished = True
                    return
                yield format_event(*item)
        finally:
            if not finished:
                self._thread.join(self._finish_seconds)
                if self._thread.is_alive():
                    log.error("a streamed response's work did not finish within %.0f s of the client leaving",
                              self._finish_seconds)


def event_stream(source: Source, *, request_id: str, heartbeat_seconds: float,
                 finish_seconds: float) -> flask.Response:
    """A streamed ``text/event-stream`` response relaying ``source``; see the module docstring."""
    relay = _Relay(source, request_id, finish_seconds)
    relay.start()
    response = flask.Response(relay.events(heartbeat_seconds), status=200, mimetype=EVENT_STREAM)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
