"""Errors of the OpenAI stand-in, answered in OpenAI's wire shape.

Every deliberate refusal raises :class:`ApiError`; the server turns it into
``{"error": {"message", "type", "param", "code"}}`` with the error's HTTP status, the way the real
API answers, so the ``openai`` SDK raises the same exception classes it raises in production
(``BadRequestError`` for 400, ``NotFoundError`` for 404, ``RateLimitError`` for 429, ...).

    ApiError                 any status, OpenAI-shaped body
    ├── invalid_request(...) 400 invalid_request_error
    ├── not_found(...)       404 invalid_request_error
    └── error_for_status(..) the body a fault answers with (429 rate limit, 5xx server_error, ...)
"""

from __future__ import annotations

from typing import Any

# The `type` OpenAI puts in its error bodies, by HTTP status (5xx falls back to server_error).
_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "requests",
}

_FAULT_MESSAGES: dict[int, tuple[str, str | None]] = {
    400: ("The request was rejected by an injected fault.", None),
    401: ("Incorrect API key provided.", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", None),
    404: ("The requested resource was not found.", None),
    409: ("The request conflicts with another request.", None),
    429: ("Rate limit reached for requests. Please try again later.", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
    502: ("Bad gateway.", "server_error"),
    503: ("The engine is currently overloaded, please try again later.", "service_unavailable"),
}
# Errors a fault may name by code, answered with OpenAI's own message and type for them.
_FAULT_CODES: dict[str, tuple[str, str]] = {
    "insufficient_quota": ("You exceeded your current quota, please check your plan and billing details.",
                           "insufficient_quota"),
    "rate_limit_exceeded": ("Rate limit reached for requests. Please try again later.", "requests"),
}


class ApiError(Exception):
    """A refusal answered as an OpenAI error body with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error")
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error`` naming the offending parameter."""
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None) -> ApiError:
    """A 404 for an id that does not exist (or no longer does)."""
    return ApiError(404, message, param=param)


def error_for_status(status: int, retry_after: int | None = None, code: str | None = None) -> ApiError:
    """The error a fault answers with: OpenAI's usual message, type and code for ``status`` (or for
    ``code``, e.g. ``insufficient_quota``, which OpenAI answers with 429 and no Retry-After)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if code is not None:
        message, kind = _FAULT_CODES.get(code, ("Injected fault.", _TYPE_BY_STATUS.get(status, "server_error")))
        return ApiError(status, message, type=kind, code=code, headers=headers)
    message, default_code = _FAULT_MESSAGES.get(status, _FAULT_MESSAGES[500] if status >= 500
                                                else ("Injected fault.", None))
    return ApiError(status, message, code=default_code, headers=headers)
