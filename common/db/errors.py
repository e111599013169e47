"""Translation of database failures (SQLSTATEs) into the project's errors, for both transports."""

from __future__ import annotations

import logging

from common.errors import (
    SQL_ERROR_CODES,
    AppError,
    ConflictError,
    DatabaseUnavailableError,
    ForbiddenError,
    InvalidInputError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

# SQLSTATEs raised by PostgreSQL itself for bad arguments: the caller sent something invalid.
_INVALID_INPUT_PREFIXES = ("22", "23502", "23514", "42804", "P0001")


def translate_sqlstate(code: str | None, message: str | None, *, function: str) -> AppError:
    """Map a SQLSTATE (or PostgREST code) and its message to an AppError.

    Messages of our own ``DC...`` codes are written for callers; messages of other SQLSTATEs may
    name internals and are not passed on.
    """
    code = code or ""
    if code in SQL_ERROR_CODES:
        return SQL_ERROR_CODES[code](message or None)
    if code == "23505":
        return ConflictError("The resource already exists.")
    if code == "23503":
        return ConflictError("A referenced resource does not exist.")
    if code == "42501":
        return ForbiddenError("Not allowed.")
    if code in ("PGRST301", "PGRST302", "PGRST303", "28000", "28P01"):
        return UnauthorizedError("The database refused the credentials.")
    # Transient: connection loss, resources, shutdown, timeouts, serialization failures and deadlocks.
    if code.startswith(("08", "53", "57P")) or code in ("40001", "40P01", "57014", "PGRST000", "PGRST001", "PGRST002", "PGRST003"):
        return DatabaseUnavailableError()
    if code.startswith(_INVALID_INPUT_PREFIXES) or code == "PGRST102":
        return InvalidInputError(f"Invalid arguments for {function}.")
    log.error("unexpected database error in %s: sqlstate=%s", function, code)
    return AppError(f"Database error in {function}.")
