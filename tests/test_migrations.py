"""Migrations: a fresh database gets the whole schema, and running them again changes nothing."""

from __future__ import annotations

import psycopg

from common.db.migrate import MigrationError, migrate
from tests.support.postgres import PostgresForTests

SCHEMA_SNAPSHOT = """
select 'table ' || c.relname || ' rls=' || c.relrowsecurity from pg_class c
  join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'
union all
select 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
  from information_schema.columns where table_schema = 'public'
union all
select 'index ' || indexname || ' ' || indexdef from pg_indexes where schemaname = 'public'
union all
select 'policy ' || tablename || '.' || policyname || ' ' || cmd || ' ' || coalesce(qual, '') from pg_policies where schemaname = 'public'
union all
select 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) || ' definer=' || p.prosecdef || ' acl=' || coalesce(p.proacl::text, '')
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('public', 'private')
union all
select 'view ' || viewname || ' ' || md5(definition) from pg_views where schemaname = 'public'
order by 1
"""


def _snapshot(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(SCHEMA_SNAPSHOT).fetchall()]


def test_migrations_build_the_schema_and_rerunning_changes_nothing(postgres: PostgresForTests) -> None:
    # Given an empty database
    url = postgres.empty_database("mig")
    # When the migrations run twice
    first = migrate(url, target="local")
    before = _snapshot(url)
    second = migrate(url, target="local")
    # Then the second run applies nothing and the schema is identical
    assert "001_schema.sql" in first and "local/000_supabase.sql" in first
    assert second == []
    assert _snapshot(url) == before


def test_reapplying_every_file_leaves_the_same_schema(postgres: PostgresForTests) -> None:
    # Given a migrated database whose record of applied files is lost
    url = postgres.empty_database("mig2")
    migrate(url, target="local")
    before = _snapshot(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate private.schema_migrations")
    # When every file is applied again
    again = migrate(url, target="local")
    # Then each file re-ran and the schema is unchanged (the files are re-runnable)
    assert len(again) >= 5
    assert _snapshot(url) == before


def test_local_emulation_refuses_a_foreign_auth_schema(postgres: PostgresForTests) -> None:
    # Given a database with an auth schema the local emulation did not create (a real Supabase project)
    url = postgres.empty_database("foreign")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema auth")
    # When the local emulation is asked for, the migrator refuses
    try:
        migrate(url, target="local")
    except MigrationError as exc:
        assert "refusing --target local" in str(exc)
    else:
        raise AssertionError("the local target overwrote a foreign auth schema")


SUPABASE_LIKE = """
do $$ begin
  -- Roles are cluster-wide: an earlier test's migration may have created them already.
  if not exists (select 1 from pg_roles where rolname = 'anon') then create role anon nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit; end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls; end if;
end $$;
create schema auth;
create table auth.users (id uuid primary key, email text);
create function auth.uid() returns uuid language sql stable as $$
  select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid $$;
create function auth.jwt() returns jsonb language sql stable as $$
  select nullif(current_setting('request.jwt.claims', true), '')::jsonb $$;
grant usage on schema auth, public to anon, authenticated, service_role;
"""


def test_auto_target_leaves_a_supabase_auth_schema_alone(postgres: PostgresForTests) -> None:
    # Given a database shaped like a Supabase project (its own auth schema and API roles)
    url = postgres.empty_database("supa")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPABASE_LIKE)
        uid_source = conn.execute("select prosrc from pg_proc where proname = 'uid'").fetchone()[0]
    # When the migrator decides the target by itself
    applied = migrate(url)
    # Then it applied the project's files only, and Supabase's auth functions are as they were
    assert applied and not any(name.startswith("local/") for name in applied)
    with psycopg.connect(url) as conn:
        assert conn.execute("select prosrc from pg_proc where proname = 'uid'").fetchone()[0] == uid_source
        assert conn.execute("select obj_description('auth'::regnamespace, 'pg_namespace')").fetchone()[0] is None


def test_auto_target_emulates_supabase_on_a_plain_postgresql(postgres: PostgresForTests) -> None:
    url = postgres.empty_database("plain")
    applied = migrate(url)
    assert applied[0] == "local/000_supabase.sql" and "060_registry.sql" in applied


def test_every_table_has_row_level_security_and_no_function_is_open_to_anon(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        without_rls = conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity").fetchall()
        open_to_anon = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'private') and has_function_privilege('anon', p.oid, 'execute')").fetchall()
        definer_without_path = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'private') and p.prosecdef"
            " and not coalesce(p.proconfig, '{}') @> array['search_path=\"\"']").fetchall()
        plain_views = conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'v'"
            " and not coalesce(c.reloptions, '{}') @> array['security_invoker=true']").fetchall()
    assert without_rls == []
    assert open_to_anon == []
    assert definer_without_path == []
    assert plain_views == []
