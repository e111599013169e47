"""OpenAI failures translated where they happen (``with translated("operation"):``).

    openai.RateLimitError, insufficient_quota -> OpenAIQuotaExhaustedError (ERROR line, event
                                                 ``openai_quota_exhausted``, which the alerting matches)
    openai.RateLimitError (other 429)        -> RateLimitedError with the server's Retry-After
    APITimeoutError / APIConnectionError,
    InternalServerError (5xx)                -> UpstreamUnavailableError
    BadRequestError / UnprocessableEntity    -> InvalidInputError (the provider refused this input)
    AuthenticationError / PermissionDenied   -> UpstreamError (our key is wrong: logged at ERROR)
    NotFoundError (404)                      -> UpstreamNotFoundError (deletes treat it as done)
    any other APIStatusError                 -> UpstreamError
The OpenAI request id is logged and kept in the error's ``extra``.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

from common.errors import (
    AppError,
    InvalidInputError,
    OpenAIQuotaExhaustedError,
    RateLimitedError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamUnavailableError,
)
from common.logging import log_event

log = logging.getLogger(__name__)


def retry_after_seconds(headers: Any) -> int | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(1, round(float(ms) / 1000))
        except ValueError:
            log.warning("ignoring unparsable retry-after-ms header %r", ms)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0, int(float(value)))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0, int(parsed.timestamp() - time.time())) if parsed else None


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else None
    return (message or exc.message or "request refused")[:500]


def translate(exc: openai.OpenAIError, operation: str) -> AppError:
    """The project's error for an SDK failure (see the table above); logs the quota alert line."""
    request_id = getattr(exc, "request_id", None)
    extra = {"openai_request_id": request_id} if request_id else {}
    if isinstance(exc, openai.RateLimitError) and exc.code == "insufficient_quota":
        # Not a passing limit: the project's billing quota is used up. The alerting matches this event.
        log_event(log, "openai_quota_exhausted", level=logging.ERROR, operation=operation,
                  openai_request_id=request_id)
        return OpenAIQuotaExhaustedError(f"OpenAI quota exhausted during {operation}.", extra=extra)
    if isinstance(exc, openai.RateLimitError):
        return RateLimitedError(f"OpenAI rate limit during {operation}.",
                                retry_after=retry_after_seconds(exc.response.headers), extra=extra)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
        return UpstreamUnavailableError(f"OpenAI {kind} during {operation}.", extra=extra)
    if isinstance(exc, openai.InternalServerError):
        return UpstreamUnavailableError(f"OpenAI failed during {operation} ({exc.status_code}).", extra=extra)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        log.error("OpenAI refused the project's credentials during %s (request %s)", operation, request_id)
        return UpstreamError(f"OpenAI refused the service's credentials during {operation}.", extra=extra)
    if isinstance(exc, openai.NotFoundError):
        return UpstreamNotFoundError(f"OpenAI has no such object ({operation}).", extra=extra)
    if isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return InvalidInputError(f"OpenAI refused the {operation} request: {_provider_message(exc)}", extra=extra)
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"OpenAI answered {exc.status_code} during {operation}.", extra=extra)
    return UpstreamError(f"OpenAI error during {operation}.", extra=extra)


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run an OpenAI call; re-raise its failure as the project's error, logged with the request id."""
    try:
        yield
    except openai.OpenAIError as exc:
        error = translate(exc, operation)
        log.log(logging.INFO if isinstance(error, UpstreamNotFoundError) else logging.WARNING, "openai %s failed: %s (%s, openai_request_id=%s)", operation, error.code,
                    type(exc).__name__, error.extra.get("openai_request_id"))
        raise error from exc
