"""The system under measurement, on loopback: the embedded PostgreSQL, the PostgREST emulator, the
OpenAI stand-in in its own process, and the functions on one threaded HTTP server (the same server
also serves a bare functions-framework "hello"), once per database transport.

Round trips are counted by the transports the functions receive: a counting Database wraps the real
one, and the OpenAI SDK client's HTTP client counts every request it sends.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.chat_parts import TimingDatabase
from common.db.base import Database
from common.runtime import Runtime
from tests.support.counting import CountingDatabase

FUNCTIONS = ("sessions", "upload", "chat", "usage", "admin")
_ID = re.compile(r"^(vs_|file-|file_|resp_|conv_)|[0-9a-f]{16}")
HELLO_MAIN = 'def hello(request):\n    return "hello"\n'


class RequestCounter:
    """Counts the HTTP requests an httpx client sends, by ``METHOD /path``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> None:
        path = "/".join("{id}" if _ID.search(part) else part for part in request.url.path.split("/"))
        with self._lock:
            self.calls[f"{request.method} {path}"] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Deployment:
    """The functions of one transport: where they are served and the counters of their round trips."""

    transport: str
    base_url: str
    database: CountingDatabase
    openai_requests: RequestCounter
    runtime: Runtime
    timing: TimingDatabase
    chat_model: Any  # common.openai.responses.ChatModel on the same counting client

    def reset_counts(self) -> None:
        self.database.calls.clear()
        self.openai_requests.calls.clear()

    def counts(self) -> dict[str, Any]:
        return {"sql": dict(self.database.calls), "sql_total": self.database.total,
                "openai": dict(self.openai_requests.calls), "openai_total": self.openai_requests.total}


@dataclass
class Stack:
    database_url: str
    standin_url: str
    hello_url: str
    deployments: dict[str, Deployment] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    runtime: Runtime
    counting: CountingDatabase
    timing: TimingDatabase
    requests: RequestCounter
    http_client: httpx.Client
    chat_model: Any


def counting_runtime(database: Database, database_url: str, standin_url: str) -> Built:
    """A function Runtime on ``database`` and the stand-in whose database and OpenAI client count their
    calls (and whose SQL calls are timed); chat turns are not rate limited (the bench sends many per
    minute) and OpenAI calls have the production timeout (the tests' short one is for failing fast)."""
    import openai

    from common.openai import build_gateway
    from common.settings import ChatSettings, OpenAISettings
    from tests.support.functions import make_runtime

    production_timeout = OpenAISettings.__dataclass_fields__["timeout_seconds"].default
    settings = make_runtime(database, database_url, standin_url, chat=ChatSettings(turns_per_minute=10_000),
                            openai_timeout_seconds=production_timeout).settings
    counter = RequestCounter()
    http_client = httpx.Client(event_hooks={"request": [counter]})
    client = openai.OpenAI(api_key=settings.openai.api_key, base_url=settings.openai.base_url,
                           timeout=settings.openai.timeout_seconds, max_retries=settings.openai.max_retries,
                           http_client=http_client)
    timing = TimingDatabase(database)
    counting = CountingDatabase(timing)  # type: ignore[arg-type]  # a Database by shape
    runtime = Runtime(settings, database=counting, openai_factory=lambda s: build_gateway(s.openai, client=client))
    return Built(runtime, counting, timing, counter, http_client, build_gateway(settings.openai, client=client).chat)


def hello_app(directory: Path) -> Any:
    """A bare functions-framework function answering "hello", loaded as the framework loads any."""
    import functions_framework
    import pytest

    source = directory / "hello" / "main.py"
    source.parent.mkdir(parents=True)
    source.write_text(HELLO_MAIN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "path", list(sys.path))
        patch.setitem(sys.modules, "main", types.ModuleType("main"))
        return functions_framework.create_app("hello", str(source))


def _serve(app: Any) -> tuple[str, Any]:
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Not logged: a line per request would cost more than some requests measured."""

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@contextmanager
def running_stack(database_url: str, standin_url: str, emulator_url: str) -> Iterator[Stack]:
    """Serve hello and, per transport, the functions under ``/<transport>/<function>`` on one threaded
    werkzeug server; stops it (and closes the clients) on exit."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from common.db.psycopg_transport import PsycopgDatabase
    from common.db.supabase_transport import SupabaseDatabase
    from tests.support.functions import build_function_app
    from tests.support.users import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY

    databases: dict[str, Database] = {
        "psycopg": PsycopgDatabase(database_url, max_size=8),
        "supabase": SupabaseDatabase(emulator_url, TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY),
    }
    with tempfile.TemporaryDirectory() as scratch:
        mounts: dict[str, Any] = {"/hello": hello_app(Path(scratch))}
        built: dict[str, Built] = {}
        for transport, database in databases.items():
            built[transport] = counting_runtime(database, database_url, standin_url)
            for name in FUNCTIONS:
                app = build_function_app(Path(scratch) / transport, name, built[transport].runtime)
                mounts[f"/{transport}/{name}"] = app
        root = mounts.pop("/hello")
        url, server = _serve(DispatcherMiddleware(root, mounts))
        stack = Stack(database_url=database_url, standin_url=standin_url, hello_url=f"{url}/")
        for transport, b in built.items():
            stack.deployments[transport] = Deployment(transport, f"{url}/{transport}", b.counting, b.requests,
                                                      b.runtime, b.timing, b.chat_model)
        try:
            yield stack
        finally:
            server.shutdown()
            for database in databases.values():
                database.close()
            for b in built.values():
                b.http_client.close()
