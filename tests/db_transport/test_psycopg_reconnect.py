"""The psycopg transport across a database restart: pooled connections the server closed while they
sat idle are replaced before a call uses them, so no request fails for them; a connection lost
while a call is under way fails that call as unavailable (it may or may not have committed, so it is
not repeated)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import psycopg
import pytest

from common.db.base import Identity
from common.db.psycopg_transport import PsycopgDatabase
from common.errors import DatabaseUnavailableError

POOL_SIZE = 4


def _pool_of(url: str, name: str) -> PsycopgDatabase:
    return PsycopgDatabase(psycopg.conninfo.make_conninfo(url, application_name=name), max_size=POOL_SIZE)


def _terminate(url: str, name: str) -> int:
    """Terminate every backend of ``name`` (as a restart or a failover does); returns how many."""
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                                " where application_name = %s", [name]).fetchall())


def _fill_the_pool(db: PsycopgDatabase, service: Identity) -> None:
    """POOL_SIZE calls at once, so the pool holds POOL_SIZE connections, all idle afterwards."""
    with ThreadPoolExecutor(POOL_SIZE) as threads:
        assert all(threads.map(lambda _: db.call("t_sleep", {"p_seconds": Decimal("0.3")}, service),
                               range(POOL_SIZE)))


def test_connections_closed_by_the_server_while_idle_fail_no_call(transport_functions: str,
                                                                  service: Identity) -> None:
    # given a transport whose pool holds four idle connections
    db = _pool_of(transport_functions, "reconnect-idle")
    try:
        _fill_the_pool(db, service)
        # when the server terminates every one of them
        assert _terminate(transport_functions, "reconnect-idle") == POOL_SIZE
        time.sleep(0.2)  # the FATAL message and the close reach the client's sockets
        # then every following call answers, one after the other and at once (none fails for a dead connection)
        assert [db.call("t_whoami", {}, service)["current_user"] for _ in range(POOL_SIZE * 2)] == \
            ["service_role"] * POOL_SIZE * 2
        _fill_the_pool(db, service)
    finally:
        db.close()


def test_a_connection_lost_during_a_call_fails_that_call_as_unavailable(transport_functions: str,
                                                                        service: Identity) -> None:
    # given a call under way
    db = _pool_of(transport_functions, "reconnect-busy")
    try:
        db.call("t_void", {}, service)
        killer = threading.Timer(0.5, _terminate, [transport_functions, "reconnect-busy"])
        killer.start()
        # when the server terminates its connection, then the call is unavailable (503), not repeated
        with pytest.raises(DatabaseUnavailableError):
            db.call("t_sleep", {"p_seconds": Decimal("3")}, service)
        killer.join()
        # and the next call answers on a new connection
        assert db.call("t_whoami", {}, service)["current_user"] == "service_role"
    finally:
        db.close()
