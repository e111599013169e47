"""Who may call the scheduled registry refresh: the scheduler's identity, and nobody else (D8).

Two ways to prove it, chosen by settings:

- ``REGISTRY_SERVICE_TOKEN`` set (the local stack, tests): ``Authorization: Bearer <that token>``,
  compared in constant time;
- otherwise (production): a Google-signed OIDC ID token, as Cloud Scheduler sends it, for the
  configured audience and issued to the configured scheduler service account with a verified email.

A signed-in user's valid Supabase token is refused with 403; anything else with 401.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import jwt

from common.auth.tokens import TokenVerifier, bearer_token
from common.db.base import Identity
from common.errors import AuthUnavailableError, ConfigurationError, ForbiddenError, UnauthorizedError
from common.settings import RegistrySettings

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})

# A google.auth.transport.Request: called as request(url, method="GET") -> response(.status, .data).
GoogleRequest = Callable[..., Any]


def verify_service_caller(headers: Mapping[str, str], registry: RegistrySettings, *,
                          user_verifier: TokenVerifier | None = None,
                          google_request: GoogleRequest | None = None) -> Identity:
    """The service identity when the caller is the scheduler; raises UnauthorizedError (401),
    ForbiddenError (403: a user's token, or another Google account), AuthUnavailableError (503: Google's
    certificates unreachable) or ConfigurationError (no way to recognise the scheduler is configured).
    """
    token = bearer_token(headers)
    if registry.service_token:
        if hmac.compare_digest(token.encode("utf-8"), registry.service_token.encode("utf-8")):
            return Identity.service()
        _refuse(token, user_verifier)
    if not (registry.scheduler_audience and registry.scheduler_service_account):
        raise ConfigurationError(
            "Invalid configuration: REGISTRY_SERVICE_TOKEN, or SCHEDULER_AUDIENCE and "
            "SCHEDULER_SERVICE_ACCOUNT, must be set")
    if _unverified_issuer(token) not in GOOGLE_ISSUERS:
        _refuse(token, user_verifier)
    claims = _verify_google_id_token(token, registry.scheduler_audience, google_request)
    if claims.get("email") != registry.scheduler_service_account or claims.get("email_verified") is not True:
        log.warning("registry refresh refused a Google identity that is not the scheduler's")
        raise ForbiddenError("Only the scheduler may call this endpoint.")
    return Identity.service()


def _refuse(token: str, user_verifier: TokenVerifier | None) -> NoReturn:
    """Raise ForbiddenError for a valid user token (authenticated, but not allowed), else UnauthorizedError."""
    if user_verifier is not None:
        try:
            user_verifier.verify(token)
        except (UnauthorizedError, AuthUnavailableError) as exc:
            raise UnauthorizedError("Only the scheduler may call this endpoint.") from exc
        raise ForbiddenError("Only the scheduler may call this endpoint.")
    raise UnauthorizedError("Only the scheduler may call this endpoint.")


def _unverified_issuer(token: str) -> Any:
    """The ``iss`` a token claims, read without verification only to choose how to verify it."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None


def _verify_google_id_token(token: str, audience: str, google_request: GoogleRequest | None) -> Mapping[str, Any]:
    from google.auth import exceptions as google_exceptions
    from google.oauth2 import id_token

    if google_request is None:
        import google.auth.transport.requests

        google_request = google.auth.transport.requests.Request()
    try:
        return id_token.verify_oauth2_token(token, google_request, audience=audience)
    except google_exceptions.TransportError as exc:
        raise AuthUnavailableError("Google's signing certificates could not be fetched.") from exc
    except (ValueError, google_exceptions.GoogleAuthError, jwt.PyJWTError) as exc:
        raise UnauthorizedError("The scheduler's identity token is invalid.") from exc
