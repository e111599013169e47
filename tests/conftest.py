"""Shared fixtures: one PostgreSQL per test run, one migrated database per test module, users, and
the database interface over both transports (psycopg directly; supabase-py through the PostgREST
emulator on loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.db.base import Database
from common.db.psycopg_transport import PsycopgDatabase
from tests.support.postgres import PostgresForTests
from tests.support.users import TEST_JWT_SECRET, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, UserFactory


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresForTests]:
    pg = PostgresForTests()
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def database_url(postgres: PostgresForTests, request: pytest.FixtureRequest) -> str:
    return postgres.new_database(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def users(database_url: str) -> UserFactory:
    return UserFactory(database_url)


@pytest.fixture(scope="module")
def psycopg_db(database_url: str) -> Iterator[PsycopgDatabase]:
    db = PsycopgDatabase(database_url, max_size=4, timeout_seconds=10)
    yield db
    db.close()


@pytest.fixture(scope="module")
def postgrest(database_url: str) -> Iterator[object]:
    from tests.support.postgrest_emulator import start_postgrest_emulator

    server = start_postgrest_emulator(database_url, TEST_JWT_SECRET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def supabase_db(postgrest: object) -> Iterator[Database]:
    from common.db.supabase_transport import SupabaseDatabase

    db = SupabaseDatabase(postgrest.url, TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY,  # type: ignore[attr-defined]
                          timeout_seconds=10)
    yield db
    db.close()


@pytest.fixture(scope="module", params=["psycopg", "supabase"])
def db(request: pytest.FixtureRequest) -> Database:
    """The database interface, once per transport: the conformance suite runs on both."""
    return request.getfixturevalue(f"{request.param}_db")


ServerFactory = Callable[..., Any]


@pytest.fixture(scope="module")
def standin_factory() -> Iterator[ServerFactory]:
    """Start OpenAI stand-ins (``start_standin`` keywords); every one is stopped when the module ends."""
    from local.openai_standin import start_standin

    started: list[Any] = []

    def start(**options: Any) -> Any:
        server = start_standin(**options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def standin(standin_factory: ServerFactory) -> Any:
    """The module's OpenAI stand-in on loopback (in memory; files complete as soon as they are read)."""
    return standin_factory()


@pytest.fixture(scope="module")
def runtime(psycopg_db: PsycopgDatabase, database_url: str, standin: Any) -> Iterator[Any]:
    """A function Runtime on the module's database (psycopg) and the module's stand-in."""
    from tests.support.functions import make_runtime

    rt = make_runtime(psycopg_db, database_url, standin.base_url)
    yield rt
    rt.openai.client.close()
