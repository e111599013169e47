"""PostgREST's and Supabase's rules, as the emulator applies them: which role a request's keys
decide, and which HTTP status a SQLSTATE answers.

Keys and tokens:

- ``apikey`` is required (the gateway's 401 without a ``code`` otherwise): ``sb_secret_...`` acts as
  ``service_role``, ``sb_publishable_...`` as ``anon``, a legacy key is an HS256 JWT whose ``role``
  says which;
- ``Authorization: Bearer`` absent, or the same new-style key again (what supabase-py sends), keeps
  a new-style key's role (the gateway mints a JWT for it); with a legacy key and no bearer PostgREST
  sees no JWT and runs as ``anon``;
- a JWT in ``Authorization`` decides the role: HS256 with the legacy secret, or ES256/RS256 with the
  JWKS key its ``kid`` names, the algorithm taken from the key. ``exp`` is checked; PostgREST's own
  failures answer 401 ``PGRST301`` (cannot verify) or ``PGRST303`` (claims).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from tests.support.jwt_keys import KeyPair

API_ROLES = frozenset({"anon", "authenticated", "service_role"})

# PostgREST's mapSQLtoHTTP (Error.hs, v12-v14), first match wins; 42501, 21000, PTxyz and "anything
# else" are decided in http_status.
_STATUS_RULES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("23503", "23505"), 409), (("25006",), 405), (("42883", "42P01"), 404), (("P0001",), 400),
    (("42P17", "53400"), 500), (("57P01",), 503),
    (("08", "53"), 503), (("0L", "0P", "28"), 403),
    (("09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "XX", "P0"), 500),
)


def http_status(sqlstate: str, *, with_jwt: bool, message: str = "") -> int:
    """The HTTP status PostgREST answers for a SQLSTATE raised while running a request."""
    if sqlstate == "42501":
        return 403 if with_jwt else 401
    if sqlstate == "21000":  # pg-safeupdate's refusal is the caller's fault; other cardinality errors are not
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    for prefixes, status in _STATUS_RULES:
        if sqlstate.startswith(prefixes):
            return status
    return 400


class Reply(Exception):
    """An answer decided before (or instead of) running the function."""

    def __init__(self, status: int, code: str | None, message: str, details: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message, "details": details, "hint": hint}
        if code is None:  # the gateway's own answers carry no code
            self.body = {"message": message, "hint": hint}


@dataclass(frozen=True)
class ApiKeys:
    """A test project's keys: the legacy JWT secret, the new-style keys, the JWKS signing keys."""

    jwt_secret: str
    secret_key: str | None = None
    publishable_key: str | None = None
    signing_keys: tuple[KeyPair, ...] = ()


def authenticate(headers: Mapping[str, str], keys: ApiKeys) -> tuple[str, dict[str, Any]]:
    """The role and claims of a request (``headers`` with lower-case names); raises Reply."""
    apikey = headers.get("apikey")
    if not apikey:
        raise Reply(401, None, "No API key found in request", hint="No `apikey` request header or url param was found.")
    key_role = _key_role(apikey, keys)
    authorization = headers.get("authorization")
    if authorization is None:
        # The gateway stands a new-style key in for the JWT; a legacy key reaches PostgREST as no JWT.
        role = key_role if apikey.startswith("sb_") else "anon"
        return role, {"role": role}
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Reply(401, "PGRST301", "Expected a Bearer token in the Authorization header")
    if token == apikey and apikey.startswith("sb_"):
        return key_role, {"role": key_role}
    claims = _verify_user_token(token, keys)
    role = claims.get("role")
    if not isinstance(role, str) or not role:
        raise Reply(401, "PGRST303", "JWT has no role claim")
    if role not in API_ROLES:
        raise Reply(401, "22023", f'role "{role}" does not exist')
    return role, claims


def _key_role(apikey: str, keys: ApiKeys) -> str:
    if apikey.startswith("sb_secret_") and apikey == keys.secret_key:
        return "service_role"
    if apikey.startswith("sb_publishable_") and apikey == keys.publishable_key:
        return "anon"
    if not apikey.startswith("sb_"):
        try:
            role = jwt.decode(apikey, keys.jwt_secret, algorithms=["HS256"], options={"verify_aud": False}).get("role")
        except jwt.InvalidTokenError:
            role = None
        if role in ("anon", "service_role"):
            return str(role)
    raise Reply(401, None, "Invalid API key", hint="Double check your Supabase `anon` or `service_role` API key.")


def _verify_user_token(token: str, keys: ApiKeys) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise Reply(401, "PGRST301", "JWT could not be decoded") from exc
    key: Any
    if header.get("alg") == "HS256":
        key, algorithm = keys.jwt_secret, "HS256"
    else:
        pair = next((k for k in keys.signing_keys if k.kid == header.get("kid")), None)
        if pair is None:
            raise Reply(401, "PGRST301", "No suitable key or wrong key type")
        key, algorithm = pair.public_key, pair.algorithm
    try:
        return jwt.decode(token, key, algorithms=[algorithm], options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise Reply(401, "PGRST303", "JWT expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Reply(401, "PGRST301", str(exc) or "JWT could not be decoded") from exc
