"""Every function on one loopback port, as the local stack serves them, but on the test's database and
stand-in: each function is built by functions-framework from a real ``main.py`` with the test Runtime
(tests/support/functions.py) and mounted under ``/<function>`` (``/registry-refresh``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import threading

import httpx
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from common.http.registry import FUNCTIONS, mount_path
from common.runtime import Runtime
from tests.support.functions import REGISTRY_TOKEN, build_function_app
from tests.support.users import AppUser

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def _root_as_slash(app: WSGIApplication) -> WSGIApplication:
    """A mounted function's root arrives as ``""``; serve it as ``/`` (no 308 on POST /upload)."""
    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)
    return wrapped


def _not_mounted(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no function here"]


class _QuietHandler(WSGIRequestHandler):
    """No access line per request on stderr: the functions log their own, and the battery sends
    thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        del code, size


@dataclass
class Stack:
    """The served functions: ``base`` URL, the server, and helpers to call it as someone."""

    base: str
    server: BaseWSGIServer

    def client(self, token: str | None = None, *, timeout: float = 30.0) -> httpx.Client:
        """An HTTP client of the stack, sending ``token`` as the bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def refresh(self) -> dict[str, Any]:
        """One registry refresh, as the scheduler calls it; raises AssertionError unless it ran."""
        with self.client(REGISTRY_TOKEN, timeout=120) as http:
            answer = http.post("/registry-refresh", json={"trigger": "battery"})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_stack(directory: Path, runtime: Runtime) -> Stack:
    """Build every registered function with ``runtime`` and serve them on a free loopback port."""
    mounts = {mount_path(name): _root_as_slash(build_function_app(directory, name, runtime))
              for name in sorted(FUNCTIONS)}
    server = make_server("127.0.0.1", 0, DispatcherMiddleware(_not_mounted, mounts), threaded=True,
                         request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="battery-stack", daemon=True).start()
    return Stack(base=f"http://127.0.0.1:{server.port}", server=server)


def bearer(user: AppUser) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}
