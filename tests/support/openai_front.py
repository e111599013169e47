"""A loopback server in front of the OpenAI stand-in for failures the stand-in's own faults cannot
make: an account out of quota (429 ``insufficient_quota``, as OpenAI answers it) and a streamed
response cut off mid-answer (the connection dropped after some text deltas). Everything else is
forwarded to the stand-in unchanged."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "host"}
QUOTA_BODY = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}


class OpenAIFront:
    """Forwards ``/v1/...`` to ``target``; :meth:`exhaust_quota` and :meth:`cut_stream_after` arm the
    next ``POST /v1/responses``. ``base_url`` is what an OpenAI client is pointed at."""

    def __init__(self, target_base_url: str) -> None:
        self._target = target_base_url.rstrip("/").removesuffix("/v1")
        self._client = httpx.Client(timeout=30)
        self._lock = threading.Lock()
        self._armed: list[tuple[str, int]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    def exhaust_quota(self) -> None:
        """The next response create answers 429 insufficient_quota."""
        with self._lock:
            self._armed.append(("quota", 0))

    def cut_stream_after(self, deltas: int) -> None:
        """The next streamed response create is cut after ``deltas`` (at least 1) text deltas."""
        with self._lock:
            self._armed.append(("cut", deltas))

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._client.close()

    def _take(self, request: Request) -> tuple[str, int] | None:
        if request.method != "POST" or request.path != "/v1/responses":
            return None
        with self._lock:
            return self._armed.pop(0) if self._armed else None

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        armed = self._take(request)
        if armed and armed[0] == "quota":
            return Response(json.dumps(QUOTA_BODY), status=429, mimetype="application/json")(environ, start_response)
        upstream = self._client.send(self._client.build_request(
            request.method, self._target + request.full_path.rstrip("?"), content=request.get_data(),
            headers={k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}), stream=True)
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
        start_response(f"{upstream.status_code} {upstream.reason_phrase}", headers)
        if armed and armed[0] == "cut":
            return self._cut(upstream, armed[1], environ.get("werkzeug.socket"))
        return self._relay(upstream)

    @staticmethod
    def _relay(upstream: httpx.Response) -> Iterator[bytes]:
        try:
            yield from upstream.iter_raw()
        finally:
            upstream.close()

    @staticmethod
    def _cut(upstream: httpx.Response, deltas: int, connection: socket.socket | None) -> Iterator[bytes]:
        seen = 0
        try:
            for line in upstream.iter_lines():
                yield (line + "\n").encode()
                if line.startswith("event: response.output_text.delta"):
                    seen += 1
                if not line and seen >= deltas:
                    break
        finally:
            upstream.close()
        if connection is not None:
            connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("stream cut by the test front")
