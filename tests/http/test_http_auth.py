"""Supabase access tokens (D8): what is accepted, what answers 401, and how the JWKS is cached."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask.testing
import pytest

from common.auth import JwksCache, TokenVerifier
from common.auth.jwks import fetch_jwks
from common.errors import AuthUnavailableError, UnauthorizedError
from common.settings import AuthSettings
from tests.support.jwt_keys import (
    HS256_SECRET,
    ISSUER,
    JwksServer,
    KeyPair,
    forge_hs256,
    mint,
    mint_hs256,
    mint_unsigned,
    new_es256_key,
    supabase_claims,
    tamper,
    without,
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "unauthorized"
    assert body["type"] == "https://docchat.dev/problems/unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- accepted -----------------------------------------------------------------------------------

def test_valid_es256_token_is_accepted_with_its_claims(client: flask.testing.FlaskClient, es_key: KeyPair) -> None:
    # given a token signed with the project's ES256 key
    claims = supabase_claims(email="ada@example.test", app_metadata={"provider": "email", "role": "admin"})
    # when it calls an authenticated route
    response = client.get("/me", headers=bearer(mint(es_key, claims)))
    # then the handler sees the verified claims
    assert response.status_code == 200
    assert response.get_json() == {"user_id": claims["sub"], "email": "ada@example.test", "role": "authenticated",
                                   "session_id": claims["session_id"],
                                   "app_metadata": {"provider": "email", "role": "admin"}}


def test_valid_rs256_token_is_accepted(client: flask.testing.FlaskClient, rs_key: KeyPair) -> None:
    claims = supabase_claims()
    response = client.get("/me", headers=bearer(mint(rs_key, claims)))
    assert response.status_code == 200
    assert response.get_json()["user_id"] == claims["sub"]


def test_valid_hs256_token_is_accepted(client: flask.testing.FlaskClient) -> None:
    claims = supabase_claims(email="grace@example.test")
    response = client.get("/me", headers=bearer(mint_hs256(claims)))
    assert response.status_code == 200
    assert response.get_json()["email"] == "grace@example.test"


def test_audience_may_be_a_list(client: flask.testing.FlaskClient, es_key: KeyPair) -> None:
    response = client.get("/me", headers=bearer(mint(es_key, supabase_claims(audience=["authenticated", "x"]))))
    assert response.status_code == 200


def test_expiry_within_leeway_is_accepted(client: flask.testing.FlaskClient) -> None:
    response = client.get("/me", headers=bearer(mint_hs256(supabase_claims(expires_in=-5))))
    assert response.status_code == 200


# --- refused ------------------------------------------------------------------------------------

BadToken = Callable[[KeyPair, KeyPair], str]

BAD_TOKENS: dict[str, BadToken] = {
    "expired": lambda es, rs: mint(es, supabase_claims(expires_in=-3600)),
    "wrong audience": lambda es, rs: mint(es, supabase_claims(audience="anon")),
    "wrong issuer": lambda es, rs: mint(es, supabase_claims(issuer="https://evil.example/auth/v1")),
    "alg none": lambda es, rs: mint_unsigned(supabase_claims(), kid=es.kid),
    "alg none without kid": lambda es, rs: mint_unsigned(supabase_claims()),
    "HS256 signed with the EC public key": lambda es, rs: forge_hs256(supabase_claims(), es.public_pem(), kid=es.kid),
    "HS256 signed with the RSA public key": lambda es, rs: forge_hs256(supabase_claims(), rs.public_pem(), kid=rs.kid),
    "HS256 with another secret": lambda es, rs: mint_hs256(supabase_claims(), "another-secret-0123456789abcdefghij"),
    "tampered payload": lambda es, rs: tamper(mint(es, supabase_claims()), sub=str(uuid.uuid4())),
    "tampered role": lambda es, rs: tamper(mint_hs256(supabase_claims(role="anon")), role="authenticated"),
    "unknown kid": lambda es, rs: mint(new_es256_key("never-published"), supabase_claims()),
    "EC signature under the RSA key's kid": lambda es, rs: mint(
        KeyPair(rs.kid, "ES256", es.private_key), supabase_claims()),
    "role anon": lambda es, rs: mint(es, supabase_claims(role="anon")),
    "role service_role": lambda es, rs: mint_hs256(supabase_claims(role="service_role")),
    "missing sub": lambda es, rs: mint(es, without(supabase_claims(), "sub")),
    "sub not a uuid": lambda es, rs: mint(es, supabase_claims(sub="user-1")),
    "missing exp": lambda es, rs: mint(es, without(supabase_claims(), "exp")),
    "missing role": lambda es, rs: mint(es, without(supabase_claims(), "role")),
    "not yet issued": lambda es, rs: mint(es, supabase_claims(iat=supabase_claims()["iat"] + 3600)),
    "not a jwt": lambda es, rs: "not.a.jwt",
    "legacy anon key": lambda es, rs: mint_hs256({"iss": "supabase", "ref": "x", "role": "anon",
                                                  "iat": 1, "exp": 4_000_000_000}),
    "future nbf": lambda es, rs: mint(es, supabase_claims(nbf=supabase_claims()["iat"] + 3600)),
    "string exp": lambda es, rs: mint(es, supabase_claims(exp=str(supabase_claims()["exp"]))),
    "string iat": lambda es, rs: mint(es, supabase_claims(iat=str(supabase_claims()["iat"]))),
    "string nbf": lambda es, rs: mint(es, supabase_claims(nbf=str(supabase_claims()["iat"]))),
    "boolean exp": lambda es, rs: mint(es, supabase_claims(exp=True)),
    "upper-case sub": lambda es, rs: mint(es, supabase_claims(sub=str(uuid.uuid4()).upper())),
    "sub without hyphens": lambda es, rs: mint(es, supabase_claims(sub=uuid.uuid4().hex)),
    "cty header (nested token)": lambda es, rs: mint(es, supabase_claims(), headers={"cty": "JWT"}),
    "jku header": lambda es, rs: mint(es, supabase_claims(), headers={"jku": "https://evil.example/jwks.json"}),
    "x5u header": lambda es, rs: mint(es, supabase_claims(), headers={"x5u": "https://evil.example/cert.pem"}),
    "embedded jwk header": lambda es, rs: mint(es, supabase_claims(), headers={"jwk": es.public_jwk()}),
    "typ not JWT": lambda es, rs: mint(es, supabase_claims(), headers={"typ": "at+jwt"}),
    "anonymous user": lambda es, rs: mint(es, supabase_claims(is_anonymous=True)),
    "is_anonymous not a boolean": lambda es, rs: mint(es, supabase_claims(is_anonymous="false")),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_token_answers_401(client: flask.testing.FlaskClient, es_key: KeyPair, rs_key: KeyPair,
                               case: str) -> None:
    # given a token that must not be trusted
    token = BAD_TOKENS[case](es_key, rs_key)
    # when it calls an authenticated route, then it is refused with a stable code
    assert_unauthorized(client.get("/me", headers=bearer(token)))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_malformed_authorization_answers_401(client: flask.testing.FlaskClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_unauthorized(client.get("/me", headers=headers))


def test_hs256_is_refused_when_no_secret_is_configured(make_client: Callable[..., flask.testing.FlaskClient],
                                                       es_key: KeyPair) -> None:
    # given a project verified only through its JWKS
    client = make_client(SUPABASE_JWT_SECRET=None)
    # then an HS256 token, even one "signed" with the public key, is refused
    assert_unauthorized(client.get("/me", headers=bearer(mint_hs256(supabase_claims()))))
    assert_unauthorized(client.get("/me", headers=bearer(forge_hs256(supabase_claims(), es_key.public_pem()))))
    assert client.get("/me", headers=bearer(mint(es_key, supabase_claims()))).status_code == 200


# --- the JWKS cache -----------------------------------------------------------------------------

def test_jwks_is_fetched_once_and_refreshed_once_for_a_new_kid(client: flask.testing.FlaskClient,
                                                              jwks: JwksServer, es_key: KeyPair) -> None:
    # given a first token: the key set is fetched
    assert client.get("/me", headers=bearer(mint(es_key, supabase_claims()))).status_code == 200
    assert jwks.fetches == 1
    # when a second token with a known kid arrives, then nothing is fetched
    assert client.get("/me", headers=bearer(mint(es_key, supabase_claims()))).status_code == 200
    assert jwks.fetches == 1
    # when the project rotates to a new key, then its first token forces exactly one refresh
    rotated = new_es256_key("es-key-2")
    jwks.keys.append(rotated)
    assert client.get("/me", headers=bearer(mint(rotated, supabase_claims()))).status_code == 200
    assert jwks.fetches == 2
    # and unknown kids right after are refused without another fetch (rate-limited)
    for _ in range(3):
        assert_unauthorized(client.get("/me", headers=bearer(mint(new_es256_key("made-up"), supabase_claims()))))
    assert jwks.fetches == 2


def test_unreachable_jwks_answers_503_not_401(make_client: Callable[..., flask.testing.FlaskClient],
                                              jwks: JwksServer, es_key: KeyPair) -> None:
    jwks.fail_with = 500
    response = make_client().get("/me", headers=bearer(mint(es_key, supabase_claims())))
    assert response.status_code == 503
    assert response.get_json()["code"] == "auth_unavailable"
    assert response.headers["Retry-After"] == "5"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verifier(jwks: JwksServer, clock: FakeClock) -> tuple[TokenVerifier, JwksCache]:
    cache = JwksCache(jwks.url, lifespan_seconds=600, refresh_cooldown_seconds=30, failure_backoff_seconds=5,
                      clock=clock)
    return TokenVerifier(AuthSettings(issuer=ISSUER, jwt_secret=HS256_SECRET, jwks_url=jwks.url), jwks=cache), cache


def test_unknown_kid_refresh_is_rate_limited_by_the_cooldown(jwks: JwksServer, es_key: KeyPair) -> None:
    clock = FakeClock()
    verifier, _ = _verifier(jwks, clock)
    unknown = mint(new_es256_key("unknown"), supabase_claims())
    verifier.verify(mint(es_key, supabase_claims()))
    assert jwks.fetches == 1
    # an unknown kid forces one refresh ...
    with pytest.raises(UnauthorizedError):
        verifier.verify(unknown)
    assert jwks.fetches == 2
    # ... and no more until the cooldown has passed
    clock.now += 29
    with pytest.raises(UnauthorizedError):
        verifier.verify(unknown)
    assert jwks.fetches == 2
    clock.now += 2
    with pytest.raises(UnauthorizedError):
        verifier.verify(unknown)
    assert jwks.fetches == 3


def test_key_set_expires_after_its_lifespan_and_stale_keys_survive_an_outage(jwks: JwksServer,
                                                                             es_key: KeyPair) -> None:
    clock = FakeClock()
    verifier, cache = _verifier(jwks, clock)
    token = mint(es_key, supabase_claims())
    verifier.verify(token)
    clock.now += 601
    verifier.verify(token)  # served from the cache; the refresh runs beside it
    assert cache.wait_idle(5)
    assert jwks.fetches == 2
    # when the endpoint fails after expiry, the cached keys stay in use (and retries back off)
    jwks.fail_with = 503
    clock.now += 601
    verifier.verify(token)
    assert cache.wait_idle(5)
    verifier.verify(token)
    assert cache.wait_idle(5)
    assert jwks.fetches == 3
    clock.now += 6
    verifier.verify(token)
    assert cache.wait_idle(5)
    assert jwks.fetches == 4


def test_no_keys_and_no_endpoint_is_auth_unavailable(jwks: JwksServer, es_key: KeyPair) -> None:
    jwks.fail_with = 500
    verifier, _ = _verifier(jwks, FakeClock())
    with pytest.raises(AuthUnavailableError):
        verifier.verify(mint(es_key, supabase_claims()))
    with pytest.raises(AuthUnavailableError):  # within the backoff: refused without a fetch
        verifier.verify(mint(es_key, supabase_claims()))
    assert jwks.fetches == 1


def test_jwks_entries_that_are_not_es256_or_rs256_verification_keys_are_ignored(
        jwks: JwksServer, es_key: KeyPair, caplog: pytest.LogCaptureFixture) -> None:
    # given a key set whose EC key claims another algorithm
    document = fetch_jwks(jwks.url, 5)
    entries = [dict(entry) for entry in document["keys"]]
    entries[0]["alg"] = "RS256"
    cache = JwksCache(jwks.url, fetch=lambda url, timeout: {"keys": entries + [{"kty": "oct", "kid": "h", "k": "AA"}]})
    # then that key is not usable, and the skipped entries are logged
    with pytest.raises(UnauthorizedError):
        cache.key_for(es_key.kid)
    assert "jwks entry ignored" in caplog.text


def test_anonymous_users_are_accepted_only_when_the_project_allows_them(
        make_client: Callable[..., flask.testing.FlaskClient], es_key: KeyPair) -> None:
    # given a project that allows Supabase's anonymous sign-ins
    client = make_client(ALLOW_ANONYMOUS_USERS="true")
    claims = supabase_claims(is_anonymous=True)
    # when an anonymous user's token calls, then it is accepted as that user
    response = client.get("/me", headers=bearer(mint(es_key, claims)))
    assert response.status_code == 200
    assert response.get_json()["user_id"] == claims["sub"]


def test_a_hanging_jwks_costs_requests_with_cached_keys_nothing(jwks: JwksServer, es_key: KeyPair) -> None:
    # given keys cached by a first fetch, then an endpoint that hangs longer than the fetch timeout
    cache = JwksCache(jwks.url, lifespan_seconds=0.05, timeout_seconds=1.0, failure_backoff_seconds=5)
    verifier = TokenVerifier(AuthSettings(issuer=ISSUER, jwks_url=jwks.url), jwks=cache)
    token = mint(es_key, supabase_claims())
    verifier.verify(token)
    jwks.delay_seconds = 3.0
    time.sleep(0.1)  # the key set is now past its lifespan
    # when 40 requests verify tokens from 8 threads while the refresh hangs
    def timed(_: int) -> float:
        started = time.perf_counter()
        verifier.verify(token)
        return time.perf_counter() - started
    with ThreadPoolExecutor(max_workers=8) as pool:
        durations = sorted(pool.map(timed, range(40)))
    # then each costs no more than a cache lookup and a signature check, and only one fetch ran
    assert durations[-1] < 0.5, durations[-5:]
    assert jwks.fetches == 2
    # and after the failed fetch ends, the backoff holds off the next one
    assert cache.wait_idle(5)
    verifier.verify(token)
    assert jwks.fetches == 2


def test_an_unknown_kid_storm_makes_one_fetch_per_window(jwks: JwksServer, es_key: KeyPair) -> None:
    # given cached keys
    clock = FakeClock()
    verifier, cache = _verifier(jwks, clock)
    verifier.verify(mint(es_key, supabase_claims()))
    tokens = [mint(new_es256_key(f"made-up-{i}"), supabase_claims()) for i in range(8)]
    # when 200 tokens with unknown kids arrive from 8 threads
    def refused(i: int) -> bool:
        with pytest.raises(UnauthorizedError):
            verifier.verify(tokens[i % len(tokens)])
        return True
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(refused, range(200)))
    # then one fetch ran for the whole window, and the next window allows one more
    assert jwks.fetches == 2
    clock.now += 31
    for i in range(20):
        refused(i)
    assert jwks.fetches == 3


def test_keys_removed_from_the_jwks_are_dropped_on_the_next_fetch(jwks: JwksServer, es_key: KeyPair,
                                                                   rs_key: KeyPair) -> None:
    # given both keys cached
    clock = FakeClock()
    verifier, cache = _verifier(jwks, clock)
    verifier.verify(mint(rs_key, supabase_claims()))
    # when the project revokes the RSA key and the set is refreshed
    jwks.keys.remove(rs_key)
    clock.now += 601
    verifier.verify(mint(es_key, supabase_claims()))
    assert cache.wait_idle(5)
    # then tokens signed with it are refused
    with pytest.raises(UnauthorizedError):
        verifier.verify(mint(rs_key, supabase_claims()))
