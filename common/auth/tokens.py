"""Verification of Supabase access tokens (D8), locally and without a call to Supabase Auth.

Two kinds of key are accepted, each bound to one algorithm:

- the project's asymmetric signing keys, from its JWKS URL (ES256 for EC P-256, RS256 for RSA);
- the legacy shared secret (HS256 only).

The token's ``alg`` header only says which kind of key to look up; the decode then allows exactly the
algorithm of the key found, so ``alg: none``, HS256 "signed" with a public key, or an ES256 header on
an RSA key all fail. ``exp`` (with leeway), ``aud``, ``iss``, ``role == "authenticated"`` and a UUID
``sub`` are required, and their types are strict: ``exp``/``iat``/``nbf`` are JSON numbers (a string
``"9999999999"`` is refused, though PyJWT would convert it), ``sub`` is a UUID in the canonical
lower-case form Supabase issues. Headers that would make a verifier fetch or trust something the
token names (``jku``, ``x5u``, ``x5c``, ``jwk``), a nested token (``cty``), ``crit`` extensions or a
``typ`` other than JWT are refused. Anonymous users (``is_anonymous: true``, role ``authenticated``)
are refused unless ``AuthSettings.allow_anonymous``. Every failure is an
:class:`~common.errors.UnauthorizedError` whose detail never contains the token.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from common.auth.jwks import JwksCache
from common.db.base import Identity
from common.errors import UnauthorizedError
from common.settings import AuthSettings

_MAX_TOKEN_LENGTH = 16 * 1024
_ASYMMETRIC = frozenset({"ES256", "RS256"})
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "role"]
_NUMERIC_CLAIMS = ("exp", "iat", "nbf")
_REFUSED_HEADERS = frozenset({"cty", "jku", "x5u", "x5c", "jwk", "crit"})


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; raises UnauthorizedError."""
    value = headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("A bearer token is required.")
    if len(token) > _MAX_TOKEN_LENGTH or any(ch.isspace() for ch in token):
        raise UnauthorizedError("The access token is malformed.")
    return token


class TokenVerifier:
    """Verifies Supabase access tokens against one project's keys; safe to share between threads."""

    def __init__(self, settings: AuthSettings, *, jwks: JwksCache | None = None) -> None:
        self._settings = settings
        self._jwks = jwks
        self._jwks_lock = threading.Lock()

    def _jwks_cache(self) -> JwksCache | None:
        if self._jwks is None and self._settings.jwks_url:
            with self._jwks_lock:
                if self._jwks is None:
                    self._jwks = JwksCache(self._settings.jwks_url)
        return self._jwks

    def verify(self, token: str) -> Identity:
        """The identity of a valid user token; raises UnauthorizedError (or AuthUnavailableError when
        the signing keys cannot be fetched)."""
        claims = self.claims(token)
        return Identity.user(claims, token)

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of a user token; see :meth:`verify`."""
        if len(token) > _MAX_TOKEN_LENGTH:
            raise UnauthorizedError("The access token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("The access token is malformed.") from exc
        if _REFUSED_HEADERS & set(header) or header.get("typ", "JWT") != "JWT":
            raise UnauthorizedError("The access token has a header this service does not accept.")
        key, algorithm = self._key_for(header)
        settings = self._settings
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=settings.audience, issuer=settings.issuer,
                leeway=settings.leeway_seconds, options={"require": _REQUIRED_CLAIMS, "strict_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthorizedError("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("The access token is invalid.") from exc
        # PyJWT converts the times with int(...), so a string "9999999999" passes it: refuse it here.
        for name in _NUMERIC_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise UnauthorizedError("The access token's times are malformed.")
        if claims.get("role") != "authenticated":
            raise UnauthorizedError("The access token is not a signed-in user's token.")
        _require_uuid(claims.get("sub"))
        anonymous = claims.get("is_anonymous", False)
        if not isinstance(anonymous, bool):
            raise UnauthorizedError("The access token is malformed.")
        if anonymous and not settings.allow_anonymous:
            raise UnauthorizedError("Anonymous sign-ins cannot use this service.")
        return claims

    def _key_for(self, header: Mapping[str, Any]) -> tuple[Any, str]:
        alg = header.get("alg")
        if alg == "HS256":
            if not self._settings.jwt_secret:
                raise UnauthorizedError("The access token is signed with an unsupported key.")
            return self._settings.jwt_secret, "HS256"
        if alg in _ASYMMETRIC:
            kid = header.get("kid")
            jwks = self._jwks_cache()
            if not isinstance(kid, str) or not kid or jwks is None:
                raise UnauthorizedError("The access token is signed with an unknown key.")
            signing_key = jwks.key_for(kid)
            return signing_key.key, signing_key.algorithm
        raise UnauthorizedError("The access token uses an unsupported algorithm.")


def _require_uuid(sub: Any) -> None:
    """``sub`` must be a user id in the canonical (lower-case, hyphenated) UUID form Supabase issues."""
    try:
        canonical = isinstance(sub, str) and str(uuid.UUID(sub)) == sub
    except ValueError as exc:
        raise UnauthorizedError("The access token has no valid subject.") from exc
    if not canonical:
        raise UnauthorizedError("The access token has no valid subject.")
