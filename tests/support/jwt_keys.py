"""Test keys and Supabase-shaped access tokens, plus a loopback JWKS endpoint.

    key = new_es256_key("k1")
    with JwksServer([key]) as jwks:   # jwks.url, jwks.fetches; jwks.keys, fail_with, delay_seconds (mutable)
        token = mint(key, supabase_claims(email="a@example.test"))
    hs = mint_hs256(supabase_claims(), HS256_SECRET)
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


ISSUER = "http://127.0.0.1/auth/v1"  # the test project (database tests' users carry the same)
AUDIENCE = "authenticated"
HS256_SECRET = "test-jwt-secret-with-at-least-32-characters!"


@dataclass(frozen=True)
class KeyPair:
    """A signing key for tests: private half to mint, public half for the JWKS."""

    kid: str
    algorithm: Literal["ES256", "RS256"]
    private_key: Any = field(repr=False)

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as Supabase's JWKS lists it."""
        to_jwk = ECAlgorithm.to_jwk if self.algorithm == "ES256" else RSAAlgorithm.to_jwk
        return {**json.loads(to_jwk(self.public_key)), "kid": self.kid, "alg": self.algorithm,
                "use": "sig", "key_ops": ["verify"]}

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


def new_es256_key(kid: str = "es256-1") -> KeyPair:
    return KeyPair(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def new_rs256_key(kid: str = "rs256-1") -> KeyPair:
    return KeyPair(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks_document(keys: Iterable[KeyPair]) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def supabase_claims(*, sub: str | None = None, email: str | None = None, role: str = "authenticated",
                    issuer: str = ISSUER, audience: str | list[str] = AUDIENCE, expires_in: int = 3600,
                    app_metadata: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Claims shaped like a Supabase user access token; ``overrides`` replace or add claims
    (pass ``name=None`` via :func:`without` to drop one)."""
    now = int(time.time())
    user_id = sub or str(uuid.uuid4())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "exp": now + expires_in,
        "iat": now - 5,
        "sub": user_id,
        "email": email or f"user-{user_id[:8]}@example.test",
        "phone": "",
        "role": role,
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        "app_metadata": dict(app_metadata or {"provider": "email", "providers": ["email"]}),
        "user_metadata": {},
        "amr": [{"method": "password", "timestamp": now - 5}],
    }
    claims.update(overrides)
    return claims


def without(claims: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``claims`` minus the named claims."""
    return {key: value for key, value in claims.items() if key not in names}


def mint(key: KeyPair, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
    """A token signed with ``key`` (its algorithm, its ``kid``)."""
    return jwt.encode(dict(claims), key.private_key, algorithm=key.algorithm,
                      headers={"kid": key.kid, **(headers or {})})


def mint_hs256(claims: Mapping[str, Any], secret: str | bytes = HS256_SECRET, *, kid: str | None = None) -> str:
    """A token signed with a shared secret (the legacy Supabase JWT secret)."""
    return jwt.encode(dict(claims), secret, algorithm="HS256", headers={"kid": kid} if kid else None)


def forge_hs256(claims: Mapping[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """HS256 over arbitrary bytes, e.g. a public key PEM (PyJWT refuses PEM secrets, so sign by hand)."""
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(dict(claims)).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def mint_unsigned(claims: Mapping[str, Any], *, kid: str | None = None) -> str:
    """An ``alg: none`` token (no signature)."""
    header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(dict(claims)).encode()) + "."


def tamper(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return header + "." + _b64(json.dumps(claims).encode()) + "." + signature


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JwksServer:
    """A loopback JWKS endpoint that counts its fetches; ``keys`` may be changed while it runs."""

    def __init__(self, keys: Iterable[KeyPair] = ()) -> None:
        self.keys: list[KeyPair] = list(keys)
        self.fetches = 0
        self.fail_with: int | None = None
        self.delay_seconds = 0.0  # wait this long before answering (a hanging endpoint)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with outer._lock:
                    outer.fetches += 1
                    delay = outer.delay_seconds
                if delay and outer._stopping.wait(delay):
                    return
                with outer._lock:
                    status = outer.fail_with or 200
                    body = json.dumps(jwks_document(outer.keys) if status == 200 else {"error": "down"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None  # keep test output clean; fetches are counted instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="jwks", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/auth/v1/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
