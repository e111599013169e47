"""An RPC-only PostgREST on loopback, for tests of the supabase-py transport (D6).

It does what PostgREST (v12+) and the Supabase gateway do for ``POST /rest/v1/rpc/<fn>``:

- requires an ``apikey`` (a legacy HS256 key signed with the JWT secret) and verifies the bearer JWT
  (HS256, ``exp`` checked, ``role`` required and one of anon/authenticated/service_role; no bearer
  means ``anon``); failures answer 401 ``PGRST301``/``PGRST303`` like PostgREST;
- accepts only the ``public`` profile (``Content-Profile``/``Accept-Profile``, else 406 ``PGRST106``);
- picks the overload of ``public.<fn>`` whose argument names match the body's keys (else 404
  ``PGRST202``), casts each JSON value to the declared type with ``jsonb_to_record`` as PostgREST does,
  and runs it in one transaction after ``set_config`` of ``search_path``, ``role``,
  ``request.jwt.claims``, ``request.method``, ``request.path`` and ``request.headers``; STABLE and
  IMMUTABLE functions run READ ONLY;
- answers the result as JSON (``setof`` as an array, ``void`` as 204) and errors as
  ``{"code","message","details","hint"}`` with PostgREST's SQLSTATE -> HTTP status table.

Not emulated: GET/HEAD RPC, filters on results, an unnamed single json parameter, variadic calls,
``RAISE ... 'PGRST'`` with a JSON message, tables. Faults (``inject_fault``) make the next requests
answer a status with a non-PostgREST body (like a proxy), close the connection without answering,
or wait first.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
_RPC_PREFIX = "/rest/v1/rpc/"

# PostgREST's mapSQLtoHTTP (Error.hs), first match wins; 42501, PTxyz and "anything else" are in code.
_STATUS_RULES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("23503", "23505"), 409), (("25006",), 405), (("42883", "42P01"), 404), (("P0001",), 400),
    (("42P17", "53400", "21000"), 500), (("57P01",), 503),
    (("08", "53"), 503), (("0L", "0P", "28"), 403),
    (("09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "XX", "P0"), 500),
)


def http_status(sqlstate: str, *, with_jwt: bool) -> int:
    """The HTTP status PostgREST answers for a SQLSTATE raised while running a request."""
    if sqlstate == "42501":
        return 403 if with_jwt else 401
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    for prefixes, status in _STATUS_RULES:
        if sqlstate.startswith(prefixes):
            return status
    return 400


class _Reply(Exception):
    """An answer decided before (or instead of) running the function."""

    def __init__(self, status: int, code: str | None, message: str, details: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "details": details, "hint": hint}
        if code is None:  # the gateway's own answers carry no code
            self.body = {"message": message, "hint": hint}


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


def _signature(row: tuple[Any, ...]) -> _Signature:
    read_only, returns_set, returns_void, nargs, ndefaults, names, modes, types = row
    modes = modes or ["i"] * len(types)
    names = list(names) + [""] * (len(types) - len(names))
    inputs = tuple((n, t) for n, m, t in zip(names, modes, types) if m in ("i", "b", "v"))
    required = [n for n, _ in inputs[: nargs - ndefaults]]
    return _Signature(inputs, frozenset(required), all(required), read_only, returns_set, returns_void)


class PostgrestEmulator:
    """A running emulator; ``url`` is the fake ``SUPABASE_URL``; ``calls`` lists the functions requested."""

    def __init__(self, conninfo: str, jwt_secret: str) -> None:
        self._secret = jwt_secret
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=8, kwargs={"autocommit": True},
                                    open=True, name="postgrest-emulator", timeout=10)
        self._signatures: dict[str, list[_Signature]] = {}
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.calls: list[str] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="postgrest-emulator", daemon=True)
        self._thread.start()

    def inject_fault(self, status: int | None = None, *, drop: bool = False, delay: float = 0.0,
                     times: int = 1, function: str | None = None) -> None:
        """Make the next ``times`` requests (to ``function`` only, when given) wait ``delay`` s, then
        drop the connection or answer ``status``."""
        if status is None and not drop and delay <= 0:
            raise ValueError("a fault needs a status, drop=True or a delay")
        with self._lock:
            self._faults.extend([_Fault(status, drop, delay, function)] * times)

    def clear_faults(self) -> None:
        """Forget the faults not yet used."""
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        """Stop serving, close open client connections and the database pool."""
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            for conn in list(self._connections):
                _shutdown_quietly(conn)
        self._server.server_close()  # joins the request threads
        self._thread.join()
        self._pool.close()

    # -- one request -------------------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        path = h.path.split("?", 1)[0]
        function = path[len(_RPC_PREFIX):] if path.startswith(_RPC_PREFIX) else None
        if function is not None:
            self.calls.append(function)
        with self._lock:
            fault = next((f for f in self._faults if f.function in (None, function)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None:
            if fault.delay > 0 and self._stopping.wait(fault.delay):
                return
            if fault.drop:
                h.close_connection = True
                _shutdown_quietly(h.connection)
                return
            if fault.status is not None:
                _send(h, fault.status, b"<html><body>injected fault</body></html>", "text/html")
                return
        headers: dict[str, str] = {}
        try:
            status, payload = self._rpc(h, function, body)
        except _Reply as reply:
            status, payload = reply.status, json.dumps(reply.body).encode()
            if reply.body.get("code"):
                headers["Proxy-Status"] = f"PostgREST; error={reply.body['code']}"
        except Exception as exc:  # a bug in the emulator: answer 500 as PostgREST does, traceback logged
            log.exception("postgrest-emulator: internal error on %s", h.path)
            status, payload = 500, json.dumps(_Reply(500, "PGRSTX00", f"Internal error: {exc}").body).encode()
            headers["Proxy-Status"] = "PostgREST; error=PGRSTX00"
        _send(h, status, payload, "application/json; charset=utf-8", headers)

    def _rpc(self, h: _Handler, function: str | None, body: bytes) -> tuple[int, bytes | None]:
        if h.command != "POST":
            raise _Reply(405, "PGRST117", f"Unsupported HTTP method: {h.command}")
        if not function:
            raise _Reply(404, "PGRST125", f"Invalid path specified in request URL: {h.path}")
        for header in ("Content-Profile", "Accept-Profile"):
            profile = h.headers.get(header)
            if profile is not None and profile != "public":
                raise _Reply(406, "PGRST106", "Invalid schema: " + profile,
                             hint="Only the following schemas are exposed: public")
        role, claims = self._authenticate(h)
        try:
            args = json.loads(body or b"{}")
        except ValueError as exc:
            raise _Reply(400, "PGRST102", "Empty or invalid json", str(exc)) from exc
        if not isinstance(args, dict):
            raise _Reply(400, "PGRST102", "The request body must be a JSON object")
        try:
            signature = self._signature_for(function, frozenset(args))
            with self._pool.connection() as conn:
                return self._run(conn, function, signature, args, role, claims, h)
        except PoolTimeout as exc:
            raise _Reply(504, "PGRST003", "Timed out acquiring connection from connection pool.") from exc
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise _Reply(503, "PGRST001", "Database client error", str(exc)) from exc
            diag = exc.diag
            raise _Reply(http_status(exc.sqlstate, with_jwt=role != "anon"), exc.sqlstate,
                         diag.message_primary or str(exc), diag.message_detail, diag.message_hint) from exc

    def _authenticate(self, h: _Handler) -> tuple[str, dict[str, Any]]:
        apikey = h.headers.get("apikey")
        if not apikey:
            raise _Reply(401, None, "No API key found in request",
                         hint="No `apikey` request header or url param was found.")
        try:
            jwt.decode(apikey, self._secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.InvalidTokenError as exc:
            raise _Reply(401, None, "Invalid API key",
                         hint="Double check your Supabase `anon` or `service_role` API key.") from exc
        authorization = h.headers.get("Authorization")
        if authorization is None:
            return "anon", {"role": "anon"}
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Reply(401, "PGRST301", "Expected a Bearer token in the Authorization header")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.ExpiredSignatureError as exc:
            raise _Reply(401, "PGRST303", "JWT expired") from exc
        except jwt.InvalidTokenError as exc:
            raise _Reply(401, "PGRST301", str(exc) or "JWT could not be decoded") from exc
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            raise _Reply(401, "PGRST303", "JWT has no role claim")
        if role not in API_ROLES:
            raise _Reply(401, "22023", f'role "{role}" does not exist')
        return role, claims

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
                raise _Reply(300, "PGRST203",
                             f"Could not choose the best candidate function between: public.{function}")
        listed = ", ".join(sorted(keys))
        candidates = "; ".join(f"public.{function}({', '.join(n for n, _ in s.inputs)})" for s in cached)
        raise _Reply(404, "PGRST202",
                     f"Could not find the function public.{function}({listed}) in the schema cache",
                     "Searched for the function public." + function + " with parameters " + (listed or "(none)"),
                     f"Perhaps you meant to call the function {candidates}" if candidates else None)

    def _run(self, conn: psycopg.Connection, function: str, signature: _Signature, args: dict[str, Any],
             role: str, claims: dict[str, Any], h: _Handler) -> tuple[int, bytes | None]:
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
        headers = {k.lower(): v for k, v in h.headers.items() if k.lower() not in ("authorization", "apikey")}
        with conn.transaction():
            if signature.read_only:
                conn.execute("set transaction read only")
            conn.execute(
                "select set_config('search_path', 'public', true), set_config('role', %s, true),"
                " set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
                " set_config('request.path', %s, true), set_config('request.headers', %s, true)",
                [role, json.dumps({**claims, "role": role}), h.command, h.path, json.dumps(headers)])
            row = conn.execute(query, [json.dumps(args)]).fetchone()
        if signature.returns_void:
            return 204, None
        return 200, (row[0] if row and row[0] is not None else "null").encode()


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
        self.server.emulator._handle(self)

    do_GET = do_HEAD = do_PATCH = do_PUT = do_DELETE = do_POST  # answered 405 by _rpc

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("postgrest-emulator: " + format, *args)


def _send(h: _Handler, status: int, body: bytes | None, content_type: str,
          headers: dict[str, str] | None = None) -> None:
    try:
        h.send_response(status)
        if body is not None:
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
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


def start_postgrest_emulator(conninfo: str, jwt_secret: str) -> PostgrestEmulator:
    """Serve the emulator on 127.0.0.1 (random port) in a background thread, on the given database."""
    return PostgrestEmulator(conninfo, jwt_secret)
