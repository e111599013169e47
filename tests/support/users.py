"""Test users: rows in auth.users (as Supabase Auth would create them) and their identities."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import jwt
import psycopg

from common.db.base import Identity
from tests.support.jwt_keys import HS256_SECRET, ISSUER, KeyPair, mint, supabase_claims

TEST_JWT_SECRET = HS256_SECRET
# The test project's new-style API keys (opaque strings, as Supabase issues them).
TEST_SECRET_KEY = "sb_secret_test0000000000000000000000"
TEST_PUBLISHABLE_KEY = "sb_publishable_test000000000000000000"
TEST_ISSUER = ISSUER
_KEY_ISSUED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z


def service_role_key(secret: str = TEST_JWT_SECRET) -> str:
    """A legacy-style service_role API key: an HS256 JWT signed with the project's secret.

    Its times are fixed, as a real project's key is minted once: the same secret always gives the
    same key, so a test may compare it with what a transport sends."""
    return jwt.encode({"iss": "supabase", "ref": "local", "role": "service_role", "iat": _KEY_ISSUED_AT,
                       "exp": _KEY_ISSUED_AT + 20 * 365 * 86400}, secret, algorithm="HS256")


def anon_key(secret: str = TEST_JWT_SECRET) -> str:
    """A legacy-style anon API key (fixed times, like :func:`service_role_key`)."""
    return jwt.encode({"iss": "supabase", "ref": "local", "role": "anon", "iat": _KEY_ISSUED_AT,
                       "exp": _KEY_ISSUED_AT + 20 * 365 * 86400}, secret, algorithm="HS256")


@dataclass(frozen=True)
class AppUser:
    id: str
    email: str
    admin: bool
    token: str

    @property
    def identity(self) -> Identity:
        return Identity.user(jwt.decode(self.token, options={"verify_signature": False}), self.token)


class UserFactory:
    """Creates users in auth.users of one test database; ``admin=True`` also promotes the profile.
    Tokens are HS256 with the legacy secret, or signed with ``signing_key`` (ES256/RS256) when given."""

    def __init__(self, database_url: str, secret: str = TEST_JWT_SECRET, *,
                 signing_key: KeyPair | None = None) -> None:
        self.database_url = database_url
        self.secret = secret
        self.signing_key = signing_key

    def create(self, email: str | None = None, *, admin: bool = False, confirmed: bool = True,
               anonymous: bool = False) -> AppUser:
        """A user in auth.users and their token; ``anonymous=True`` is a Supabase anonymous sign-in
        (no email, ``is_anonymous`` in the row and the token)."""
        user_id = str(uuid.uuid4())
        email = "" if anonymous else email or f"user-{user_id[:8]}@example.test"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("insert into auth.users (id, email, raw_app_meta_data, email_confirmed_at, is_anonymous)"
                         " values (%s, nullif(%s, ''), %s::jsonb, case when %s then now() end, %s)",
                         [user_id, email, '{"role": "admin"}' if admin else "{}", confirmed and not anonymous,
                          anonymous])
        provider = {"provider": "anonymous", "providers": []} if anonymous else {"provider": "email", "providers": ["email"]}
        claims = supabase_claims(sub=user_id, email=email, is_anonymous=anonymous, app_metadata={
            **provider, **({"role": "admin"} if admin else {})})
        token = (mint(self.signing_key, claims) if self.signing_key is not None
                 else jwt.encode(claims, self.secret, algorithm="HS256"))
        return AppUser(id=user_id, email=email, admin=admin, token=token)
