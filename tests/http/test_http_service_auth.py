"""The scheduled refresh accepts only the scheduler's identity (D8)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask.testing
import pytest

from common.auth import TokenVerifier, verify_service_caller
from common.errors import AuthUnavailableError, ConfigurationError, ForbiddenError, UnauthorizedError
from common.settings import AuthSettings, RegistrySettings
from tests.http.conftest import SERVICE_TOKEN
from tests.support.jwt_keys import (
    HS256_SECRET,
    ISSUER,
    KeyPair,
    jwks_document,
    mint,
    mint_hs256,
    new_rs256_key,
    supabase_claims,
)

AUDIENCE = "https://registry-refresh-abc123-ew.a.run.app"
SCHEDULER = "scheduler@docchat-test.iam.gserviceaccount.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- through the function, with the configured service token -----------------------------------

def test_service_token_is_accepted(client: flask.testing.FlaskClient) -> None:
    response = client.post("/refresh", headers=bearer(SERVICE_TOKEN))
    assert response.status_code == 200
    assert response.get_json() == {"role": "service_role", "checked": 3}


def test_a_users_valid_token_is_forbidden(client: flask.testing.FlaskClient, es_key: KeyPair) -> None:
    response = client.post("/refresh", headers=bearer(mint(es_key, supabase_claims())))
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


@pytest.mark.parametrize("headers", [
    {},
    bearer("not-the-service-token"),
    bearer(SERVICE_TOKEN + "x"),
    bearer(SERVICE_TOKEN[:-1]),
    {"Authorization": SERVICE_TOKEN},
    bearer(mint_hs256(supabase_claims(), "a-secret-that-is-not-the-projects-0123")),
], ids=["missing", "wrong", "longer", "shorter", "no scheme", "invalid user token"])
def test_anything_else_is_unauthorized(client: flask.testing.FlaskClient, headers: dict[str, str]) -> None:
    response = client.post("/refresh", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


# --- production: Cloud Scheduler's Google OIDC token --------------------------------------------

@dataclass
class FakeGoogleCerts:
    """A google.auth transport request that serves a certificate set (or fails) and counts calls."""

    document: dict[str, Any]
    status: int = 200
    calls: list[str] = field(default_factory=list)

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        self.calls.append(url)
        body = json.dumps(self.document).encode()

        @dataclass
        class Response:
            status: int
            data: bytes
            headers: dict[str, str]

        return Response(self.status, body, {"content-type": "application/json"})


@pytest.fixture(scope="module")
def google_key() -> KeyPair:
    return new_rs256_key("google-key-1")


@pytest.fixture
def google(google_key: KeyPair) -> FakeGoogleCerts:
    return FakeGoogleCerts(jwks_document([google_key]))


def google_id_token(key: KeyPair, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "azp": "1234567890", "sub": "1234567890",
              "email": SCHEDULER, "email_verified": True, "iat": now, "exp": now + 3600, **overrides}
    return mint(key, claims)


REGISTRY = RegistrySettings(scheduler_audience=AUDIENCE, scheduler_service_account=SCHEDULER)


@pytest.fixture
def user_verifier() -> TokenVerifier:
    return TokenVerifier(AuthSettings(issuer=ISSUER, jwt_secret=HS256_SECRET))


def test_scheduler_oidc_token_is_accepted(google: FakeGoogleCerts, google_key: KeyPair) -> None:
    identity = verify_service_caller(bearer(google_id_token(google_key)), REGISTRY, google_request=google)
    assert identity.role == "service_role"
    assert google.calls == ["https://www.googleapis.com/oauth2/v1/certs"]


BadGoogle = Callable[[KeyPair], str]


@pytest.mark.parametrize(("case", "make", "error"), [
    ("another service account", lambda k: google_id_token(k, email="intruder@x.iam.gserviceaccount.com"),
     ForbiddenError),
    ("email not verified", lambda k: google_id_token(k, email_verified=False), ForbiddenError),
    ("wrong audience", lambda k: google_id_token(k, aud="https://elsewhere.a.run.app"), UnauthorizedError),
    ("expired", lambda k: google_id_token(k, iat=1, exp=2), UnauthorizedError),
    ("signed by another key", lambda k: google_id_token(new_rs256_key("google-key-1")), UnauthorizedError),
], ids=lambda value: value if isinstance(value, str) else "")
def test_other_google_tokens_are_refused(google: FakeGoogleCerts, google_key: KeyPair, case: str,
                                         make: BadGoogle, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_service_caller(bearer(make(google_key)), REGISTRY, google_request=google)


def test_user_token_is_forbidden_and_never_sent_to_google(google: FakeGoogleCerts,
                                                          user_verifier: TokenVerifier) -> None:
    token = mint_hs256(supabase_claims())
    with pytest.raises(ForbiddenError):
        verify_service_caller(bearer(token), REGISTRY, user_verifier=user_verifier, google_request=google)
    with pytest.raises(UnauthorizedError):
        verify_service_caller(bearer(mint_hs256(supabase_claims(), "not-the-secret-0123456789abcdefgh")),
                              REGISTRY, user_verifier=user_verifier, google_request=google)
    assert google.calls == []


def test_unreachable_google_certs_are_auth_unavailable(google: FakeGoogleCerts, google_key: KeyPair) -> None:
    google.status = 500
    with pytest.raises(AuthUnavailableError):
        verify_service_caller(bearer(google_id_token(google_key)), REGISTRY, google_request=google)


def test_no_scheduler_configuration_is_a_configuration_error(google_key: KeyPair) -> None:
    with pytest.raises(ConfigurationError):
        verify_service_caller(bearer(google_id_token(google_key)), RegistrySettings())
