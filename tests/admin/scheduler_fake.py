"""A loopback fake of the Cloud Scheduler REST API (``GET /v1/projects/*/locations/*/jobs/*``), for the
real ``google-cloud-scheduler`` client pointed at it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class FakeScheduler:
    """Jobs by resource name, as the API shows them; ``fail_with`` makes every call answer that status."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: int | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.calls.append(f"{request.method} {request.path}")
        name = request.path.removeprefix("/v1/")
        if self.fail_with is not None:
            return self._error(self.fail_with, "INTERNAL")(environ, start_response)
        if request.method != "GET" or name not in self.jobs:
            return self._error(404, "NOT_FOUND")(environ, start_response)
        return Response(json.dumps(self.jobs[name]), mimetype="application/json")(environ, start_response)

    @staticmethod
    def _error(status: int, reason: str) -> Response:
        body = {"error": {"code": status, "message": f"fake scheduler says {reason}", "status": reason}}
        return Response(json.dumps(body), status=status, mimetype="application/json")


class SchedulerServer:
    def __init__(self, fake: FakeScheduler) -> None:
        self.fake = fake
        self._server = make_server("127.0.0.1", 0, fake, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def client(self) -> Any:
        """The real client, REST transport, anonymous credentials, pointed at this server."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.scheduler_v1 import CloudSchedulerClient

        return CloudSchedulerClient(transport="rest", credentials=AnonymousCredentials(),
                                    client_options=ClientOptions(api_endpoint=self.endpoint))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
