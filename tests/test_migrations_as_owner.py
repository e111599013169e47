"""Migrations apply as a non-superuser owner, as on Supabase, where ``postgres`` is demoted (no
superuser; createrole, createdb, bypassrls). ``sql/local`` plays Supabase's init scripts and runs as
the superuser; every project file runs as ``db_owner``. (The suite's template database is migrated
the same way, so every other test runs on such a database too.)"""

from __future__ import annotations

import psycopg
import pytest

from common.db.migrate import SQL_DIR, migrate, migration_files
from common.db.psycopg_transport import PsycopgDatabase
from tests.support.postgres import OWNER, PostgresForTests
from tests.support.users import UserFactory


@pytest.fixture(scope="module")
def migrated_as_owner(postgres: PostgresForTests) -> tuple[str, list[str]]:
    url = postgres.empty_database("owner")
    return url, migrate(url, target="local", owner=OWNER)


def test_every_file_applies_as_the_owner(migrated_as_owner: tuple[str, list[str]]) -> None:
    url, applied = migrated_as_owner
    assert applied == [str(path.relative_to(SQL_DIR)) for path in migration_files(True)]
    with psycopg.connect(url) as conn:
        owners = conn.execute(
            "select distinct pg_get_userbyid(c.relowner) from pg_class c"
            " where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)"
            " union select distinct pg_get_userbyid(p.proowner) from pg_proc p"
            " where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)").fetchall()
        attributes = conn.execute("select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls from pg_roles"
                                  " where rolname = %s", [OWNER]).fetchone()
    assert owners == [(OWNER,)]
    assert attributes == (False, True, True, True)


def test_a_second_run_applies_nothing(migrated_as_owner: tuple[str, list[str]]) -> None:
    url, _ = migrated_as_owner
    assert migrate(url, target="local", owner=OWNER) == []


def test_the_api_works_on_the_owners_database(migrated_as_owner: tuple[str, list[str]]) -> None:
    # given a user on the database the owner migrated / when they read their profile through the API
    url, _ = migrated_as_owner
    user = UserFactory(url).create()
    db = PsycopgDatabase(url, max_size=1)
    try:
        profile = db.call("get_my_profile", {}, user.identity)
    finally:
        db.close()
    # then the security definer functions, owned by a non-superuser, did their job
    assert profile["id"] == user.id
