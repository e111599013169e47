"""What only the supabase-py transport does: tokens on the wire, a shared client that per-request
user calls never touch, and HTTP faults of the PostgREST emulator."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from common.db.base import Database, Identity
from common.db.supabase_transport import SupabaseDatabase
from common.errors import AppError, DatabaseBusyError, DatabaseUnavailableError, UnauthorizedError
from tests.db_transport.conftest import SIGNING_KEYS
from tests.support.postgrest_emulator import PostgrestEmulator
from tests.support.users import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY


@pytest.fixture
def supabase(make_transport: Callable[..., Database]) -> SupabaseDatabase:
    db = make_transport("supabase")
    assert isinstance(db, SupabaseDatabase)
    return db


def test_user_calls_from_many_threads_leave_the_shared_client_untouched(
        supabase: SupabaseDatabase, make_user: Callable[..., Any], service: Identity) -> None:
    # given the shared client as built for the service role
    rest_headers = dict(supabase.client.postgrest.headers)
    option_headers = dict(supabase.client.options.headers)
    assert rest_headers["authorization"] == f"Bearer {TEST_SECRET_KEY}"
    users = [make_user() for _ in range(8)]
    # when many users call at once on threads sharing the client
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda u: supabase.call("t_whoami", {}, u.identity), users * 5))
    # then each call ran as its own user, and the shared client's headers did not change
    assert [r["uid"] for r in results] == [u.id for u in users * 5]
    assert dict(supabase.client.postgrest.headers) == rest_headers
    assert dict(supabase.client.options.headers) == option_headers
    assert supabase.call("t_whoami", {}, service)["current_user"] == "service_role"


def test_the_client_is_created_once_per_instance(supabase: SupabaseDatabase, service: Identity) -> None:
    client = supabase.client
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: supabase.call("t_void", {}, service), range(8)))
    assert supabase.client is client


def test_a_user_identity_without_its_token_is_a_programming_error(
        supabase: SupabaseDatabase, make_user: Callable[..., Any]) -> None:
    claims = make_user().identity.claims
    with pytest.raises(ValueError):
        supabase.call("t_whoami", {}, Identity.user(claims))


def _refused_tokens(make_user: Callable[..., Any]) -> dict[str, str]:
    return {"expired": make_user(ttl=-60).token,
            "signed with another secret": make_user(secret="another-secret-of-at-least-32-characters!").token,
            "not a JWT": "not.a.jwt"}


@pytest.mark.parametrize("kind", ["expired", "signed with another secret", "not a JWT"])
def test_a_token_the_api_refuses_is_unauthorized(supabase: SupabaseDatabase, make_user: Callable[..., Any],
                                                 kind: str) -> None:
    # given a user identity whose token PostgREST refuses
    identity = Identity.user(make_user().identity.claims, _refused_tokens(make_user)[kind])
    # when / then
    with pytest.raises(UnauthorizedError):
        supabase.call("t_whoami", {}, identity)


@pytest.mark.parametrize("fault", [{"drop": True}, {"status": 503}, {"status": 502}, {"status": 504},
                                   {"status": 429}, {"delay": 2.0}])
def test_gateway_faults_are_unavailable_and_the_next_call_works(
        make_transport: Callable[..., Database], emulator: PostgrestEmulator, service: Identity,
        fault: dict[str, Any]) -> None:
    # given a transport with a short timeout and a fault on the next request
    db = make_transport("supabase", timeout_seconds=0.5)
    emulator.inject_fault(**fault)
    # when / then
    with pytest.raises(DatabaseUnavailableError):
        db.call("t_whoami", {}, service)
    assert db.call("t_whoami", {}, service)["current_user"] == "service_role"


def test_a_proxy_error_page_is_an_internal_error(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                                 service: Identity) -> None:
    emulator.inject_fault(status=500)
    with pytest.raises(AppError) as raised:
        supabase.call("t_whoami", {}, service)
    assert type(raised.value) is AppError


def test_the_emulator_records_each_function_requested(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                                      service: Identity) -> None:
    before = len(emulator.calls)
    supabase.call("t_void", {}, service)
    supabase.call("t_money", {}, service)
    assert emulator.calls[before:] == ["t_void", "t_money"]


def test_close_then_call_opens_a_new_client(make_transport: Callable[..., Database], service: Identity) -> None:
    db = make_transport("supabase")
    assert isinstance(db, SupabaseDatabase)
    first = db.client
    db.close()
    assert db.call("t_whoami", {}, service)["current_user"] == "service_role"
    assert db.client is not first



# --- keys on the wire -----------------------------------------------------------------------------

def test_user_calls_carry_the_publishable_key_and_the_users_token(
        supabase: SupabaseDatabase, emulator: PostgrestEmulator, make_user: Callable[..., Any],
        service: Identity) -> None:
    # given a user and the service role
    user = make_user()
    before = len(emulator.requests)
    # when each calls
    assert supabase.call("t_whoami", {}, user.identity)["uid"] == user.id
    assert supabase.call("t_whoami", {}, service)["current_user"] == "service_role"
    # then the user's call carried the publishable key (least privilege), the service call the secret key
    user_call, service_call = emulator.requests[before:]
    assert (user_call.headers["apikey"], user_call.headers["authorization"]) == (
        TEST_PUBLISHABLE_KEY, f"Bearer {user.token}")
    assert (service_call.headers["apikey"], service_call.headers["authorization"]) == (
        TEST_SECRET_KEY, f"Bearer {TEST_SECRET_KEY}")


@pytest.mark.parametrize("signing_key", SIGNING_KEYS, ids=lambda k: k.algorithm)
def test_asymmetric_user_tokens_reach_the_database_as_their_user(
        supabase: SupabaseDatabase, make_user: Callable[..., Any], signing_key: Any) -> None:
    user = make_user(signing_key=signing_key)
    assert supabase.call("t_whoami", {}, user.identity) == {
        "uid": user.id, "role": "authenticated", "current_user": "authenticated", "email": user.email, "sub": user.id}


def test_the_legacy_jwt_keys_keep_working(make_transport: Callable[..., Database],
                                          make_user: Callable[..., Any], service: Identity) -> None:
    db = make_transport("supabase", legacy_keys=True)
    user = make_user()
    assert db.call("t_whoami", {}, user.identity)["uid"] == user.id
    assert db.call("t_whoami", {}, service)["current_user"] == "service_role"


def test_a_transport_without_both_keys_is_refused() -> None:
    with pytest.raises(ValueError):
        SupabaseDatabase("http://127.0.0.1:9", TEST_SECRET_KEY, publishable_key="")


# --- busy and retries ---------------------------------------------------------------------------

@pytest.mark.parametrize("status", [520, 522, 524])
def test_the_edges_timeouts_are_busy_and_a_write_is_not_repeated(
        supabase: SupabaseDatabase, emulator: PostgrestEmulator, service: Identity, status: int) -> None:
    # given Supabase's edge answering a timeout page once
    emulator.inject_fault(status=status)
    before = len(emulator.calls)
    # when a call that may write meets it, then it is busy (503 database_busy, Retry-After) ...
    with pytest.raises(DatabaseBusyError) as raised:
        supabase.call("t_echo", {"p_x": {"amount": "1"}}, service)
    assert (raised.value.status, raised.value.code, raised.value.headers()) == (503, "database_busy", {"Retry-After": "2"})
    # ... and was sent once: its outcome is unknown, so it is not repeated
    assert emulator.calls[before:] == ["t_echo"]


@pytest.mark.parametrize("fault", [{"status": 520}, {"status": 524}, {"status": 503}, {"drop": True}])
def test_a_read_whose_answer_was_lost_is_retried(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                                 service: Identity, fault: dict[str, Any]) -> None:
    # given one lost answer
    emulator.inject_fault(**fault)
    before = len(emulator.calls)
    # when a read meets it, then the retry answers, and says it is one
    assert supabase.call("t_whoami", {}, service, read=True)["current_user"] == "service_role"
    assert emulator.calls[before:] == ["t_whoami", "t_whoami"]
    assert emulator.requests[-1].headers["x-retry-count"] == "1"


def test_retries_are_bounded(supabase: SupabaseDatabase, emulator: PostgrestEmulator, service: Identity) -> None:
    emulator.inject_fault(status=520, times=5)
    with pytest.raises(DatabaseBusyError):
        supabase.call("t_whoami", {}, service, read=True)
    emulator.clear_faults()
    assert supabase.call("t_whoami", {}, service)["current_user"] == "service_role"


def test_a_dropped_write_is_not_repeated(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                        service: Identity) -> None:
    emulator.inject_fault(drop=True)
    with pytest.raises(DatabaseUnavailableError):
        supabase.call("t_echo", {"p_x": {"amount": "1"}}, service)
    assert supabase.call("t_echo", {"p_x": {"amount": "2"}}, service)["total"] == 2


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_serialization_failure_is_retried_for_any_call(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                                         service: Identity, sqlstate: str) -> None:
    # given a function that always loses the race (PostgreSQL rolled each attempt back)
    before = len(emulator.calls)
    # when called, then it is tried three times in all before the caller hears it is busy
    with pytest.raises(DatabaseBusyError):
        supabase.call("t_fail", {"p_code": sqlstate}, service)
    assert emulator.calls[before:] == ["t_fail"] * 3


def test_a_statement_timeout_is_busy_and_not_retried(supabase: SupabaseDatabase, emulator: PostgrestEmulator,
                                                     service: Identity) -> None:
    before = len(emulator.calls)
    with pytest.raises(DatabaseBusyError):
        supabase.call("t_fail", {"p_code": "57014"}, service, read=True)
    assert emulator.calls[before:] == ["t_fail"]
