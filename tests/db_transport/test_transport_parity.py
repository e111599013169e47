"""Both transports behave the same: each test body runs once over psycopg and once over supabase-py
RPC through the PostgREST emulator, against the same real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from common.db.base import Database, Identity
from common.errors import (
    AlreadyRunningError,
    AppError,
    BudgetExceededError,
    ConflictError,
    DatabaseBusyError,
    DatabaseUnavailableError,
    EmailUnconfirmedError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    UnauthorizedError,
    UserDisabledError,
)

TRANSPORTS = ("psycopg", "supabase")


def test_the_caller_arrives_as_role_and_claims(transport: Database, make_user: Callable[..., Any]) -> None:
    # given a signed-in user
    user = make_user()
    # when the user calls a function that reports who is calling
    result = transport.call("t_whoami", {}, user.identity)
    # then the function runs as role authenticated with the user's claims
    assert result == {"uid": user.id, "sub": user.id, "role": "authenticated",
                      "current_user": "authenticated", "email": user.email}


def test_the_service_role_runs_as_service_role(transport: Database, service: Identity) -> None:
    result = transport.call("t_whoami", {}, service)
    assert result["current_user"] == "service_role"
    assert result["role"] == "service_role"
    assert result["uid"] is None


def test_a_backend_call_runs_as_service_role_for_its_acting_user(transport: Database,
                                                                  make_user: Callable[..., Any]) -> None:
    # given a verified user and a backend-API function taking the acting user as p_user_id
    user = make_user()
    # when the backend calls it for that user
    result = transport.call("t_acting", {"p_note": "hi"}, Identity.backend(user.id))
    # then it runs as service_role with the user's id filled in by the identity
    assert result == {"user_id": user.id, "note": "hi", "current_user": "service_role"}


def test_a_backend_call_refuses_a_hand_passed_user_id(transport: Database, make_user: Callable[..., Any]) -> None:
    user, other = make_user(), make_user()
    with pytest.raises(ValueError, match="acting user"):
        transport.call("t_acting", {"p_user_id": other.id, "p_note": "x"}, Identity.backend(user.id))


def test_jsonb_goes_in_and_comes_out_with_exact_decimals(transport: Database, service: Identity) -> None:
    # given a jsonb argument with exact amounts
    payload = {"amount": Decimal("0.10"), "items": [{"qty": 3, "price": Decimal("19.99")}],
               "note": "naïve – ✓", "nothing": None, "flag": True}
    # when a function computes with it
    result = transport.call("t_echo", {"p_x": payload, "p_factor": Decimal("3")}, service)
    # then the argument arrives as JSON (decimals as strings) and numbers come back as exact Decimals
    assert result["echo"] == {"amount": "0.10", "items": [{"qty": 3, "price": "19.99"}],
                              "note": "naïve – ✓", "nothing": None, "flag": True}
    assert isinstance(result["total"], Decimal)
    assert str(result["total"]) == "0.30"


def test_defaults_may_be_left_out(transport: Database, service: Identity) -> None:
    assert transport.call("t_echo", {"p_x": {"amount": "2.5"}}, service)["total"] == Decimal("2.5")


def test_scalar_arguments_arrive_as_their_declared_types(transport: Database, service: Identity) -> None:
    # given typed scalar arguments: uuid, numeric beyond float precision, jsonb array, timestamptz
    ident = uuid.uuid4()
    at = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    args = {"p_id": ident, "p_amount": Decimal("12345678901234567.8900"), "p_tags": ["a", "b"], "p_at": at}
    # when
    result = transport.call("t_typed", args, service)
    # then every value survives exactly
    assert result["id"] == str(ident)
    assert str(result["amount"]) == "12345678901234567.8900"
    assert result["tags"] == ["a", "b"]
    assert dt.datetime.fromisoformat(result["at"]) == at


def test_a_numeric_result_is_an_exact_decimal(transport: Database, service: Identity) -> None:
    result = transport.call("t_money", {}, service)
    assert isinstance(result, Decimal)
    assert str(result) == "12345678901234567.8900"


def test_a_void_function_returns_none(transport: Database, service: Identity) -> None:
    assert transport.call("t_void", {}, service) is None


SQLSTATES: list[tuple[str, type[AppError]]] = [
    ("DC400", InvalidInputError), ("DC401", UnauthorizedError), ("DC402", BudgetExceededError),
    ("DC403", ForbiddenError), ("DC404", NotFoundError), ("DC409", ConflictError),
    ("DC410", UserDisabledError), ("DC423", AlreadyRunningError), ("DCE03", EmailUnconfirmedError),
    ("DC413", PayloadTooLargeError), ("DCQ13", QuotaExceededError), ("42883", InvalidInputError),
    ("23505", ConflictError), ("23503", ConflictError), ("23502", InvalidInputError),
    ("23514", InvalidInputError), ("22P02", InvalidInputError), ("22003", InvalidInputError),
    ("P0001", InvalidInputError), ("42501", ForbiddenError), ("28000", UnauthorizedError),
    ("08006", DatabaseUnavailableError), ("53300", DatabaseUnavailableError), ("57P01", DatabaseUnavailableError),
    ("57014", DatabaseBusyError), ("55P03", DatabaseBusyError), ("40001", DatabaseBusyError),
    ("40P01", DatabaseBusyError), ("54000", InvalidInputError), ("22007", InvalidInputError),
    ("21000", AppError), ("25006", AppError), ("42P01", AppError), ("XX000", AppError),
]


@pytest.mark.parametrize(("sqlstate", "expected"), SQLSTATES)
def test_every_sqlstate_maps_to_the_same_error(transport: Database, make_user: Callable[..., Any],
                                               sqlstate: str, expected: type[AppError]) -> None:
    # when a function raises the SQLSTATE
    with pytest.raises(AppError) as raised:
        transport.call("t_fail", {"p_code": sqlstate}, make_user().identity)
    # then both transports raise exactly the same error class
    assert type(raised.value) is expected
    if sqlstate.startswith("DC"):  # our own codes carry a message written for the caller
        assert raised.value.detail == f"failure {sqlstate}"


def test_an_invalid_value_for_a_declared_type_is_invalid_input(transport: Database, service: Identity) -> None:
    with pytest.raises(InvalidInputError):
        transport.call("t_typed", {"p_id": "not-a-uuid", "p_amount": "1", "p_tags": []}, service)


def test_a_missing_grant_is_forbidden(transport: Database, make_user: Callable[..., Any], service: Identity) -> None:
    # given a function granted to service_role only
    # when a user calls it, then it is forbidden; the service role may
    with pytest.raises(ForbiddenError):
        transport.call("t_service_only", {}, make_user().identity)
    assert transport.call("t_service_only", {}, service) == "ok"


@pytest.mark.parametrize(("function", "args"), [
    ("t_nope", {}), ("t_echo", {"p_y": 1}), ("t_echo", {}),
    ("t_typed", {"p_id": str(uuid.uuid4()), "p_amount": [1], "p_tags": []}),
])
def test_no_function_matching_the_arguments_is_invalid_input(transport: Database, service: Identity,
                                                             function: str, args: dict[str, Any]) -> None:
    # When no function matches the names and types sent (42883 over psycopg, PGRST202 from PostgREST)
    with pytest.raises(AppError) as raised:
        transport.call(function, args, service)
    # Then both transports answer it as bad input (400), not as a failure of the service
    assert type(raised.value) is InvalidInputError and raised.value.status == 400


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(("function", "args"), [
    ("t_fail", {"p_code": "a\x00b"}), ("t_echo", {"p_x": {"k": ["ok", "\x00"]}}), ("t_echo", {"p_x": {"k\x00": 1}}),
])
def test_a_nul_character_in_any_string_is_invalid_input_before_any_io(
        make_transport: Callable[..., Database], service: Identity, kind: str, function: str,
        args: dict[str, Any]) -> None:
    # Given a transport pointed at a port nobody listens on, so that any I/O would fail otherwise
    port = _closed_port()
    url = (f"host=127.0.0.1 port={port} dbname=postgres user=postgres" if kind == "psycopg"
           else f"http://127.0.0.1:{port}")
    db = make_transport(kind, url=url, timeout_seconds=1)
    try:
        # When a string argument, or a string nested in a list or an object, holds a NUL character
        with pytest.raises(AppError) as raised:
            db.call(function, args, service)
    finally:
        db.close()
    # Then it is refused as bad input naming the argument, before anything was sent
    assert type(raised.value) is InvalidInputError
    assert raised.value.detail == f"Text may not contain NUL characters ({next(iter(args))})."


@pytest.mark.parametrize("args", [{"x": 1}, {"p_X": 1}])
def test_argument_names_are_checked_before_any_io(transport: Database, service: Identity, args: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        transport.call("t_echo", args, service)


def test_a_stable_function_cannot_write(transport: Database, service: Identity) -> None:
    # when a STABLE function writes (nextval), then the call fails as it does behind PostgREST (25006)
    with pytest.raises(AppError) as raised:
        transport.call("t_stable_write", {}, service)
    assert type(raised.value) is AppError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_an_unreachable_database_is_unavailable(make_transport: Callable[..., Database], service: Identity,
                                                kind: str) -> None:
    # given a transport pointed at a port nobody listens on
    port = _closed_port()
    url = (f"host=127.0.0.1 port={port} dbname=postgres user=postgres" if kind == "psycopg"
           else f"http://127.0.0.1:{port}")
    db = make_transport(kind, url=url, timeout_seconds=1)
    # when / then
    try:
        with pytest.raises(DatabaseUnavailableError):
            db.call("t_whoami", {}, service)
    finally:
        db.close()  # stop the pool's background reconnection attempts (and their log lines) now


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_call_slower_than_the_timeout_is_busy(make_transport: Callable[..., Database],
                                                service: Identity, kind: str) -> None:
    # given a transport with a 1 s timeout (psycopg: statement_timeout, 57014; supabase: the read timeout)
    db = make_transport(kind, timeout_seconds=1)
    # when a call takes longer, then it is busy (503 database_busy, Retry-After)
    with pytest.raises(DatabaseBusyError):
        db.call("t_sleep", {"p_seconds": Decimal("3")}, service)
    # and the transport recovers for the next call
    assert db.call("t_sleep", {"p_seconds": Decimal("0")}, service) is True


def test_a_call_marked_read_answers_as_any_call(transport: Database, service: Identity) -> None:
    assert transport.call("t_whoami", {}, service, read=True)["current_user"] == "service_role"


def test_psycopg_refuses_a_read_mark_on_a_volatile_function(make_transport: Callable[..., Database],
                                                            service: Identity) -> None:
    # given a VOLATILE function (it may write), when a call to it is marked read, then it is refused
    # before it runs, so a mislabelled call fails in tests instead of being retried in production
    with pytest.raises(ValueError):
        make_transport("psycopg").call("t_echo", {"p_x": {"amount": "1"}}, service, read=True)
