"""Apply ``sql/`` to a PostgreSQL database, in order, recording what was applied.

Usage: ``python -m common.db.migrate [--target auto|supabase|local]`` with ``DATABASE_URL`` set
(``./deploy.sh migrate``).

Every file in ``sql/`` is written to be re-runnable; a file is (re)applied when it is new or its
content changed, each in its own transaction, under an advisory lock so two migrators cannot
interleave. The target decides whether ``sql/local/`` (what Supabase provides: schema ``auth``, its
helper functions and the API roles) is applied first:

- ``supabase``: never; the project's own ``auth`` schema must exist;
- ``local``: always; refused on a database whose ``auth`` schema that file did not create, so a real
  Supabase project's can never be overwritten;
- ``auto`` (the default): ``supabase`` when an ``auth`` schema made by someone else exists, else
  ``local`` (a plain PostgreSQL, or one the local emulation was applied to before).

With ``owner`` (``--owner ROLE``), the connection must be a superuser's: ``sql/local/`` runs as that
superuser (as Supabase runs its own init scripts) and everything else as ``owner``, a role without
superuser like Supabase's ``postgres``, so the project's migrations are proven to need no more than a
Supabase project grants them.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LOCAL_MARKER = "docchat local emulation of Supabase"
_LOCK_KEY = 7_311_204_101

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """A migration could not be applied; the message names the file."""


def migration_files(local: bool) -> list[Path]:
    files = sorted(SQL_DIR.glob("*.sql"))
    if local:
        files = sorted((SQL_DIR / "local").glob("*.sql")) + files
    return files


def _ensure_bookkeeping(conn: psycopg.Connection) -> None:
    conn.execute("create schema if not exists private")
    conn.execute(
        "create table if not exists private.schema_migrations ("
        " filename text primary key, sha256 text not null, applied_at timestamptz not null default now())"
    )


def detect_target(conn: psycopg.Connection) -> str:
    """``supabase`` when an ``auth`` schema the local emulation did not create exists, else ``local``."""
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'auth'"
    ).fetchone()
    return "supabase" if row is not None and row[0] != LOCAL_MARKER else "local"


def _resolve_target(conn: psycopg.Connection, requested: str) -> str:
    found = detect_target(conn)
    if requested == "auto":
        return found
    if requested == "local" and found == "supabase":
        raise MigrationError(
            "refusing --target local: this database already has an 'auth' schema that the local emulation did "
            "not create (a real Supabase project?)"
        )
    if requested == "supabase" and found == "local":
        raise MigrationError("--target supabase: this database has no Supabase 'auth' schema")
    return requested


def _act_as(conn: psycopg.Connection, role: str | None) -> None:
    """``set role`` for the rest of the session (``None``: back to the login role)."""
    if role is None:
        conn.execute("reset role")
    else:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))


def migrate(conninfo: str, *, target: str = "auto", owner: str | None = None) -> list[str]:
    """Apply pending files to ``target`` (auto, supabase or local); return the names applied.

    ``owner``: apply the project's files as this role (see the module docstring). Raises
    MigrationError naming the failing file, or the reason the target is refused."""
    if target not in ("auto", "supabase", "local"):
        raise MigrationError(f"unknown target {target!r}")
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            local = _resolve_target(conn, target) == "local"
            if owner is not None:
                if local:  # the owner role itself comes from sql/local: create it first
                    _apply_local_roles(conn)
                _act_as(conn, owner)
            _ensure_bookkeeping(conn)
            done = dict(conn.execute("select filename, sha256 from private.schema_migrations").fetchall())
            for path in migration_files(local):
                name = str(path.relative_to(SQL_DIR))
                text = path.read_text(encoding="utf-8")
                digest = hashlib.sha256(text.encode()).hexdigest()
                if done.get(name) == digest:
                    continue
                privileged = owner is not None and path.parent.name == "local"
                try:
                    with conn.transaction():
                        if privileged:
                            _act_as(conn, None)
                        conn.execute(text)  # type: ignore[arg-type]  # trusted file from sql/
                        if privileged:
                            _act_as(conn, owner)
                        conn.execute(
                            "insert into private.schema_migrations (filename, sha256) values (%s, %s)"
                            " on conflict (filename) do update set sha256 = excluded.sha256, applied_at = now()",
                            [name, digest],
                        )
                except psycopg.Error as exc:
                    raise MigrationError(f"{name}: {exc}") from exc
                applied.append(name)
                log.info("applied %s", name)
            conn.execute("notify pgrst, 'reload schema'")
        finally:
            if owner is not None:
                _act_as(conn, None)
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied


def _apply_local_roles(conn: psycopg.Connection) -> None:
    """Run ``sql/local/`` once before the bookkeeping exists, so the owner role can own it."""
    for path in migration_files(True):
        if path.parent.name == "local":
            with conn.transaction():
                conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]  # trusted file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owner", default=None,
                        help="apply the project's files as this role (the connection must be a superuser's)")
    parser.add_argument("--target", choices=["auto", "supabase", "local"], default="auto",
                        help="supabase: the project's own auth schema; local: create the Supabase emulation "
                             "(refused on Supabase); auto: decide from the database (default)")
    args = parser.parse_args(argv)
    conninfo = os.environ.get("DATABASE_URL")
    if not conninfo:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with psycopg.connect(conninfo) as conn:
            found = detect_target(conn)
        print(f"target: {args.target if args.target != 'auto' else found}"
              + (" (Supabase's auth schema found)" if found == "supabase" else " (Supabase pieces emulated locally)"))
        names = migrate(conninfo, target=args.target, owner=args.owner)
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print(f"{len(names)} migration file(s) applied" + (": " + ", ".join(names) if names else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
