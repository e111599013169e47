"""The project's one error hierarchy.

Every error a handler may raise on purpose derives from :class:`AppError`, carries a stable machine
``code`` (the ``code`` member of the problem+json body, and the last part of its ``type`` URI) and an
HTTP ``status``. Foreign errors (psycopg, postgrest, openai, PyJWT) are translated where the foreign
call happens (``raise NotFoundError(...) from exc``); the mapping to an HTTP answer happens only in
:func:`common.http.problem.problem_response`.

    AppError (500 internal_error)
    ├── InvalidInputError            400 invalid_input
    │   └── ValidationError          422 validation_failed   (field paths only)
    ├── UnauthorizedError            401 unauthorized
    ├── ForbiddenError               403 forbidden
    │   ├── UserDisabledError        403 user_disabled
    │   └── EmailUnconfirmedError    403 email_unconfirmed    (invitations need a confirmed email)
    ├── NotFoundError                404 not_found
    ├── MethodNotAllowedError        405 method_not_allowed
    ├── ConflictError                409 conflict
    │   ├── IdempotencyInProgressError  409 idempotency_in_progress
    │   └── AlreadyRunningError      409 already_running
    ├── IdempotencyMismatchError     422 idempotency_key_reused
    ├── BudgetExceededError          402 budget_exceeded
    ├── PayloadTooLargeError         413 payload_too_large
    ├── QuotaExceededError           413 quota_exceeded       (the user's documents or bytes are at their limit)
    ├── UnsupportedMediaTypeError    415 unsupported_media_type
    ├── RateLimitedError             429 rate_limited          (carries retry_after seconds: OpenAI's or ours)
    ├── UpstreamError                502 upstream_error        (OpenAI refused a valid request)
    │   └── UpstreamNotFoundError    502 upstream_not_found    (OpenAI no longer has the object)
    ├── UpstreamUnavailableError     503 upstream_unavailable  (OpenAI timeouts, 5xx, connection)
    ├── OpenAIQuotaExhaustedError    503 openai_quota_exhausted (billing quota used up: needs an operator)
    ├── DatabaseUnavailableError     503 database_unavailable
    │   └── DatabaseBusyError        503 database_busy         (a timeout or lock wait; retry shortly)
    ├── AuthUnavailableError         503 auth_unavailable      (the signing keys cannot be fetched)
    └── ConfigurationError           500 configuration_error   (a missing or placeholder setting)
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every deliberate error; ``detail`` is safe to show to the caller."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.title
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(self.detail)

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers this error asks for (e.g. ``Retry-After``)."""
        return {}


class InvalidInputError(AppError):
    status, code, title = 400, "invalid_input", "Invalid input"


class ValidationError(InvalidInputError):
    status, code, title = 422, "validation_failed", "Request validation failed"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(detail or "The request body or query does not match the schema.",
                         extra={"errors": errors})


class UnauthorizedError(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class ForbiddenError(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class UserDisabledError(ForbiddenError):
    code, title = "user_disabled", "This account is disabled"


class EmailUnconfirmedError(ForbiddenError):
    code, title = "email_unconfirmed", "Confirm your email address first"


class NotFoundError(AppError):
    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowedError(AppError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = sorted(allowed)
        super().__init__(f"Allowed methods: {', '.join(self.allowed)}")

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class ConflictError(AppError):
    status, code, title = 409, "conflict", "Conflict"


class IdempotencyInProgressError(ConflictError):
    code, title = "idempotency_in_progress", "A request with this Idempotency-Key is still running"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class AlreadyRunningError(ConflictError):
    code, title = "already_running", "Another run is in progress"


class IdempotencyMismatchError(AppError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key reused with a different request"


class BudgetExceededError(AppError):
    status, code, title = 402, "budget_exceeded", "Monthly budget exhausted"


class PayloadTooLargeError(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class QuotaExceededError(AppError):
    """The upload would take the user past their number of documents or bytes stored. 413 like a
    too-large file, since the request's content is what does not fit, but its own code: deleting
    documents helps, a smaller file may not."""

    status, code, title = 413, "quota_exceeded", "Storage quota reached"


class UnsupportedMediaTypeError(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class RateLimitedError(AppError):
    status, code, title = 429, "rate_limited", "Too many requests, retry later"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(detail, extra=extra)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class UpstreamError(AppError):
    status, code, title = 502, "upstream_error", "The AI provider rejected the request"


class UpstreamNotFoundError(UpstreamError):
    code, title = "upstream_not_found", "The AI provider no longer has this object"


class UpstreamUnavailableError(AppError):
    status, code, title = 503, "upstream_unavailable", "The AI provider is unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class OpenAIQuotaExhaustedError(AppError):
    """OpenAI answered 429 ``insufficient_quota``: retrying will not help until billing is fixed."""

    status, code, title = 503, "openai_quota_exhausted", "The AI provider's quota for this service is used up"


class DatabaseUnavailableError(AppError):
    status, code, title = 503, "database_unavailable", "The database is unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class DatabaseBusyError(DatabaseUnavailableError):
    """The database is reachable but did not finish in time: a statement or lock timeout, a
    serialization failure or deadlock, or the Supabase edge timing out (520/522/524)."""

    status, code, title = 503, "database_busy", "The database is busy, retry shortly"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class AuthUnavailableError(AppError):
    status, code, title = 503, "auth_unavailable", "The identity provider is unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class ConfigurationError(AppError):
    status, code, title = 500, "configuration_error", "The service is misconfigured"


# Stable codes raised by the SQL functions (SQLSTATE class "DC"), mapped in common.db.errors. "DC"
# plus an HTTP status is that status's general error; a letter in place of the status's first digit
# names a more specific one (DCE03 email unconfirmed, DCQ13 quota exceeded). DC402 carries
# {spent_usd, reserved_usd, monthly_budget_usd, resets_on} and DC429 {retry_after} as the error's
# JSON detail.
SQL_ERROR_CODES: dict[str, type[AppError]] = {
    "DC400": InvalidInputError,
    "DC401": UnauthorizedError,
    "DC402": BudgetExceededError,
    "DC403": ForbiddenError,
    "DCE03": EmailUnconfirmedError,
    "DC404": NotFoundError,
    "DC409": ConflictError,
    "DC410": UserDisabledError,
    "DC413": PayloadTooLargeError,
    "DCQ13": QuotaExceededError,
    "DC423": AlreadyRunningError,
    "DC429": RateLimitedError,
}
