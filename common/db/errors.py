"""Translation of database failures (SQLSTATEs) into the project's errors, for both transports."""

from __future__ import annotations

import json
import logging
from typing import Any

from common.errors import (
    SQL_ERROR_CODES,
    AppError,
    BudgetExceededError,
    ConflictError,
    DatabaseBusyError,
    DatabaseUnavailableError,
    ForbiddenError,
    InvalidInputError,
    RateLimitedError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

# SQLSTATEs raised by PostgreSQL itself (not our DC class), kept together here.
# Bad arguments: the caller sent something invalid (22007 a malformed date, 22P02 a malformed uuid,
# 23502/23514 a null or a check, 42804 a type mismatch, 54* a value too large for the database).
_INVALID_INPUT_PREFIXES = ("22", "23502", "23514", "42804", "54", "P0001")
# Busy: the statement ran out of time (57014 statement_timeout or a cancel, as Supabase's per-role
# timeouts raise it), a lock wait gave up (55P03 lock_timeout), or it lost a race (40001
# serialization failure, 40P01 deadlock). Safe for the client to retry shortly.
_BUSY = frozenset({"57014", "55P03", "40001", "40P01"})
# Unavailable: connection loss (08*), resources (53*), shutdown (57P*), PostgREST's pool and cache.
_UNAVAILABLE_PREFIXES = ("08", "53", "57P", "PGRST000", "PGRST001", "PGRST002", "PGRST003")
_UNAUTHORIZED = frozenset({"PGRST301", "PGRST302", "PGRST303", "28000", "28P01"})
# No function matches the arguments: 42883 over psycopg, PGRST202 from PostgREST. The names a call
# site passes are fixed in code, so what varies is a value whose type does not fit (a number where
# text is declared, say): the caller's input, answered 400. Logged at WARNING with the function so
# that a missing migration, which looks the same, is visible too.
_NO_MATCHING_FUNCTION = frozenset({"42883", "PGRST202"})


def _detail_object(details: str | None) -> dict[str, Any]:
    """The JSON object a ``DC...`` error carries as its detail (``private.fail_with``), or {}."""
    if not details:
        return {}
    try:
        value = json.loads(details)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _own_error(code: str, message: str | None, details: str | None) -> AppError:
    """An error of our own ``DC...`` codes, with what its JSON detail carries (DC429: retry_after;
    DC402: the budget figures)."""
    detail = _detail_object(details)
    if code == "DC429":
        retry_after = detail.get("retry_after")
        return RateLimitedError(message or None,
                                retry_after=retry_after if isinstance(retry_after, int) and retry_after > 0 else 1)
    if code == "DC402":
        budget = {k: str(detail[k]) for k in ("spent_usd", "reserved_usd", "monthly_budget_usd", "resets_on")
                  if k in detail}
        return BudgetExceededError(message or None, extra=budget)
    return SQL_ERROR_CODES[code](message or None)


def translate_sqlstate(code: str | None, message: str | None, *, function: str,
                       details: str | None = None) -> AppError:
    """Map a SQLSTATE (or PostgREST code), its message and detail to an AppError.

    Messages of our own ``DC...`` codes are written for callers; messages of other SQLSTATEs may
    name internals and are not passed on. ``details`` is psycopg's ``diag.message_detail`` or
    PostgREST's ``details``: the same text on both transports.
    An unexpected code (a bug, such as pg-safeupdate's 21000) is logged at ERROR and becomes a plain 500.
    """
    code = code or ""
    if code in SQL_ERROR_CODES:
        return _own_error(code, message, details)
    if code == "23505":
        return ConflictError("The resource already exists.")
    if code == "23503":
        return ConflictError("A referenced resource does not exist.")
    if code == "42501":
        return ForbiddenError("Not allowed.")
    if code in _UNAUTHORIZED:
        return UnauthorizedError("The database refused the credentials.")
    if code in _BUSY:
        log.warning("database busy in %s: sqlstate=%s", function, code)
        return DatabaseBusyError()
    if code.startswith(_UNAVAILABLE_PREFIXES):
        return DatabaseUnavailableError()
    if code in _NO_MATCHING_FUNCTION:
        log.warning("no function matches the arguments of %s: sqlstate=%s", function, code)
        return InvalidInputError(f"Invalid arguments for {function}.")
    if code.startswith(_INVALID_INPUT_PREFIXES) or code == "PGRST102":
        return InvalidInputError(f"Invalid arguments for {function}.")
    log.error("unexpected database error in %s: sqlstate=%s", function, code)
    return AppError(f"Database error in {function}.")
