"""The emulator speaks what Supabase speaks: new-style and legacy API keys, asymmetric user tokens
from the project's JWKS, PostgREST's login role and each API role's own statement timeout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.db_transport.conftest import SIGNING_KEYS
from tests.support.jwt_keys import mint, new_es256_key, supabase_claims
from tests.support.postgrest_emulator import PostgrestEmulator
from tests.support.users import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, anon_key, service_role_key


@pytest.fixture
def http(emulator: PostgrestEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url + "/rest/v1/rpc", timeout=10) as client:
        yield client


def _call(http: httpx.Client, apikey: str, bearer: str | None = None, function: str = "t_settings",
          **body: Any) -> httpx.Response:
    headers = {"apikey": apikey, **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
    return http.post(f"/{function}", json=body, headers=headers)


@pytest.mark.parametrize(("apikey", "bearer", "role"), [
    (TEST_SECRET_KEY, None, "service_role"),
    (TEST_SECRET_KEY, TEST_SECRET_KEY, "service_role"),       # what supabase-py sends with a secret key
    (TEST_PUBLISHABLE_KEY, None, "anon"),
    (TEST_PUBLISHABLE_KEY, TEST_PUBLISHABLE_KEY, "anon"),
    (service_role_key(), service_role_key(), "service_role"),  # legacy JWT keys keep working
    (anon_key(), anon_key(), "anon"),
    (anon_key(), None, "anon"),
])
def test_api_keys_decide_the_role(http: httpx.Client, apikey: str, bearer: str | None, role: str) -> None:
    response = _call(http, apikey, bearer)
    assert response.status_code == 200, response.text
    assert response.json()["current_user"] == role


@pytest.mark.parametrize("signing_key", SIGNING_KEYS, ids=lambda k: k.algorithm)
def test_a_user_token_from_the_jwks_runs_as_authenticated(http: httpx.Client, make_user: Callable[..., Any],
                                                          signing_key: Any) -> None:
    # given a user token signed with one of the project's asymmetric keys, and the publishable key
    user = make_user(signing_key=signing_key)
    # when it calls, then the function runs as that user
    response = _call(http, TEST_PUBLISHABLE_KEY, user.token, "t_whoami")
    assert response.status_code == 200, response.text
    assert (response.json()["uid"], response.json()["current_user"]) == (user.id, "authenticated")


@pytest.mark.parametrize(("apikey", "bearer", "code"), [
    ("sb_secret_not-the-projects-key", None, None),
    ("sb_publishable_not-the-projects-key", None, None),
    (TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, "PGRST301"),  # a key in Authorization must be the apikey itself
    (TEST_PUBLISHABLE_KEY, mint(new_es256_key("not-in-the-jwks"), supabase_claims()), "PGRST301"),
    (TEST_PUBLISHABLE_KEY, mint(SIGNING_KEYS[0], supabase_claims(expires_in=-60)), "PGRST303"),
])
def test_keys_and_tokens_the_project_does_not_know_answer_401(http: httpx.Client, apikey: str,
                                                              bearer: str | None, code: str | None) -> None:
    response = _call(http, apikey, bearer)
    assert response.status_code == 401
    assert response.json().get("code") == code


def test_requests_log_in_as_authenticator_with_each_roles_own_timeout(
        http: httpx.Client, make_user: Callable[..., Any]) -> None:
    # when each API role calls (anon, a signed-in user, the service role)
    seen = {
        "anon": _call(http, TEST_PUBLISHABLE_KEY).json(),
        "authenticated": _call(http, TEST_PUBLISHABLE_KEY, make_user().token).json(),
        "service_role": _call(http, TEST_SECRET_KEY).json(),
    }
    # then the session is authenticator's, the role the request's, and the timeout Supabase's
    assert {role: (s["session_user"], s["current_user"], s["statement_timeout"]) for role, s in seen.items()} == {
        "anon": ("authenticator", "anon", "3s"),
        "authenticated": ("authenticator", "authenticated", "8s"),
        "service_role": ("authenticator", "service_role", "8s"),  # the login role's own timeout
    }


@pytest.mark.slow
def test_a_statement_timeout_answers_500_with_57014(http: httpx.Client) -> None:
    # given anon's 3 s statement timeout / when a call runs longer
    response = _call(http, TEST_PUBLISHABLE_KEY, None, "t_sleep", p_seconds=4)
    # then PostgREST's answer: 500 with the SQLSTATE as code
    assert response.status_code == 500
    assert response.json()["code"] == "57014"
    assert response.headers["Proxy-Status"] == "PostgREST; error=57014"
