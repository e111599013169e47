"""psycopg transport: the local stack, tests, migrations, and production through Supabase's pooler.

Each call is one transaction that sets ``role`` and ``request.jwt.claims`` exactly as PostgREST does,
then calls ``public.<function>(name => value, ...)``. The statements are sent in one pipeline, so a
call costs one network round trip. Prepared statements are disabled (Supavisor transaction mode).

A pooled connection the server has hung up on while it sat idle (a restart, a failover, an idle
timeout, ``pg_terminate_backend``) is found before it is used, by polling its socket (no round
trip), and replaced: a database that is back answers the next call instead of failing it once per
dead connection.
"""

from __future__ import annotations

import json
import select
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from common.db.base import Identity, call_args, check_function_name, to_json_value
from common.db.errors import translate_sqlstate
from common.errors import DatabaseUnavailableError

_VOID_OID = 2278
_SET_CALLER = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('statement_timeout', %s, true)"
)


def _configure(conn: psycopg.Connection) -> None:
    # Money travels as numeric inside jsonb: keep it exact.
    set_json_loads(partial(json.loads, parse_float=Decimal), conn)


def _hung_up(conn: psycopg.Connection) -> bool:
    """Whether the server has spoken on, or closed, this idle connection. Between calls the server
    has nothing to say; a terminated backend sends its FATAL message and closes, so the socket reads
    ready (or reports a hang-up). One poll(2) that does not wait: no round trip. An unexpected
    asynchronous message (a NOTICE) also counts: that healthy connection is replaced, which is cheap."""
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _adapt(value: Any) -> Any:
    """Lists and objects go as jsonb (the SQL API takes arrays as jsonb); scalars as they are."""
    if isinstance(value, (Mapping, list, tuple)):
        return Jsonb(to_json_value(value))
    return value


class PsycopgDatabase:
    """:class:`common.db.base.Database` over a psycopg connection pool, opened on first use."""

    def __init__(self, conninfo: str, *, max_size: int = 4, timeout_seconds: float = 10.0) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._timeout = timeout_seconds
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._read_only: dict[str, bool] = {}

    def _get_pool(self) -> ConnectionPool:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self._conninfo, min_size=1, max_size=self._max_size, timeout=self._timeout,
                        kwargs={"autocommit": True, "prepare_threshold": None,
                                "connect_timeout": max(1, int(self._timeout))},
                        configure=_configure, open=True, name="docchat",
                    )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection the server has not hung up on. A dead one is closed (the pool then
        opens a replacement) and the next is tried: with every connection dead, max_size + 1 tries
        reach a new one; a database that is really down fails as the connect does."""
        pool = self._get_pool()
        for _ in range(self._max_size + 1):
            with pool.connection() as conn:
                if _hung_up(conn):
                    conn.close()
                    continue
                yield conn
                return
        raise DatabaseUnavailableError("Every database connection was closed by the server.")

    def _is_read_only(self, conn: psycopg.Connection, function: str) -> bool:
        """PostgREST runs STABLE and IMMUTABLE functions in a READ ONLY transaction; so does this
        transport, so a function that writes when it should not fails here as in production. Looked
        up once per function and process."""
        if function not in self._read_only:
            row = conn.execute("select bool_and(provolatile <> 'v') from pg_proc"
                               " where proname = %s and pronamespace = 'public'::regnamespace", [function]).fetchone()
            self._read_only[function] = bool(row and row[0])
        return self._read_only[function]

    def call(self, function: str, args: Mapping[str, Any], identity: Identity, *, read: bool = False) -> Any:
        """Call ``public.<function>`` as ``identity`` in one transaction; return its result.

        ``read=True`` is checked against the function's volatility (a call marked read must be
        STABLE or IMMUTABLE), so a mislabelled call fails here before the other transport retries
        a write. Raises ValueError for bad names or a read call to a VOLATILE function; an AppError subclass for every database failure."""
        check_function_name(function)
        args = call_args(args, identity)
        query = sql.SQL("select public.{}({})").format(
            sql.Identifier(function),
            sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(n), sql.Placeholder()) for n in args),
        )
        params = [_adapt(v) for v in args.values()]
        claims = json.dumps(to_json_value(identity.jwt_claims()))
        timeout_ms = str(int(self._timeout * 1000))
        try:
            with self._connection() as conn:
                read_only = self._is_read_only(conn, function)
                if read and not read_only:
                    raise ValueError(f"{function} is VOLATILE: a call to it cannot be marked read")
                with conn.pipeline(), conn.transaction():
                    if read_only:
                        conn.execute("set transaction read only")
                    conn.execute(_SET_CALLER, [identity.role, claims, timeout_ms])
                    cur = conn.execute(query, params)
                row = cur.fetchone()
                void = cur.description is not None and cur.description[0].type_code == _VOID_OID
        except PoolTimeout as exc:
            raise DatabaseUnavailableError("No database connection available.") from exc
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise DatabaseUnavailableError() from exc
            raise translate_sqlstate(exc.sqlstate, exc.diag.message_primary, function=function,
                                     details=exc.diag.message_detail) from exc
        return None if void or not row else row[0]
