"""supabase-py transport: the SQL function API over PostgREST RPC (the production default).

``POST {SUPABASE_URL}/rest/v1/rpc/<function>`` with the arguments as a JSON object. PostgREST verifies
the bearer token, sets ``role`` and ``request.jwt.claims`` and runs the function in one transaction,
exactly as :mod:`common.db.psycopg_transport` does over a direct connection.

One supabase-py client per instance, created on first use and shared by every request thread. It is
never mutated per request: service-role calls use it as it is (``apikey`` and bearer are the secret
key); a user call goes through ``client.postgrest.schema("public").auth(token)``, a new PostgREST
client that copies the headers, sets its own ``Authorization`` and shares the HTTP session
(postgrest 2.34.1 ``SyncPostgrestClient.schema`` builds the copy with ``headers=dict(self.headers)``
and ``http_client=self.session``; ``BasePostgrestClient.auth`` writes only to that copy).

Two deliberate departures from ``builder.execute()``:

- Results are parsed with ``json.loads(parse_float=Decimal)``: postgrest-py parses bodies with plain
  ``json.loads`` (floats), and money must stay exact (D7). The request is sent with postgrest-py's own
  ``send_with_retry`` (what ``execute()`` calls), so headers, encoding and retry policy are unchanged.
- The HTTP client is built here with the timeout: passing ``postgrest_client_timeout`` to supabase-py
  makes postgrest-py warn (``DeprecationWarning: The 'timeout' parameter is deprecated``) and
  truncates the value to whole seconds (``int(abs(timeout))``), so 0.5 s would become no time at all.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx
import pydantic
from postgrest import APIError, SyncPostgrestClient
from postgrest._sync.request_builder import send_with_retry
from postgrest.exceptions import APIErrorFromJSON, generate_default_error_message
from supabase import Client, ClientOptions, create_client

from common.db.base import Identity, call_args, check_function_name, to_json_value
from common.db.errors import translate_sqlstate
from common.errors import AppError, DatabaseUnavailableError

log = logging.getLogger(__name__)

# Answers from the gateway or PostgREST that mean "the database API is not there right now". PostgREST's
# own answers with these statuses (PGRST000-003, 08*, 53*, 57P01) translate to the same error by code.
_UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})


class SupabaseDatabase:
    """:class:`common.db.base.Database` over supabase-py RPC; the client is created on first use."""

    def __init__(self, url: str, secret_key: str, *, timeout_seconds: float = 10.0) -> None:
        self._url = url
        self._secret_key = secret_key
        self._timeout = timeout_seconds
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
                    http = httpx.Client(timeout=httpx.Timeout(self._timeout), follow_redirects=True, http2=True)
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
        # A per-request copy of the headers with the user's bearer token; the shared client stays as it is.
        return base.schema("public").auth(identity.token)

    def call(self, function: str, args: Mapping[str, Any], identity: Identity) -> Any:
        """Call ``public.<function>`` as ``identity``; return the JSON result (``None`` for void).

        Raises ValueError for a bad function or argument name or a user identity without a token, and
        an AppError subclass for every database failure (DatabaseUnavailableError when unreachable).
        """
        check_function_name(function)
        args = call_args(args, identity)
        request = self._rest_for(identity).rpc(function, to_json_value(dict(args))).request
        try:
            response = send_with_retry(request)
        except httpx.TransportError as exc:  # connect/read/write timeouts, refused or dropped connections
            log.warning("database API unreachable calling %s: %s", function, type(exc).__name__)
            raise DatabaseUnavailableError() from exc
        if response.is_success:
            return _result(response, function)
        error = _api_error(response)
        if response.status_code in _UNAVAILABLE_STATUSES:
            log.warning("database API answered %s (code %s) calling %s", response.status_code, error.code, function)
            raise DatabaseUnavailableError() from error
        raise translate_sqlstate(error.code, error.message, function=function, details=error.details) from error


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
