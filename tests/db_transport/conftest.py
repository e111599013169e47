"""Fixtures for the transport conformance tests.

A migrated database of the run's PostgreSQL, a few tiny ``public.t_*``
functions created for these tests and dropped afterwards, the PostgREST emulator on loopback, and one
factory for both transports, so each test body runs once per transport.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest

from common.db.base import Database, Identity
from common.db.psycopg_transport import PsycopgDatabase
from common.db.supabase_transport import SupabaseDatabase
from tests.support.postgres import PostgresForTests
from tests.support.jwt_keys import KeyPair, mint, new_es256_key, new_rs256_key, supabase_claims
from tests.support.postgrest_emulator import ApiKeys, PostgrestEmulator, start_postgrest_emulator
from tests.support.users import TEST_JWT_SECRET, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, anon_key, service_role_key

TRANSPORTS = ("psycopg", "supabase")


@dataclass(frozen=True)
class SignedInUser:
    """A user as the transports see one: an id, an email and a Supabase-shaped access token."""

    id: str
    email: str
    token: str

    @property
    def identity(self) -> Identity:
        return Identity.user(jwt.decode(self.token, options={"verify_signature": False}), self.token)

TEST_FUNCTIONS = """
create sequence public.t_seq;

create function public.t_echo(p_x jsonb, p_factor numeric default 1) returns jsonb
language sql volatile as $$
  select jsonb_build_object('echo', p_x, 'total', (p_x ->> 'amount')::numeric * p_factor)
$$;

create function public.t_typed(p_id uuid, p_amount numeric, p_tags jsonb, p_at timestamptz default null)
returns jsonb language sql immutable as $$
  select jsonb_build_object('id', p_id, 'amount', p_amount, 'tags', p_tags, 'at', p_at)
$$;

create function public.t_money() returns numeric language sql immutable as $$
  select 12345678901234567.8900::numeric
$$;

create function public.t_whoami() returns jsonb language sql stable as $$
  select jsonb_build_object('uid', auth.uid(), 'role', auth.role(), 'current_user', current_user,
                            'email', auth.email(), 'sub', auth.jwt() ->> 'sub')
$$;

create function public.t_acting(p_user_id uuid, p_note text) returns jsonb language sql stable as $$
  select jsonb_build_object('user_id', p_user_id, 'note', p_note, 'current_user', current_user)
$$;

create function public.t_fail(p_code text) returns void language plpgsql as $$
begin
  raise exception 'failure %', p_code using errcode = p_code;
end
$$;

create function public.t_void() returns void language plpgsql as $$
begin
  perform 1;
end
$$;

create function public.t_sleep(p_seconds numeric) returns boolean language plpgsql volatile as $$
begin
  perform pg_sleep(p_seconds);
  return true;
end
$$;

-- STABLE, yet it writes (a sequence): PostgREST runs it READ ONLY, so this must fail.
create function public.t_stable_write() returns bigint language sql stable as $$
  select nextval('public.t_seq')
$$;

create function public.t_settings() returns jsonb language sql stable as $$
  select jsonb_build_object('session_user', session_user, 'current_user', current_user,
                            'statement_timeout', current_setting('statement_timeout'))
$$;

create function public.t_service_only() returns text language sql as $$ select 'ok' $$;
revoke execute on function public.t_service_only() from public, anon, authenticated;
grant execute on function public.t_service_only() to service_role;

grant usage on sequence public.t_seq to authenticated, service_role;
grant execute on function public.t_echo(jsonb, numeric), public.t_typed(uuid, numeric, jsonb, timestamptz),
  public.t_money(), public.t_whoami(), public.t_fail(text), public.t_void(), public.t_sleep(numeric),
  public.t_stable_write() to authenticated, service_role;
grant execute on function public.t_whoami(), public.t_settings(), public.t_sleep(numeric) to anon;
grant execute on function public.t_settings() to authenticated, service_role;
grant execute on function public.t_acting(uuid, text) to service_role;
"""

DROP_TEST_FUNCTIONS = """
drop function if exists public.t_echo(jsonb, numeric), public.t_typed(uuid, numeric, jsonb, timestamptz),
  public.t_money(), public.t_whoami(), public.t_fail(text), public.t_void(), public.t_sleep(numeric),
  public.t_stable_write(), public.t_service_only(), public.t_acting(uuid, text), public.t_settings();
drop sequence if exists public.t_seq;
"""


@pytest.fixture(scope="session")
def transport_pg_url(postgres: PostgresForTests) -> str:
    """A migrated database of the run's one PostgreSQL server, for this package."""
    return postgres.new_database("transport")


@pytest.fixture(scope="session")
def transport_functions(transport_pg_url: str) -> Iterator[str]:
    """The ``public.t_*`` test functions, created once and dropped at the end; yields the database URL."""
    with psycopg.connect(transport_pg_url, autocommit=True) as conn:
        conn.execute(DROP_TEST_FUNCTIONS)
        conn.execute(TEST_FUNCTIONS)  # type: ignore[arg-type]  # constant SQL
    yield transport_pg_url
    with psycopg.connect(transport_pg_url, autocommit=True) as conn:
        conn.execute(DROP_TEST_FUNCTIONS)


# The test project's asymmetric signing keys (its JWKS), as new Supabase projects sign user tokens.
SIGNING_KEYS = (new_es256_key("es256-project"), new_rs256_key("rs256-project"))
PROJECT_KEYS = ApiKeys(TEST_JWT_SECRET, secret_key=TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY,
                       signing_keys=SIGNING_KEYS)


@pytest.fixture(scope="session")
def emulator(transport_functions: str) -> Iterator[PostgrestEmulator]:
    server = start_postgrest_emulator(transport_functions, TEST_JWT_SECRET, keys=PROJECT_KEYS)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


@pytest.fixture(scope="session")
def make_transport(transport_functions: str, emulator: PostgrestEmulator) -> Iterator[Callable[..., Database]]:
    """``make_transport(kind, url=None, timeout_seconds=10, legacy_keys=False, **options)``: a transport,
    closed at the end of the session. The supabase one uses the project's new-style keys, or its
    legacy JWT keys with ``legacy_keys=True``."""
    made: list[PsycopgDatabase | SupabaseDatabase] = []

    def make(kind: str, *, url: str | None = None, timeout_seconds: float = 10.0, legacy_keys: bool = False,
             **options: Any) -> Database:
        db: PsycopgDatabase | SupabaseDatabase
        if kind == "psycopg":
            db = PsycopgDatabase(url or transport_functions, max_size=4, timeout_seconds=timeout_seconds)
        elif kind == "supabase":
            secret, publishable = ((service_role_key(), anon_key()) if legacy_keys
                                   else (TEST_SECRET_KEY, TEST_PUBLISHABLE_KEY))
            db = SupabaseDatabase(url or emulator.url, secret, publishable_key=publishable,
                                  timeout_seconds=timeout_seconds, **options)
        else:
            raise ValueError(f"unknown transport {kind!r}")
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()


@pytest.fixture(scope="session", params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, make_transport: Callable[..., Database]) -> Database:
    """The database interface, once per transport: each test body runs on both."""
    return make_transport(request.param)


@pytest.fixture
def make_user() -> Callable[..., SignedInUser]:
    """``make_user(ttl=3600, secret=..., signing_key=None)``: a signed-in user with a Supabase-shaped
    access token (HS256 with ``secret``, or signed with an asymmetric ``signing_key``)."""

    def make(*, ttl: int = 3600, secret: str = TEST_JWT_SECRET, signing_key: KeyPair | None = None) -> SignedInUser:
        user_id = str(uuid.uuid4())
        email = f"user-{user_id[:8]}@example.test"
        claims = supabase_claims(sub=user_id, email=email, expires_in=ttl)
        token = (mint(signing_key, claims) if signing_key is not None
                 else jwt.encode(claims, secret, algorithm="HS256"))
        return SignedInUser(id=user_id, email=email, token=token)

    return make


@pytest.fixture
def service() -> Identity:
    return Identity.service()
