"""Every function on one port, as the local stack serves them (D5).

Each function is built exactly as Cloud Run builds it, with ``functions_framework.create_app`` from
``functions/<name>/main.py`` and the entry point named like the function, and mounted under
``/<function>`` (``registry_refresh`` at ``/registry-refresh``). ``GET /healthz`` answers 200
``{"status": "ok"}`` once the stack says it is ready, 503 before.

``POST /upload`` reaches the function as-is: a mounted function's root arrives with an empty path,
which Flask would answer with a 308 redirect to ``/upload/`` (clients do not follow it on POST), so
the empty path is served as ``/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server

from common.http.registry import mount_path

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["discover_functions", "make_local_app", "make_local_server", "serve", "serve_in_thread"]


def discover_functions(root: Path) -> dict[str, Path]:
    """``name -> functions/<name>/main.py`` for every function directory under ``root``."""
    return {path.parent.name: path for path in sorted((root / "functions").glob("*/main.py"))}


def _json(start_response: StartResponse, status: str, body: Mapping[str, Any],
          content_type: str = "application/json") -> list[bytes]:
    payload = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
    return [payload]


def _root_app(ready: Callable[[], bool]) -> WSGIApplication:
    """``/healthz``, and a problem+json 404 for any path no function is mounted at."""
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            if ready():
                return _json(start_response, "200 OK", {"status": "ok"})
            return _json(start_response, "503 Service Unavailable", {"status": "starting"})
        return _json(start_response, "404 Not Found", {
            "type": "https://docchat.dev/problems/not_found", "title": "Not found", "status": 404,
            "detail": "No function is mounted at this path.", "code": "not_found",
        }, "application/problem+json")
    return app


def _serve_root_as_slash(app: WSGIApplication) -> WSGIApplication:
    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)
    return wrapped


def make_local_app(functions: Mapping[str, Path], ready: Callable[[], bool]) -> WSGIApplication:
    """One WSGI app serving each ``name -> main.py`` under ``/<name>`` plus ``/healthz``.

    Raises what ``functions_framework.create_app`` raises when a function cannot be loaded, so a
    broken function stops the stack at start rather than at its first request.
    """
    import functions_framework

    mounts: dict[str, WSGIApplication] = {}
    for name, source in sorted(functions.items()):
        app = functions_framework.create_app(target=name, source=str(source), signature_type="http")
        mounts[mount_path(name)] = _serve_root_as_slash(app)
    return DispatcherMiddleware(_root_app(ready), mounts)


def make_local_server(app: WSGIApplication, host: str, port: int) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` (port 0 picks a free one: read ``server.port``)."""
    return make_server(host, port, app, threaded=True)


def serve(app: WSGIApplication, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` until interrupted."""
    server = make_local_server(app, host, port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def serve_in_thread(app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """Start ``app`` on a daemon thread and return the server (``shutdown()`` stops it)."""
    server = make_local_server(app, host, port)
    threading.Thread(target=server.serve_forever, name="local-server", daemon=True).start()
    return server
