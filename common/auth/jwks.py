"""A small, thread-safe cache of a JWKS endpoint's public signing keys that never stalls requests.

Each key is bound to exactly one algorithm, decided by its key type (EC P-256 -> ES256, RSA -> RS256),
never by a token. How the set is kept:

- **One fetch at a time**, with its own timeout; requests that need its result wait for that one
  fetch (at most its timeout) instead of starting their own.
- **Cached keys are served while a refresh runs.** After ``lifespan_seconds`` the set is refreshed in
  a background thread while requests keep using the cached keys, so a hanging endpoint costs a
  request whose key is cached no more than the cache lookup.
- **An unknown ``kid``** (a rotated-in key) forces one fetch, at most once per
  ``refresh_cooldown_seconds``, so a flood of made-up key ids cannot turn into a flood of fetches;
  within the window such tokens are refused at once.
- **Backoff is measured from the end of a failed fetch** (``failure_backoff_seconds``), so a fetch
  that hangs until its timeout is not retried at once. When a refresh fails the cached keys stay in
  use (the failure is logged); with no keys at all the caller gets
  :class:`~common.errors.AuthUnavailableError`.
- A successful fetch replaces the whole set: keys removed from the JWKS are dropped.
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
    except urllib.error.HTTPError as exc:
        exc.close()  # an error answer holds its connection until closed
        raise AuthUnavailableError("The signing keys could not be fetched.") from exc
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
        self._changed = threading.Condition(self._lock)
        self._keys: dict[str, SigningKey] | None = None
        self._fetched_at = 0.0
        self._fetching = False
        self._generation = 0  # completed fetches, successful or not
        self._forced_at: float | None = None
        self._failed_at: float | None = None
        self._last_error: AuthUnavailableError | None = None
        self.fetch_count = 0

    def key_for(self, kid: str) -> SigningKey:
        """The key with this ``kid``; raises UnauthorizedError when the key set does not hold it,
        AuthUnavailableError when no key set could be fetched."""
        with self._lock:
            now = self._clock()
            keys = self._keys
            key = keys.get(kid) if keys is not None else None
            if key is not None:
                if now - self._fetched_at >= self._lifespan and not self._fetching and self._may_fetch(now):
                    self._begin_fetch()
                    threading.Thread(target=self._run_fetch, name="jwks-refresh", daemon=True).start()
                return key
            if self._fetching:
                generation = self._generation
                run_here = False
            elif self._may_fetch(now) and (keys is None or self._may_force(now)):
                if keys is not None:
                    self._forced_at = now
                self._begin_fetch()
                run_here = True
            elif keys is None:
                raise AuthUnavailableError("The signing keys could not be fetched; retrying shortly.")
            else:
                raise UnauthorizedError("The access token was signed with an unknown key.")
        if run_here:
            self._run_fetch()
        else:
            with self._lock:
                # The running fetch has its own timeout; wait for it, a little longer at most.
                self._changed.wait_for(lambda: self._generation != generation, timeout=self._timeout + 1.0)
        with self._lock:
            if self._keys is None:
                raise AuthUnavailableError("The signing keys could not be fetched.") from self._last_error
            key = self._keys.get(kid)
        if key is None:
            raise UnauthorizedError("The access token was signed with an unknown key.")
        return key

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no fetch is running (a background refresh included); False on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._fetching, timeout=timeout)

    def _may_fetch(self, now: float) -> bool:
        return self._failed_at is None or now - self._failed_at >= self._backoff

    def _may_force(self, now: float) -> bool:
        return self._forced_at is None or now - self._forced_at >= self._cooldown

    def _begin_fetch(self) -> None:
        """Under the lock: mark the one fetch as running."""
        self._fetching = True
        self.fetch_count += 1

    def _run_fetch(self) -> None:
        """Fetch outside the lock, then store the keys (or the failure, timed at its end) and wake waiters."""
        keys: dict[str, SigningKey] | None = None
        error: AuthUnavailableError | None = None
        try:
            keys = parse_jwks(self._fetch(self.url, self._timeout))
        except AuthUnavailableError as exc:
            error = exc
        finally:
            with self._lock:
                end = self._clock()
                if keys is not None:
                    self._keys, self._fetched_at, self._failed_at, self._last_error = keys, end, None, None
                else:
                    self._failed_at, self._last_error = end, error
                    if self._keys is not None:
                        log.warning("jwks refresh failed; keeping %d cached keys: %s", len(self._keys), error)
                    else:
                        log.warning("jwks fetch failed and no keys are cached: %s", error)
                self._fetching = False
                self._generation += 1
                self._changed.notify_all()
