"""The stand-in's HTTP server: the Flask app, the fault gate in front of it, and :class:`StandinServer`.

Requests under ``/v1`` pass through :class:`_Gate` first, which records them and applies injected
faults before the app sees them (so a fault can delay, drop the connection or answer an error
without touching any state), then the app checks the bearer key and routes. Every response carries
``x-request-id: req_...``. The server is Werkzeug's threaded server: concurrent requests and SSE
streams work, and it runs in a background thread for tests or in the foreground for the local stack.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, jsonify, request
from werkzeug.datastructures import EnvironHeaders, Headers
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import get_input_stream

from . import control, conversations_api, files_api, responses_api, vector_stores_api
from .errors import ApiError, error_for_status
from .faults import Fault, FaultInjector, ProcessingFailure, RecordedRequest, RequestLog
from .openapi import RequestSchemas, default_document
from .state import State
from .web import EXTENSION_KEY, Services

logger = logging.getLogger(__name__)

API_PREFIX = "/v1"
DEFAULT_DOCUMENT = object()  # StandinServer's openapi_document when not given: see openapi.default_document
MAX_UPLOAD_BYTES = 512 * 1024 * 1024 + 1024 * 1024  # OpenAI's 512 MB per file, plus the multipart framing

# What OpenAI sends on every answer; the stand-in has no limits, so the figures never run down.
RATE_LIMIT_HEADERS = (
    ("x-ratelimit-limit-requests", "10000"), ("x-ratelimit-limit-tokens", "10000000"),
    ("x-ratelimit-remaining-requests", "9999"), ("x-ratelimit-remaining-tokens", "9999000"),
    ("x-ratelimit-reset-requests", "6ms"), ("x-ratelimit-reset-tokens", "6ms"),
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(services: Services) -> Flask:
    """The Flask app serving the OpenAI subset and the ``/_standin`` controls."""
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = services
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    for module in (files_api, vector_stores_api, conversations_api, responses_api, control):
        app.register_blueprint(module.blueprint)

    @app.before_request
    def require_api_key() -> Response | None:
        if not request.path.startswith(API_PREFIX):
            return None
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        _check_against_document(services)
        return None

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
        return jsonify(error.body()), error.status, error.headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        message = f"Invalid URL ({request.method} {request.path})" if status in (404, 405) else error.description
        return jsonify(ApiError(status, message or "").body()), status

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[Response, int]:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error_for_status(500).body()), 500

    return app


def _check_against_document(services: Services) -> None:
    """Validate a JSON body against OpenAI's request schema (when the document is loaded); a body
    that is not JSON is left to the route, which answers it with its own 400."""
    if services.schemas is None or "json" not in (request.content_type or ""):
        return
    raw = request.get_data(cache=True)
    if not raw.strip():
        return
    try:
        body = json.loads(raw)
    except ValueError:
        return
    services.schemas.check(request.method, request.path[len(API_PREFIX):], body)


class _Gate:
    """WSGI middleware: request ids, recording and fault injection in front of the app."""

    def __init__(self, app: WSGIApp, faults: FaultInjector, log: RequestLog, stopping: threading.Event) -> None:
        self.app = app
        self.faults = faults
        self.log = log
        self.stopping = stopping

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = "req_" + secrets.token_hex(16)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers += [("x-request-id", request_id), ("openai-version", "2020-10-01"), *RATE_LIMIT_HEADERS]
            return start_response(status, headers, exc_info)

        path = environ.get("PATH_INFO", "")
        if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
            return self.app(environ, start)
        self.log.append(self._record(environ, path))
        fault = self.faults.take(environ.get("REQUEST_METHOD", "GET"), path[len(API_PREFIX):])
        if fault is not None:
            return self._apply(fault, environ, start)
        return self.app(environ, start)

    def _record(self, environ: dict[str, Any], path: str) -> RecordedRequest:
        body = get_input_stream(environ).read()
        # Give the app a fresh stream over the bytes just read.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        headers = Headers(list(EnvironHeaders(environ).items()))
        parsed: Any = None
        if "json" in headers.get("Content-Type", "") and body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # the app answers the malformed body with a 400 of its own
        return RecordedRequest(method=environ.get("REQUEST_METHOD", "GET"), path=path,
                               query=parse_qs(environ.get("QUERY_STRING", "")), json=parsed, headers=headers)

    def _apply(self, fault: Fault, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if fault.delay:
            self.stopping.wait(fault.delay)
        if fault.drop:
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                connection.shutdown(socket.SHUT_RDWR)
            # Werkzeug treats a ConnectionError from the app as a dropped connection and answers nothing.
            raise ConnectionAbortedError("connection dropped by an injected fault")
        if fault.cut_after_created:
            return self._cut_after_first_event(self.app(environ, start), environ)
        if fault.status is not None:
            error = error_for_status(fault.status, fault.retry_after, fault.code)
            response = Response(json.dumps(error.body()), status=fault.status, mimetype="application/json",
                                headers=error.headers)
            return response(environ, start)
        return self.app(environ, start)


    @staticmethod
    def _cut_after_first_event(body: Iterable[bytes], environ: dict[str, Any]) -> Iterable[bytes]:
        """Send the first event of a stream (``response.created``), then drop the connection. The
        response itself is already made and stored, as it would be at OpenAI."""
        for chunk in body:
            yield chunk
            if chunk.strip():
                break
        close = getattr(body, "close", None)
        if close is not None:
            close()
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("stream cut by an injected fault")


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to this module's logger at DEBUG instead of Werkzeug's stderr handler."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.DEBUG if type == "info" else logging.WARNING
        logger.log(level, "%s %s", self.address_string(), message % args if args else message)


class StandinServer:
    """A running OpenAI stand-in on ``host:port`` (port 0 picks a free one); see :func:`start_standin`."""

    def __init__(self, data_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 processing_seconds: float = 0.0, openapi_document: Path | None | object = DEFAULT_DOCUMENT,
                 reasoning_share: float | None = None) -> None:
        self.state = State(Path(data_dir) if data_dir is not None else None, processing_seconds=processing_seconds)
        if reasoning_share is not None:
            self.reasoning_share = reasoning_share
        self.faults = FaultInjector()
        self._log = RequestLog()
        self._stopping = threading.Event()
        document = default_document() if openapi_document is DEFAULT_DOCUMENT else openapi_document
        self.schemas = RequestSchemas(Path(document)) if isinstance(document, (str, Path)) else None
        self.app = create_app(Services(self.state, self.faults, self._log, self.schemas))
        gate = _Gate(self.app.wsgi_app, self.faults, self._log, self._stopping)
        self.app.wsgi_app = gate  # type: ignore[method-assign]
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
        self.host = host
        self.port: int = self._server.socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give the SDK as ``base_url``: ``http://HOST:PORT/v1``."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def processing_seconds(self) -> float:
        """How long a newly attached vector store file stays ``in_progress``."""
        return self.state.processing_seconds

    @processing_seconds.setter
    def processing_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("processing_seconds must not be negative")
        self.state.processing_seconds = seconds

    @property
    def reasoning_share(self) -> float:
        """The share of each response's output tokens that is reasoning (0 to 0.99)."""
        return self.state.reasoning_share

    @reasoning_share.setter
    def reasoning_share(self, share: float) -> None:
        if not 0 <= share <= 0.99:
            raise ValueError("reasoning_share must be between 0 and 0.99")
        self.state.reasoning_share = share

    def start(self) -> StandinServer:
        """Serve in a background thread; the socket is already listening."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"openai-standin-{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C), then close the socket."""
        try:
            self._server.serve_forever()
        finally:
            self._stopping.set()
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving, cut short any injected delay and close the listening socket."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and records ----------------------------------------------------------------------

    def inject_fault(self, path: str, *, method: str | None = None, status: int | None = None,
                     retry_after: int | None = None, delay: float = 0.0, drop: bool = False, times: int = 1,
                     code: str | None = None, cut_after_created: bool = False) -> None:
        """Make the next ``times`` requests whose path after ``/v1`` matches the regex ``path`` fail.

        Each waits ``delay`` seconds, then the connection is dropped (``drop``), or an OpenAI-shaped
        error with ``status`` is answered (``code`` names OpenAI's error, e.g. ``insufficient_quota``;
        ``Retry-After`` when ``retry_after`` is given), or the request proceeds (with its event stream
        cut right after the first event when ``cut_after_created``). Raises ValueError for a
        contradictory or out-of-range fault.
        """
        self.faults.add(Fault(path=path, method=method, status=status, retry_after=retry_after, delay=delay,
                              drop=drop, times=times, code=code, cut_after_created=cut_after_created))

    def fail_processing(self, file_id: str | None = None, code: str = "unsupported_file",
                        message: str = control.DEFAULT_FAILURE_MESSAGE) -> None:
        """Make the next vector-store ingestion (of ``file_id``, or of any file) end ``failed``."""
        self.faults.add_processing_failure(ProcessingFailure(file_id=file_id, code=code, message=message))

    def clear_faults(self) -> None:
        """Forget every pending fault and processing failure."""
        self.faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every ``/v1`` request received so far (the most recent 10,000), oldest first."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._log.clear()


def start_standin(data_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                  processing_seconds: float = 0.0, **options: Any) -> StandinServer:
    """Start a stand-in in a background thread (``options``: ``openapi_document``,
    ``reasoning_share``); returns once it is listening."""
    return StandinServer(data_dir=data_dir, host=host, port=port, processing_seconds=processing_seconds,
                         **options).start()
