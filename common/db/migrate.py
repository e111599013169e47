"""Apply ``sql/`` to a PostgreSQL database, in order, recording what was applied.

Usage: ``python -m common.db.migrate [--local]`` with ``DATABASE_URL`` set (``./deploy.sh migrate``).

Every file in ``sql/`` is written to be re-runnable; a file is (re)applied when it is new or its
content changed, each in its own transaction, under an advisory lock so two migrators cannot
interleave. ``--local`` first applies ``sql/local/`` (what Supabase provides: schema ``auth``, its
helper functions and the API roles); it refuses to touch a database whose ``auth`` schema was not
created by that file, so it can never overwrite a real Supabase project's.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

import psycopg

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


def _check_local_target(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'auth'"
    ).fetchone()
    if row is not None and row[0] != LOCAL_MARKER:
        raise MigrationError(
            "refusing --local: this database already has an 'auth' schema that the local emulation did not "
            "create (a real Supabase project?)"
        )


def migrate(conninfo: str, *, local: bool = False) -> list[str]:
    """Apply pending files; return the names applied. Raises MigrationError naming the failing file."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            if local:
                _check_local_target(conn)
            _ensure_bookkeeping(conn)
            done = dict(conn.execute("select filename, sha256 from private.schema_migrations").fetchall())
            for path in migration_files(local):
                name = str(path.relative_to(SQL_DIR))
                text = path.read_text(encoding="utf-8")
                digest = hashlib.sha256(text.encode()).hexdigest()
                if done.get(name) == digest:
                    continue
                try:
                    with conn.transaction():
                        conn.execute(text)  # type: ignore[arg-type]  # trusted file from sql/
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
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK_KEY])
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="also create the local Supabase emulation (never on Supabase)")
    args = parser.parse_args(argv)
    conninfo = os.environ.get("DATABASE_URL")
    if not conninfo:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        names = migrate(conninfo, local=args.local)
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print(f"{len(names)} migration file(s) applied" + (": " + ", ".join(names) if names else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
