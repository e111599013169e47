"""A small, thread-safe cache of a JWKS endpoint's public signing keys.

Each key is bound to exactly one algorithm, decided by its key type (EC P-256 -> ES256, RSA -> RS256),
never by a token. The set is fetched on first use and again after ``lifespan_seconds``. A token whose
``kid`` is not in the set forces one refresh, at most once per ``refresh_cooldown_seconds``, so a flood
of made-up key ids cannot turn into a flood of fetches. When a refresh fails and keys are already
cached, the cached keys stay in use (and the failure is logged); with no keys at all the caller gets
:class:`~common.errors.AuthUnavailableError`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from common.errors import AuthUnavailableError, UnauthorizedError

log = logging.getLogger(__name__)

# Key type (and curve) -> the one algorithm such a key verifies. Supabase signs with ES256 or RS256.
_ALGORITHM_FOR_KEY = {("EC", "P-256"): "ES256", ("RSA", None): "RS256"}
_MAX_JWKS_BYTES = 256 * 1024

Fetch = Callable[[str, float], Mapping[str, Any]]


@dataclass(frozen=True)
class SigningKey:
    """A public key and the only algorithm it may verify."""

    kid: str
    algorithm: str
    key: Any


def fetch_jwks(url: str, timeout: float) -> Mapping[str, Any]:
    """GET the JWKS document; raises AuthUnavailableError when it cannot be read."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "docchat-auth"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) checked by settings)
            body = response.read(_MAX_JWKS_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise AuthUnavailableError("The signing keys could not be fetched.") from exc
    if len(body) > _MAX_JWKS_BYTES:
        raise AuthUnavailableError("The signing key set is too large.")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise AuthUnavailableError("The signing key set is not JSON.") from exc
    if not isinstance(document, dict):
        raise AuthUnavailableError("The signing key set is not a JSON object.")
    return document


def parse_jwks(document: Mapping[str, Any]) -> dict[str, SigningKey]:
    """The usable verification keys of a JWKS document, by ``kid``; unusable entries are logged."""
    keys: dict[str, SigningKey] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise AuthUnavailableError("The signing key set has no 'keys' list.")
    for entry in entries:
        if not isinstance(entry, dict):
            log.warning("jwks entry ignored: not an object")
            continue
        kid = entry.get("kid")
        kty = entry.get("kty")
        algorithm = _ALGORITHM_FOR_KEY.get((kty, entry.get("crv") if kty == "EC" else None))
        usable = (
            isinstance(kid, str) and kid
            and algorithm is not None
            and entry.get("alg", algorithm) == algorithm
            and entry.get("use", "sig") == "sig"
            and "verify" in entry.get("key_ops", ["verify"])
        )
        if not usable:
            log.warning("jwks entry ignored: kid=%r kty=%r alg=%r is not an ES256/RS256 verification key",
                        kid, kty, entry.get("alg"))
            continue
        try:
            public_key = jwt.PyJWK(entry, algorithm).key
        except jwt.PyJWTError as exc:
            log.warning("jwks entry ignored: kid=%r cannot be loaded (%s)", kid, exc)
            continue
        keys[kid] = SigningKey(kid=kid, algorithm=algorithm, key=public_key)
    return keys


class JwksCache:
    """The signing keys of one JWKS URL, cached per process; see the module docstring."""

    def __init__(self, url: str, *, lifespan_seconds: float = 600.0, refresh_cooldown_seconds: float = 30.0,
                 failure_backoff_seconds: float = 5.0, timeout_seconds: float = 5.0,
                 fetch: Fetch = fetch_jwks, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._lifespan = lifespan_seconds
        self._cooldown = refresh_cooldown_seconds
        self._backoff = failure_backoff_seconds
        self._timeout = timeout_seconds
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] | None = None
        self._fetched_at = 0.0
        self._forced_at: float | None = None
        self._failed_at: float | None = None
        self.fetch_count = 0

    def key_for(self, kid: str) -> SigningKey:
        """The key with this ``kid``; raises UnauthorizedError when the key set does not hold it,
        AuthUnavailableError when no key set could be fetched."""
        with self._lock:
            now = self._clock()
            fetched_now = False
            if self._keys is None or now - self._fetched_at >= self._lifespan:
                fetched_now = self._refresh(now)
            key = self._keys.get(kid) if self._keys is not None else None
            if key is None and not fetched_now and self._may_force(now):
                self._forced_at = now
                self._refresh(now)
                key = self._keys.get(kid) if self._keys is not None else None
            if key is None:
                raise UnauthorizedError("The access token was signed with an unknown key.")
            return key

    def _may_force(self, now: float) -> bool:
        return self._forced_at is None or now - self._forced_at >= self._cooldown

    def _refresh(self, now: float) -> bool:
        """Fetch the set; True when fresh keys were stored. Keeps stale keys when a fetch fails."""
        if self._failed_at is not None and now - self._failed_at < self._backoff:
            if self._keys is None:
                raise AuthUnavailableError("The signing keys could not be fetched; retrying shortly.")
            return False
        self.fetch_count += 1
        try:
            keys = parse_jwks(self._fetch(self.url, self._timeout))
        except AuthUnavailableError:
            self._failed_at = now
            if self._keys is None:
                raise
            log.warning("jwks refresh failed; keeping %d cached keys", len(self._keys), exc_info=True)
            return False
        self._keys, self._fetched_at, self._failed_at = keys, now, None
        return True
