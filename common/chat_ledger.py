"""The chat-turn ledger: the only module that calls the chat-turn SQL functions (begin, record the
response id, finish, fail). Each function here is one operation of the turn's bookkeeping.

The Python shapes are those of the backend API (called as the service role acting for the user);
the calls below run on the current user-API functions of ``sql/030_sessions_chat.sql`` with the
caller's own identity. Where those lack a piece the adapter says so:

- the per-minute turn limit is read with ``get_recent_turns`` just before ``begin_chat_turn``;
- ``record_response`` has no SQL function yet: it logs the response id against the message, and the
  id is stored by ``finish``/``fail``;
- usage rows get their ledger key (the response id and the service) here;
- retrieval, the price version and the incomplete reason are not stored yet.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from common.db.base import Database, Identity
from common.errors import BudgetExceededError, RateLimitedError

log = logging.getLogger(__name__)


def _caller(identity: Identity) -> Identity:
    """Who the chat-turn functions run as (the backend API takes ``Identity.backend(user_id)``)."""
    return identity


def begin(db: Database, identity: Identity, *, request_id: str, message: str, max_cost_usd: Decimal,
          session_id: str | None = None, document_ids: Sequence[str] | None = None,
          max_turns_per_minute: int | None = None, max_message_chars: int | None = None) -> dict[str, Any]:
    """Check the account, session, documents, rate and budget; store the user's message and the
    turn's reservation. Returns ``{session, user_message_id, assistant_message_id, conversation_id,
    vector_store_id, document_ids, budget, replayed}``. Raises RateLimitedError (with retry_after),
    BudgetExceededError (with spent and reset), NotFoundError, InvalidInputError, UserDisabledError."""
    del max_message_chars  # checked by the route before the call; the SQL has its own hard limit
    caller = _caller(identity)
    if max_turns_per_minute is not None:
        recent = db.call("get_recent_turns", {"p_window_seconds": 60}, caller)
        if recent["turns"] >= max_turns_per_minute:
            raise RateLimitedError(f"At most {max_turns_per_minute} chat turns a minute.",
                                   retry_after=int(recent["retry_after_seconds"]))
    args: dict[str, Any] = {"p_message": message, "p_max_cost_usd": max_cost_usd, "p_request_id": request_id}
    if session_id is not None:
        args["p_session_id"] = session_id
    if document_ids is not None:
        args["p_document_ids"] = list(document_ids)
    try:
        begun = db.call("begin_chat_turn", args, caller)
    except BudgetExceededError as exc:
        budget = db.call("get_my_profile", {}, caller)["budget"]
        raise BudgetExceededError(
            "The monthly budget is exhausted.",
            extra={"spent_usd": str(budget["spent_usd"]), "reserved_usd": str(budget["reserved_usd"]),
                   "monthly_budget_usd": str(budget["monthly_budget_usd"]), "resets_at": _next_month()},
        ) from exc
    return {**begun, "replayed": False}


def record_response(db: Database, identity: Identity, *, message_id: str, response_id: str,
                    conversation_id: str | None = None) -> None:
    """Note the OpenAI response id of a running turn as soon as it is known, so a turn whose finish
    never arrives can be settled from it. No SQL function yet: the id is logged against the message
    (and stored by :func:`finish` or :func:`fail`)."""
    del db, identity
    log.info("chat turn %s has OpenAI response %s (conversation %s)", message_id, response_id, conversation_id)


def finish(db: Database, identity: Identity, *, message_id: str, response_id: str, model: str, content: str,
           citations: Sequence[Mapping[str, Any]], retrieval: Sequence[Mapping[str, Any]],
           usage: Mapping[str, Any], usage_rows: Sequence[Mapping[str, Any]], cost_usd: Decimal,
           price_version: str | None, latency_ms: int, incomplete_reason: str | None = None,
           conversation_id: str | None = None) -> dict[str, Any]:
    """Store the answer, citations, usage rows and cost and settle the reservation, in one call;
    idempotent by response id. Returns ``{message, session, budget}``. Raises DatabaseUnavailableError
    when the database cannot be reached, ConflictError when the turn was already settled otherwise."""
    del retrieval, price_version, incomplete_reason  # no columns for them yet
    args: dict[str, Any] = {
        "p_message_id": message_id, "p_content": content, "p_citations": list(citations),
        "p_response_id": response_id, "p_model": model, "p_usage": dict(usage), "p_cost_usd": cost_usd,
        "p_latency_ms": latency_ms, "p_usage_rows": _keyed(usage_rows, response_id),
    }
    if conversation_id is not None:
        args["p_conversation_id"] = conversation_id
    return db.call("finish_chat_turn", args, _caller(identity))


def fail(db: Database, identity: Identity, *, message_id: str, error_code: str, error_message: str,
         usage_rows: Sequence[Mapping[str, Any]] = (), cost_usd: Decimal = Decimal(0),
         price_version: str | None = None, response_id: str | None = None,
         conversation_id: str | None = None) -> dict[str, Any]:
    """Mark the turn failed with its reason, record what OpenAI did bill, release the reservation.
    Returns ``{message, budget}``."""
    del cost_usd, price_version  # today's function sums the rows itself
    args: dict[str, Any] = {"p_message_id": message_id, "p_error_code": error_code,
                            "p_error_message": error_message,
                            "p_usage_rows": _keyed(usage_rows, response_id or f"failed:{message_id}")}
    if conversation_id is not None:
        args["p_conversation_id"] = conversation_id
    return db.call("fail_chat_turn", args, _caller(identity))


def _keyed(rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{**row, "request_id": f"{key}:{row['service']}"} for row in rows]


def _next_month() -> str:
    """When a monthly budget resets: the first instant of next month, UTC (D7)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    first = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(first, dt.time(), dt.timezone.utc).isoformat()
