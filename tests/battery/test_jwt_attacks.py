"""Forged, stale and misdirected tokens through HTTP on every endpoint of every function: each one is
refused with 401 or 403, never served and never a 5xx."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from common.db.base import Database
from tests.battery.figures import FIGURES, record
from tests.battery.routes import all_endpoints
from tests.battery.stack import Stack
from tests.support.jwt_keys import (
    HS256_SECRET,
    forge_hs256,
    mint,
    mint_hs256,
    mint_unsigned,
    new_es256_key,
    supabase_claims,
    tamper,
)
from tests.support.users import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, AppUser, UserFactory, service_role_key

Forger = Callable[[AppUser], str]


def _claims(user: AppUser, **overrides: object) -> dict[str, object]:
    return supabase_claims(sub=user.id, email=user.email, app_metadata={"provider": "email"}, **overrides)


_SIGNER = new_es256_key("battery-unknown")

ATTACKS: dict[str, Forger] = {
    "alg_none": lambda u: mint_unsigned(_claims(u)),
    "hs256_with_public_key": lambda u: forge_hs256(_claims(u), _SIGNER.public_pem()),
    "expired": lambda u: mint_hs256(_claims(u, expires_in=-3600)),
    "not_yet_valid": lambda u: mint_hs256(_claims(u, nbf=int(time.time()) + 3600)),
    "wrong_audience": lambda u: mint_hs256(_claims(u, audience="anon-app")),
    "wrong_issuer": lambda u: mint_hs256(_claims(u, issuer="https://evil.example/auth/v1")),
    "unknown_kid": lambda u: mint(_SIGNER, _claims(u)),
    "wrong_secret": lambda u: mint_hs256(_claims(u), HS256_SECRET + "x"),
    "tampered_payload": lambda u: tamper(u.token, app_metadata={"role": "admin"}, sub=u.id),
    "anonymous_user": lambda u: mint_hs256(_claims(u, is_anonymous=True)),
    "service_role_key": lambda u: service_role_key(),
    "secret_api_key": lambda u: TEST_SECRET_KEY,
    "publishable_key": lambda u: TEST_PUBLISHABLE_KEY,
    "garbage": lambda u: "not-a-jwt",
}


@pytest.fixture(scope="module")
def victim(users: UserFactory) -> AppUser:
    return users.create()


@pytest.fixture(scope="module")
def deleted_user(users: UserFactory, database_url: str) -> AppUser:
    person = users.create()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", [person.id])
    return person


@pytest.fixture(scope="module")
def disabled_user(users: UserFactory, psycopg_db: Database) -> AppUser:
    boss = users.create(admin=True)
    person = users.create()
    psycopg_db.call("get_my_profile", {}, person.identity)  # the profile exists once the user has signed in
    psycopg_db.call("admin_update_user", {"p_user_id": person.id, "p_disabled": True}, boss.identity)
    return person


def _refusals(stack: Stack, tokens: dict[str, str]) -> Counter[tuple[str, int]]:
    seen: Counter[tuple[str, int]] = Counter()
    with stack.client() as http:
        for endpoint in all_endpoints():
            for name, token in tokens.items():
                answer = http.request(endpoint.method, endpoint.url(), headers={"Authorization": f"Bearer {token}"},
                                      **endpoint.valid_body())
                seen[(name, answer.status_code)] += 1
    return seen


def test_every_forged_or_misdirected_token_is_refused_everywhere(stack: Stack, victim: AppUser) -> None:
    # given one token per attack, built for a real, active user
    tokens = {name: forge(victim) for name, forge in ATTACKS.items()}
    # when each is sent to every endpoint of every function
    seen = _refusals(stack, tokens)
    # then every answer is 401 or 403
    accepted = {key: count for key, count in seen.items() if key[1] not in (401, 403)}
    record("jwt_attacks", attacks=len(ATTACKS), endpoints=len(all_endpoints()), requests=sum(seen.values()),
           refused_401=sum(n for (_, status), n in seen.items() if status == 401),
           refused_403=sum(n for (_, status), n in seen.items() if status == 403), accepted=sum(accepted.values()))
    assert accepted == {}, accepted
    assert sum(seen.values()) == len(ATTACKS) * len(all_endpoints())


@pytest.mark.parametrize("who", ["deleted_user", "disabled_user"])
def test_a_gone_or_disabled_account_is_refused_everywhere(stack: Stack, request: pytest.FixtureRequest,
                                                          who: str) -> None:
    # given a validly signed token of an account that was deleted, or disabled by an admin
    person: AppUser = request.getfixturevalue(who)
    # when it is sent to every endpoint
    seen = _refusals(stack, {who: person.token})
    # then every answer is 401 or 403
    accepted = {key: count for key, count in seen.items() if key[1] not in (401, 403)}
    FIGURES.setdefault("jwt_attacks", {})[who] = dict(sorted((str(s), n) for (_, s), n in seen.items()))
    assert accepted == {}, accepted


def test_the_battery_covers_every_function() -> None:
    assert {endpoint.function for endpoint in all_endpoints()} == {
        "upload", "chat", "sessions", "usage", "admin", "registry_refresh"}
