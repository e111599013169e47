"""supabase-py transport: the SQL function API over PostgREST RPC (the production default).

``POST {SUPABASE_URL}/rest/v1/rpc/<function>`` with the arguments as a JSON object. PostgREST verifies
the bearer token, sets ``role`` and ``request.jwt.claims`` and runs the function in one transaction,
exactly as :mod:`common.db.psycopg_transport` does over a direct connection.

Keys, least privilege first: a user call carries the project's publishable key as ``apikey`` and the
user's own access token as ``Authorization`` (PostgREST runs it as ``authenticated``, so RLS and the
function's grants apply); a service or backend call carries the secret key (``service_role``).

One supabase-py client per instance, created on first use and shared by every request thread. It is
never mutated per request: service-role calls use it as it is; a user call goes through
``client.postgrest.schema("public")``, a new PostgREST client that copies the headers and shares the
HTTP session (postgrest 2.34.1 ``SyncPostgrestClient.schema`` builds the copy with
``headers=dict(self.headers)`` and ``http_client=self.session``), whose ``apikey`` and
``Authorization`` are then set on that copy only.

The shared HTTP client speaks HTTP/1.1 with a connection pool. A sync ``httpx.Client(http2=True)``
shared by threads loses calls (encode/httpx#3072: 71-122 of 3,000 calls at 8 threads against a
loopback HTTP/2 server); HTTP/1.1 gives each in-flight call its own pooled connection and loses
none (tests/db_transport/test_transport_concurrency.py runs 8 threads x 500 calls against a server
that offers HTTP/2).

Failures and retries: nothing is retried unless repeating it is safe. A connection that could not be
opened (nothing was sent), and a serialization failure or deadlock (PostgreSQL rolled the whole call
back), are retried for every call; an answer lost on the way (a dropped connection, a 502/503/504 or
Supabase's 520/522/524) only for a call marked ``read=True`` (it writes nothing). At most
``max_retries`` more attempts, with a short doubling pause. Timeouts are never retried: the time is
spent. Statement and lock timeouts (57014, 55P03), serialization failures and Supabase's 520/522/524
become :class:`~common.errors.DatabaseBusyError` (503 ``database_busy`` with ``Retry-After``).

Two deliberate departures from ``builder.execute()``:

- Results are parsed with ``json.loads(parse_float=Decimal)``: postgrest-py parses bodies with plain
  ``json.loads`` (floats), and money must stay exact (D7). The request is built by postgrest-py and
  sent with its own ``RequestConfig.send``, so headers and encoding are unchanged; the retry loop is
  ours (postgrest-py retries only GET/HEAD, and not the way described above).
- The HTTP client is built here with the timeout: passing ``postgrest_client_timeout`` to supabase-py
  makes postgrest-py warn (``DeprecationWarning: The 'timeout' parameter is deprecated``) and
  truncates the value to whole seconds (``int(abs(timeout))``), so 0.5 s would become no time at all.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

import httpx
import pydantic
from postgrest import APIError, SyncPostgrestClient
from postgrest.exceptions import APIErrorFromJSON, generate_default_error_message
from supabase import Client, ClientOptions, create_client

from common.db.base import Identity, call_args, check_function_name, to_json_value
from common.db.errors import translate_sqlstate
from common.errors import AppError, DatabaseBusyError, DatabaseUnavailableError

log = logging.getLogger(__name__)

# Answers from the gateway or PostgREST that mean "the database API is not there right now". PostgREST's
# own answers with these statuses (PGRST000-003, 08*, 53*, 57P01) translate to the same error by code.
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
# Supabase's edge (Cloudflare): 520 unknown origin error, 522 origin connect timeout, 524 origin timeout.
_EDGE_TIMEOUT_STATUSES = frozenset({520, 522, 524})
# SQLSTATEs after which PostgreSQL has rolled the call back and a second try may well succeed.
_ROLLED_BACK_RETRYABLE = frozenset({"40001", "40P01"})


class _Retry(Enum):
    """When a failed call may be sent again."""

    ALWAYS = "always"  # nothing was done: the request never left, or the database rolled it back
    READ = "read"      # the answer was lost; only a call that writes nothing may be repeated
    NEVER = "never"


class SupabaseDatabase:
    """:class:`common.db.base.Database` over supabase-py RPC; the client is created on first use."""

    def __init__(self, url: str, secret_key: str, *, publishable_key: str, timeout_seconds: float = 10.0,
                 max_retries: int = 2, retry_pause_seconds: float = 0.05) -> None:
        if not secret_key or not publishable_key:
            raise ValueError("SupabaseDatabase needs the project's secret key and publishable key")
        self._url = url
        self._secret_key = secret_key
        self._publishable_key = publishable_key
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._pause = retry_pause_seconds
        self._client: Client | None = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SupabaseDatabase(url={self._url!r})"

    @property
    def client(self) -> Client:
        """The shared supabase-py client (thread-safe creation). Never set a user's token on it."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    http = httpx.Client(timeout=httpx.Timeout(self._timeout), follow_redirects=True, http2=False)
                    options = ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
                    client = create_client(self._url, self._secret_key, options)
                    # supabase-py builds its PostgREST client lazily and without a lock: build it here.
                    client.postgrest  # noqa: B018
                    self._http, self._client = http, client
        return client

    def close(self) -> None:
        """Close the HTTP connections; the next call opens new ones."""
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._http, self._client = None, None

    def _rest_for(self, identity: Identity) -> SyncPostgrestClient:
        base = self.client.postgrest
        if identity.role == "service_role":
            return base
        if not identity.token:
            raise ValueError("a user identity needs its access token to call the database through PostgREST")
        # A per-request copy of the headers: the publishable key and the user's bearer token.
        rest = base.schema("public").auth(identity.token)
        rest.headers["apikey"] = self._publishable_key
        return rest

    def call(self, function: str, args: Mapping[str, Any], identity: Identity, *, read: bool = False) -> Any:
        """Call ``public.<function>`` as ``identity``; return the JSON result (``None`` for void).

        ``read=True`` says the function writes nothing, so a call whose answer was lost may be sent
        again. Raises ValueError for a bad function or argument name or a user identity without a
        token, DatabaseBusyError for timeouts, DatabaseUnavailableError when the API cannot be reached,
        and another AppError subclass for every other database failure.
        """
        check_function_name(function)
        args = call_args(args, identity)
        request = self._rest_for(identity).rpc(function, to_json_value(dict(args))).request
        attempt = 0
        while True:
            extra = httpx.Headers({"X-Retry-Count": str(attempt)} if attempt else {})
            try:
                response = request.send(extra)
            except httpx.TransportError as exc:
                error, retry, cause = _transport_failure(exc, function), _transport_retry(exc), exc
            else:
                if response.is_success:
                    return _result(response, function)
                error, retry, cause = _response_failure(response, function)
            if attempt < self._max_retries and (retry is _Retry.ALWAYS or (retry is _Retry.READ and read)):
                attempt += 1
                log.warning("database API call %s failed (%s); retry %d of %d", function,
                            type(error).__name__, attempt, self._max_retries)
                time.sleep(self._pause * 2 ** (attempt - 1))
                continue
            raise error from cause


def _transport_retry(exc: httpx.TransportError) -> _Retry:
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return _Retry.ALWAYS  # the request was never sent
    if isinstance(exc, httpx.TimeoutException):
        return _Retry.NEVER  # the time is spent
    return _Retry.READ  # dropped mid-call (ReadError, WriteError, RemoteProtocolError): outcome unknown


def _transport_failure(exc: httpx.TransportError, function: str) -> AppError:
    log.warning("database API unreachable calling %s: %s", function, type(exc).__name__)
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return DatabaseBusyError()
    return DatabaseUnavailableError()


def _response_failure(response: httpx.Response, function: str) -> tuple[AppError, _Retry, APIError]:
    """The error for a non-2xx answer, whether it may be retried, and postgrest-py's APIError for it."""
    error = _api_error(response)
    status = response.status_code
    if status in _EDGE_TIMEOUT_STATUSES:
        log.warning("database API edge answered %s calling %s", status, function)
        return DatabaseBusyError(), _Retry.READ, error
    if status in _UNAVAILABLE_STATUSES:
        log.warning("database API answered %s (code %s) calling %s", status, error.code, function)
        return DatabaseUnavailableError(), _Retry.READ, error
    retry = _Retry.ALWAYS if error.code in _ROLLED_BACK_RETRYABLE else _Retry.NEVER
    return translate_sqlstate(error.code, error.message, function=function, details=error.details), retry, error


def _result(response: httpx.Response, function: str) -> Any:
    """The function's result: JSON with exact decimals; ``None`` for a void function (204)."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        log.error("database API answered %s calling %s with a body that is not JSON", response.status_code, function)
        raise AppError(f"Database error in {function}.") from exc


def _api_error(response: httpx.Response) -> APIError:
    """The APIError postgrest-py's ``execute()`` raises for this response (same parsing, same fallback)."""
    try:
        body = APIErrorFromJSON.model_validate_json(response.content)
    except pydantic.ValidationError:
        # Not PostgREST's JSON (a proxy page, an empty body): code from Proxy-Status or the HTTP status.
        return APIError(generate_default_error_message(response))
    return APIError(dict(body))
