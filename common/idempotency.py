"""``Idempotency-Key`` on POSTs that create things: the first request with a key runs; a retry with the
same key and the same request gets the first response; the same key with a different request is
refused (422); a retry while the first still runs is told to retry later (409). Keys are scoped to
the user and the route. A request that fails is released, so it can be retried with the same key.

The key records are backend API (a stored response is replayed as the service's own answer): they are
written as the service role acting for the verified user (:meth:`Identity.backend`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.db.base import Database, Identity
from common.errors import IdempotencyInProgressError, IdempotencyMismatchError

REPLAY_HEADER = "Idempotent-Replayed"


def run_idempotent(db: Database, identity: Identity, key: str | None, route: str, fingerprint: str,
                   run: Callable[[], tuple[Any, int]]) -> tuple[Any, int, dict[str, str]]:
    """``run()`` once per key; returns (JSON body, status, extra headers).

    ``identity`` is the verified user (or already a backend identity for them). Raises
    IdempotencyInProgressError, IdempotencyMismatchError, and whatever ``run()`` raises."""
    if key is None:
        body, status = run()
        return body, status, {}
    identity = _backend_for(identity)
    begun = db.call("idempotency_begin", {"p_route": route, "p_key": key, "p_fingerprint": fingerprint}, identity)
    state = begun["state"]
    if state == "replay":
        return begun["body"], begun["status"], {REPLAY_HEADER: "true"}
    if state == "in_progress":
        raise IdempotencyInProgressError()
    if state == "mismatch":
        raise IdempotencyMismatchError()
    succeeded = False
    try:
        body, status = run()
        succeeded = True
    finally:
        if not succeeded:
            # Release the key so the client may retry; the failure itself propagates unchanged.
            db.call("idempotency_finish", {"p_route": route, "p_key": key, "p_status": None}, identity)
    db.call("idempotency_finish", {"p_route": route, "p_key": key, "p_status": status, "p_body": body}, identity)
    return body, status, {}


def _backend_for(identity: Identity) -> Identity:
    """The service role acting for the identity's user (the key records are backend API)."""
    if identity.acting_user_id is not None:
        return identity
    if identity.user_id is None:
        raise ValueError("an Idempotency-Key needs a signed-in user")
    return Identity.backend(identity.user_id)
