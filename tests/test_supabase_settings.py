"""The Supabase and auth settings: which keys the RPC transport needs, their legacy names, and the
switch for anonymous sign-ins."""

from __future__ import annotations

import base64
import json

import pytest

from common.errors import ConfigurationError
from common.settings import Settings

def legacy_key(role: str) -> str:
    """A legacy Supabase API key's shape: a JWT whose payload carries the role."""
    payload = base64.urlsafe_b64encode(json.dumps({"iss": "supabase", "role": role}).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl"


BASE = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SECRET_KEY": "sb_secret_abc123"}


def test_the_rpc_transport_reads_the_publishable_key() -> None:
    settings = Settings.from_env({**BASE, "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_abc123"})
    assert settings.database.supabase_publishable_key == "sb_publishable_abc123"
    assert "sb_publishable_abc123" not in repr(settings)


def test_the_legacy_anon_key_name_is_read_when_the_new_one_is_absent() -> None:
    settings = Settings.from_env({**BASE, "SUPABASE_ANON_KEY": legacy_key("anon")})
    assert settings.database.supabase_publishable_key == legacy_key("anon")


@pytest.mark.parametrize(("extra", "named"), [
    ({}, "SUPABASE_PUBLISHABLE_KEY is not set"),
    ({"SUPABASE_PUBLISHABLE_KEY": "sb_publishable_a", "SUPABASE_ANON_KEY": "sb_publishable_b"}, "differ"),
    ({"SUPABASE_PUBLISHABLE_KEY": "sb_secret_abc123"}, "holds a secret key"),
    ({"SUPABASE_PUBLISHABLE_KEY": legacy_key("service_role")}, "SUPABASE_PUBLISHABLE_KEY holds a secret key"),
    ({"SUPABASE_ANON_KEY": legacy_key("service_role")}, "SUPABASE_ANON_KEY holds a secret key"),
    ({"SUPABASE_PUBLISHABLE_KEY": "eyJhbGciOiJIUzI1NiJ9.not-base64!.sig"}, "SUPABASE_PUBLISHABLE_KEY looks like a legacy JWT"),
    ({"SUPABASE_PUBLISHABLE_KEY": "sb_publishable_a", "ALLOW_ANONYMOUS_USERS": "maybe"}, "ALLOW_ANONYMOUS_USERS"),
])
def test_bad_key_settings_are_refused_naming_the_variable(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({**BASE, **extra})
    assert named in str(raised.value)


def test_the_publishable_key_is_optional_with_a_database_url() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x@127.0.0.1/db", "JWT_ISSUER": "http://i/auth/v1",
                                  "SUPABASE_JWT_SECRET": "s" * 40})
    assert settings.database.supabase_publishable_key is None


@pytest.mark.parametrize(("value", "allowed"), [(None, False), ("false", False), ("true", True), ("1", True)])
def test_anonymous_sign_ins_are_refused_unless_allowed(value: str | None, allowed: bool) -> None:
    env = {**BASE, "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_a", **({"ALLOW_ANONYMOUS_USERS": value} if value else {})}
    assert Settings.from_env(env).auth.allow_anonymous is allowed
