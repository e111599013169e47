"""Least privilege: no table, view or sequence of the API schemas is writable by anon or
authenticated, even on top of Supabase's default grants (which the local emulation applies), and
objects created later start closed."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tests.support.postgres import OWNER

WRITABLE_RELATIONS = """
select c.relname || ' ' || r.rolname || ' ' || p.privilege
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  cross join (values ('anon'), ('authenticated')) r(rolname)
  cross join (values ('insert'), ('update'), ('delete'), ('truncate'), ('references'), ('trigger')) p(privilege)
 where n.nspname in ('public', 'private') and c.relkind in ('r', 'v', 'm', 'p', 'f')
   and has_table_privilege(r.rolname, c.oid, p.privilege)
union all
select c.relname || ' ' || r.rolname || ' ' || p.privilege
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  cross join (values ('anon'), ('authenticated')) r(rolname)
  cross join (values ('usage'), ('select'), ('update')) p(privilege)
 where n.nspname in ('public', 'private') and c.relkind = 'S'
   and has_sequence_privilege(r.rolname, c.oid, p.privilege)
order by 1
"""


def test_no_table_or_sequence_is_writable_by_the_user_roles(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        sequences = conn.execute("select count(*) from pg_class where relkind = 'S'"
                                 " and relnamespace = 'public'::regnamespace").fetchone()[0]
        writable = [row[0] for row in conn.execute(WRITABLE_RELATIONS).fetchall()]
    assert sequences >= 3  # usage_logs, registry_runs, audit_log
    assert writable == []


def test_objects_created_later_start_closed(database_url: str) -> None:
    # Given the migrated database, when the migrating role creates a new table with a sequence and a
    # function in public (as a later migration would)
    with psycopg.connect(database_url) as conn:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(OWNER)))
        conn.execute("create table public.later_table (id bigint generated always as identity primary key)")
        conn.execute("create function public.later_function() returns integer language sql as 'select 1'")
        granted = conn.execute(
            "select has_table_privilege(r, 'public.later_table', 'select,insert,update,delete'),"
            " has_sequence_privilege(r, pg_get_serial_sequence('public.later_table', 'id'), 'usage,select,update'),"
            " has_function_privilege(r, 'public.later_function()', 'execute')"
            " from unnest(array['anon', 'authenticated']) r").fetchall()
        conn.rollback()
    # Then neither user role may touch them
    assert granted == [(False, False, False), (False, False, False)]
