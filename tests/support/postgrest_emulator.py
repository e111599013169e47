"""An RPC-only PostgREST on loopback, for tests of the supabase-py transport (D6).

It does what PostgREST (v12-v14) and the Supabase gateway do for ``POST /rest/v1/rpc/<fn>``:

- logs in to the database as ``authenticator`` and, per request, runs one transaction that ``set
  role``s (``set_config('role', ...)``) to the role the request's keys decide, with PostgREST's
  ``request.jwt.claims``, ``request.method``, ``request.path`` and ``request.headers``, and the
  impersonated role's own settings from ``alter role ... set`` (``statement_timeout``: anon 3 s,
  authenticated 8 s), as PostgREST v12+ applies them;
- requires an ``apikey``: a new-style key (``sb_secret_...`` acts as ``service_role``,
  ``sb_publishable_...`` as ``anon``) or a legacy HS256 JWT key; a user JWT in ``Authorization``
  (HS256 with the legacy secret, or ES256/RS256 with a key of the project's JWKS, chosen by ``kid``)
  decides the role; failures answer 401 ``PGRST301``/``PGRST303`` like PostgREST;
- accepts only the ``public`` profile (``Content-Profile``/``Accept-Profile``, else 406 ``PGRST106``);
- picks the overload of ``public.<fn>`` whose argument names match the body's keys (else 404
  ``PGRST202``), casts each JSON value to the declared type with ``jsonb_to_record`` as PostgREST does;
  STABLE and IMMUTABLE functions run READ ONLY;
- answers the result as JSON (``setof`` as an array, ``void`` as 204) and errors as
  ``{"code","message","details","hint"}`` with PostgREST's SQLSTATE -> HTTP status table (a statement
  timeout, 57014, is a 500 with that code).

Two frontends serve the same core: ``http.server`` (HTTP/1.1; ``inject_fault`` makes the next
requests answer a status with a non-PostgREST body like a proxy, close the connection without
answering, or wait first) and, with ``tls=True``, hypercorn over TLS offering HTTP/2 and HTTP/1.1 by
ALPN as Supabase's edge does (no faults there).

Not emulated: GET/HEAD RPC, filters on results, an unnamed single json parameter, variadic calls,
``RAISE ... 'PGRST'`` with a JSON message, tables, pg-safeupdate (see tests/test_safe_update.py).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from tests.support.postgrest_rules import API_ROLES, ApiKeys, Reply, authenticate, http_status

log = logging.getLogger(__name__)

__all__ = ["API_ROLES", "ApiKeys", "PostgrestEmulator", "Request", "http_status", "start_postgrest_emulator"]

LOGIN_ROLE = "authenticator"
_RPC_PREFIX = "/rest/v1/rpc/"

@dataclass(frozen=True)
class Request:
    """One HTTP request as the core sees it, whatever the frontend: header names in lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class _Fault:
    status: int | None
    drop: bool
    delay: float
    function: str | None = None


@dataclass(frozen=True)
class _Signature:
    """One overload of ``public.<fn>``: its input arguments (name, type) and what it returns."""

    inputs: tuple[tuple[str, str], ...]
    required: frozenset[str]
    by_name: bool  # False when a required argument has no name (PostgREST's single-json-body case)
    read_only: bool
    returns_set: bool
    returns_void: bool

    def accepts(self, keys: frozenset[str]) -> bool:
        return self.by_name and self.required <= keys <= {name for name, _ in self.inputs}


_CATALOG_QUERY = """
select p.provolatile in ('s', 'i'), p.proretset, p.prorettype = 'void'::regtype, p.pronargs, p.pronargdefaults,
       coalesce(p.proargnames, array[]::text[]), coalesce(p.proargmodes::text[], array[]::text[]),
       array(select format_type(t.oid, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as t(oid, n) order by n)
from pg_proc p
where p.pronamespace = 'public'::regnamespace and p.proname = %s and p.prokind = 'f'
"""

# The impersonated roles' own settings (``alter role ... set``), as PostgREST v12+ reads them.
_ROLE_SETTINGS_QUERY = """
select r.rolname, s.setconfig
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where r.rolname = any(%s) and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
order by s.setdatabase
"""


def _signature(row: tuple[Any, ...]) -> _Signature:
    read_only, returns_set, returns_void, nargs, ndefaults, names, modes, types = row
    modes = modes or ["i"] * len(types)
    names = list(names) + [""] * (len(types) - len(names))
    inputs = tuple((n, t) for n, m, t in zip(names, modes, types) if m in ("i", "b", "v"))
    required = [n for n, _ in inputs[: nargs - ndefaults]]
    return _Signature(inputs, frozenset(required), all(required), read_only, returns_set, returns_void)


class PostgrestEmulator:
    """A running emulator; ``url`` is the fake ``SUPABASE_URL``; ``calls`` lists the functions requested,
    ``requests`` the requests themselves and ``protocols`` the HTTP versions they came in with."""

    def __init__(self, conninfo: str, keys: ApiKeys, *, tls: bool = False) -> None:
        self.keys = keys
        # Log in as PostgREST does: the authenticator role, which may only `set role` to the API roles.
        login = psycopg.conninfo.make_conninfo(conninfo, user=LOGIN_ROLE)
        self._pool = ConnectionPool(login, min_size=1, max_size=8, kwargs={"autocommit": True},
                                    open=True, name="postgrest-emulator", timeout=10)
        self._signatures: dict[str, list[_Signature]] = {}
        self._role_settings: dict[str, list[tuple[str, str]]] | None = None
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.calls: list[str] = []
        self.requests: list[Request] = []
        self.protocols: list[str] = []
        self._frontend: Any
        if tls:
            from tests.support.h2_frontend import TlsFrontend

            self._frontend = TlsFrontend(self.respond)
            self.url = self._frontend.url
        else:
            self._frontend = None
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.emulator = self
            host, port = self._server.server_address[:2]
            self.url = f"http://{host}:{port}"
            self._thread = threading.Thread(target=self._server.serve_forever, name="postgrest-emulator", daemon=True)
            self._thread.start()

    @property
    def ca_file(self) -> str:
        """The certificate to trust (``SSL_CERT_FILE``) for a TLS emulator."""
        if self._frontend is None:
            raise ValueError("this emulator serves plain HTTP")
        return str(self._frontend.certificate_file)

    def inject_fault(self, status: int | None = None, *, drop: bool = False, delay: float = 0.0,
                     times: int = 1, function: str | None = None) -> None:
        """Make the next ``times`` requests (to ``function`` only, when given) wait ``delay`` s, then
        drop the connection or answer ``status``. HTTP/1.1 frontend only."""
        if status is None and not drop and delay <= 0:
            raise ValueError("a fault needs a status, drop=True or a delay")
        if self._frontend is not None:
            raise ValueError("faults are served by the plain HTTP/1.1 frontend only")
        with self._lock:
            self._faults.extend([_Fault(status, drop, delay, function)] * times)

    def clear_faults(self) -> None:
        """Forget the faults not yet used."""
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        """Stop serving, close open client connections and the database pool."""
        self._stopping.set()
        if self._frontend is not None:
            self._frontend.stop()
        else:
            self._server.shutdown()
            with self._lock:
                for conn in list(self._connections):
                    _shutdown_quietly(conn)
            self._server.server_close()  # joins the request threads
            self._thread.join()
        self._pool.close()

    # -- one request -------------------------------------------------------------------------------

    def _next_fault(self, function: str | None) -> _Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.function in (None, function)), None)
            if fault is not None:
                self._faults.remove(fault)
        return fault

    def _record(self, request: Request, protocol: str) -> None:
        function = _function_of(request.path)
        with self._lock:
            if function is not None:
                self.calls.append(function)
            self.requests.append(request)
            self.protocols.append(protocol)

    def respond(self, request: Request, protocol: str) -> tuple[int, dict[str, str], bytes | None]:
        """Record one request and answer it: status, headers and body (the TLS frontend's entry)."""
        self._record(request, protocol)
        return self._answer(request)

    def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes | None]:
        function = _function_of(request.path)
        headers: dict[str, str] = {}
        try:
            status, payload = self._rpc(request, function)
        except Reply as reply:
            status, payload = reply.status, json.dumps(reply.body).encode()
            if reply.body.get("code"):
                headers["Proxy-Status"] = f"PostgREST; error={reply.body['code']}"
        except Exception as exc:  # a bug in the emulator: answer 500 as PostgREST does, traceback logged
            log.exception("postgrest-emulator: internal error on %s", request.path)
            status, payload = 500, json.dumps(Reply(500, "PGRSTX00", f"Internal error: {exc}").body).encode()
            headers["Proxy-Status"] = "PostgREST; error=PGRSTX00"
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return status, headers, payload

    def _rpc(self, request: Request, function: str | None) -> tuple[int, bytes | None]:
        if request.method != "POST":
            raise Reply(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        if not function:
            raise Reply(404, "PGRST125", f"Invalid path specified in request URL: {request.path}")
        for header in ("content-profile", "accept-profile"):
            profile = request.headers.get(header)
            if profile is not None and profile != "public":
                raise Reply(406, "PGRST106", "Invalid schema: " + profile,
                            hint="Only the following schemas are exposed: public")
        role, claims = authenticate(request.headers, self.keys)
        try:
            args = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise Reply(400, "PGRST102", "Empty or invalid json", str(exc)) from exc
        if not isinstance(args, dict):
            raise Reply(400, "PGRST102", "The request body must be a JSON object")
        try:
            signature = self._signature_for(function, frozenset(args))
            settings = self._settings_for(role)
            with self._pool.connection() as conn:
                return self._run(conn, function, signature, args, role, claims, settings, request)
        except PoolTimeout as exc:
            raise Reply(504, "PGRST003", "Timed out acquiring connection from connection pool.") from exc
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise Reply(503, "PGRST001", "Database client error", str(exc)) from exc
            diag = exc.diag
            message = diag.message_primary or str(exc)
            raise Reply(http_status(exc.sqlstate, with_jwt=role != "anon", message=message), exc.sqlstate,
                        message, diag.message_detail, diag.message_hint) from exc

    def _settings_for(self, role: str) -> list[tuple[str, str]]:
        """``alter role <role> set name = value`` settings (database-specific ones win), cached."""
        with self._lock:
            cached = self._role_settings
        if cached is None:
            loaded: dict[str, dict[str, str]] = {}
            with self._pool.connection() as conn:
                for rolname, config in conn.execute(_ROLE_SETTINGS_QUERY, [sorted(API_ROLES)]).fetchall():
                    for item in config or ():
                        name, _, value = item.partition("=")
                        loaded.setdefault(rolname, {})[name] = value
            cached = {r: sorted(values.items()) for r, values in loaded.items()}
            with self._lock:
                self._role_settings = cached
        return cached.get(role, [])

    def _signature_for(self, function: str, keys: frozenset[str]) -> _Signature:
        for refresh in (False, True):
            with self._lock:
                cached = None if refresh else self._signatures.get(function)
            if cached is None:
                with self._pool.connection() as conn:
                    cached = [_signature(row) for row in conn.execute(_CATALOG_QUERY, [function]).fetchall()]
                with self._lock:
                    self._signatures[function] = cached
            matches = [s for s in cached if s.accepts(keys)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise Reply(300, "PGRST203",
                            f"Could not choose the best candidate function between: public.{function}")
        listed = ", ".join(sorted(keys))
        candidates = "; ".join(f"public.{function}({', '.join(n for n, _ in s.inputs)})" for s in cached)
        raise Reply(404, "PGRST202",
                    f"Could not find the function public.{function}({listed}) in the schema cache",
                    "Searched for the function public." + function + " with parameters " + (listed or "(none)"),
                    f"Perhaps you meant to call the function {candidates}" if candidates else None)

    def _run(self, conn: psycopg.Connection, function: str, signature: _Signature, args: dict[str, Any],
             role: str, claims: dict[str, Any], settings: list[tuple[str, str]],
             request: Request) -> tuple[int, bytes | None]:
        used = [(name, type_) for name, type_ in signature.inputs if name in args]
        call = sql.SQL("public.{}({})").format(
            sql.Identifier(function),
            sql.SQL(", ").join(sql.SQL("{0} => _a.{0}").format(sql.Identifier(n)) for n, _ in used))
        source = sql.SQL("jsonb_to_record(%s::jsonb) as _a({})").format(
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in used)
        ) if used else sql.SQL("(select %s::jsonb) as _a")
        if signature.returns_void:
            query = sql.SQL("select ({})::text from {}").format(call, source)
        elif signature.returns_set:
            query = sql.SQL("select coalesce(json_agg(_r), '[]')::text from {}, lateral {} as _r").format(source, call)
        else:
            query = sql.SQL("select to_json({})::text from {}").format(call, source)
        headers = {k: v for k, v in request.headers.items() if k not in ("authorization", "apikey")}
        with conn.transaction():
            if signature.read_only:
                conn.execute("set transaction read only")
            conn.execute(
                "select set_config('search_path', 'public', true), set_config('role', %s, true),"
                " set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
                " set_config('request.path', %s, true), set_config('request.headers', %s, true)",
                [role, json.dumps({**claims, "role": role}), request.method, request.path, json.dumps(headers)])
            for name, value in settings:
                conn.execute("select set_config(%s, %s, true)", [name, value])
            row = conn.execute(query, [json.dumps(args)]).fetchone()
        if signature.returns_void:
            return 204, None
        return 200, (row[0] if row and row[0] is not None else "null").encode()


def _function_of(path: str) -> str | None:
    path = path.split("?", 1)[0]
    return path[len(_RPC_PREFIX):] if path.startswith(_RPC_PREFIX) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the request threads
    block_on_close = True
    emulator: PostgrestEmulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY every answer waits for the
    # client's delayed ACK (~40 ms), which PostgREST itself does not do.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.emulator._lock:
            self.server.emulator._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.emulator._lock:
            self.server.emulator._connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        emulator = self.server.emulator
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        emulator._record(request, "HTTP/1.1")
        fault = emulator._next_fault(_function_of(self.path))
        if fault is not None:
            if fault.delay > 0 and emulator._stopping.wait(fault.delay):
                return
            if fault.drop:
                self.close_connection = True
                _shutdown_quietly(self.connection)
                return
            if fault.status is not None:
                _send(self, fault.status, {"Content-Type": "text/html"}, b"<html><body>injected fault</body></html>")
                return
        status, headers, payload = emulator._answer(request)
        _send(self, status, headers, payload)

    do_GET = do_HEAD = do_PATCH = do_PUT = do_DELETE = do_POST  # answered 405 by _rpc

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("postgrest-emulator: " + format, *args)


def _send(h: _Handler, status: int, headers: dict[str, str], body: bytes | None) -> None:
    try:
        h.send_response(status)
        if body is not None:
            h.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        if body is not None:
            h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up first (a timeout test): nothing is left to answer.
        log.info("postgrest-emulator: client closed the connection before the answer to %s", h.path)
        h.close_connection = True


def _shutdown_quietly(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed by the peer
        log.debug("postgrest-emulator: socket already closed: %s", exc)


def start_postgrest_emulator(conninfo: str, jwt_secret: str, *, keys: ApiKeys | None = None,
                             tls: bool = False) -> PostgrestEmulator:
    """Serve the emulator on 127.0.0.1 (random port) in a background thread, on the given database
    (logged in as ``authenticator``). ``keys`` default to the test project's (tests.support.users)."""
    if keys is None:
        from tests.support.users import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY

        keys = ApiKeys(jwt_secret, secret_key=TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY)
    return PostgrestEmulator(conninfo, keys, tls=tls)
