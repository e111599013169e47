"""The chat-turn ledger: the only module that calls the chat-turn SQL functions (backend API,
``sql/071_chat_turns.sql``), always as ``Identity.backend(user_id)`` for the user whose token was
verified (or, when a stale turn is settled, the user the turn belongs to).

    begin            begin_chat_turn       checks (account, session, documents, rate, budget), the user's
                                           message and the turn's reservation
    record_response  record_chat_response  a new session's conversation, as soon as it is made; the
                                           OpenAI response id, at ``response.created``
    settle_result    finish_chat_turn      a response OpenAI ended: priced, its citations quoted
                     or fail_chat_turn     (a failed or cancelled response: the error and what it billed)
    fail             fail_chat_turn        the error and any cost OpenAI billed; releases the reservation
    list_stale       list_stale_chat_turns pending turns older than a threshold, for settlement

Ledger keys of usage rows are made by the database; costs are computed here from the usage OpenAI
reported, with the price table's version stored beside them (D7).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from common.citations import quote_citations
from common.db.base import Database, Identity
from common.pricing import PriceTable, TokenUsage
from common.usage import log_budget_alerts

_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,100}$")
SETTLED_FAILED = frozenset({"failed", "cancelled"})


def begin(db: Database, user_id: str, *, request_id: str, message: str, max_cost_usd: Decimal,
          max_turns_per_minute: int, max_message_chars: int, session_id: str | None = None,
          document_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Open a turn in one call. Returns ``{session, user_message_id, assistant_message_id,
    conversation_id, vector_store_id, document_ids, budget, replayed}`` (a replay of ``request_id``
    also carries the stored ``message``). Raises RateLimitedError (retry_after), BudgetExceededError
    (extra: spent_usd, reserved_usd, monthly_budget_usd, resets_on), NotFoundError, PayloadTooLargeError,
    InvalidInputError, UserDisabledError, DatabaseUnavailableError."""
    args: dict[str, Any] = {"p_request_id": request_id, "p_message": message, "p_max_cost_usd": max_cost_usd,
                            "p_max_turns_per_minute": max_turns_per_minute, "p_max_message_chars": max_message_chars}
    if session_id is not None:
        args["p_session_id"] = session_id
    if document_ids is not None:
        args["p_document_ids"] = list(document_ids)
    begun: dict[str, Any] = db.call("begin_chat_turn", args, Identity.backend(user_id))
    return begun


def record_response(db: Database, user_id: str, *, message_id: str, response_id: str | None,
                    conversation_id: str | None) -> None:
    """Store the OpenAI ids of a running turn: a new session's conversation as soon as it is made
    (``response_id`` None), the response id as soon as OpenAI announces it, so a turn whose finish
    never arrives is settled from them. Raises ConflictError when the turn has another response,
    DatabaseUnavailableError when the database cannot be reached."""
    args: dict[str, Any] = {"p_message_id": message_id}
    if response_id is not None:
        args["p_response_id"] = response_id
    if conversation_id is not None:
        args["p_conversation_id"] = conversation_id
    db.call("record_chat_response", args, Identity.backend(user_id))


def usage_rows(model: str, usage: TokenUsage, token_cost: Decimal, search_cost: Decimal) -> list[dict[str, Any]]:
    """The ledger rows of one response: tokens (by kind), and file-search calls when any ran."""
    rows: list[dict[str, Any]] = [{
        "service": "chat", "model": model, "input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens, "cost_usd": token_cost}]
    if usage.file_search_calls:
        rows.append({"service": "file_search", "model": model, "tool_calls": usage.file_search_calls,
                     "quantity": usage.file_search_calls, "cost_usd": search_cost})
    return rows


def usage_object(usage: TokenUsage) -> dict[str, int]:
    """The usage as stored with the message (token counts by kind and file-search calls)."""
    return {"input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens, "file_search_calls": usage.file_search_calls}


def failure_code(code: object, fallback: str) -> str:
    """An error code the ledger accepts (OpenAI's, when it has the right shape), else ``fallback``."""
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else fallback


def settle_result(db: Database, user_id: str, *, message_id: str, result: Any, prices: PriceTable, model: str,
                  latency_ms: int, conversation_id: str | None) -> dict[str, Any]:
    """Record a response OpenAI ended (a ``common.openai.responses.TurnResult`` whose ``settled`` is
    true), priced by ``model`` (the model asked for: OpenAI may answer with a dated snapshot name).
    Completed or incomplete: finish_chat_turn with the quoted citations, the retrieved chunks, the
    usage, the cost and the incomplete reason; failed or cancelled: fail_chat_turn with what it
    billed. Returns the SQL answer (``{message, ...}``). Idempotent by response id; raises what the
    database call raises (ConflictError for a turn settled otherwise)."""
    cost = prices.turn_cost(model, result.usage)
    rows = usage_rows(model, result.usage, cost.tokens, cost.file_search)
    if result.status in SETTLED_FAILED:
        failed = fail(db, user_id, message_id=message_id, error_code=f"openai_{result.status}",
                      error_message=result.error or f"OpenAI's response ended {result.status}.", usage_rows=rows,
                      cost_usd=cost.total, price_version=cost.price_version, response_id=result.response_id,
                      conversation_id=conversation_id)
        return failed
    citations = quote_citations(result.text, result.citations, result.retrieved)
    args: dict[str, Any] = {
        "p_message_id": message_id, "p_response_id": result.response_id, "p_model": result.model,
        "p_content": result.text, "p_citations": [c.as_json() for c in citations],
        "p_retrieval": [{"document_id": c.document_id, "text": c.text, "score": c.score} for c in result.retrieved],
        "p_usage": usage_object(result.usage), "p_usage_rows": rows, "p_cost_usd": cost.total,
        "p_price_version": cost.price_version, "p_latency_ms": max(0, latency_ms),
        "p_incomplete_reason": result.incomplete_reason,
    }
    if conversation_id is not None:
        args["p_conversation_id"] = conversation_id
    finished: dict[str, Any] = db.call("finish_chat_turn", args, Identity.backend(user_id))
    log_budget_alerts(user_id, finished["budget_alerts"])
    return finished


def fail(db: Database, user_id: str, *, message_id: str, error_code: str, error_message: str,
         usage_rows: Sequence[Mapping[str, Any]] = (), cost_usd: Decimal = Decimal(0),
         price_version: str | None = None, response_id: str | None = None,
         conversation_id: str | None = None) -> dict[str, Any]:
    """Mark the turn failed with its reason, record what OpenAI did bill (rows adding up to
    ``cost_usd``), release the reservation. Returns ``{message, budget}``; a repeat with the same
    code bills nothing more. Raises ConflictError when the turn was settled otherwise."""
    args: dict[str, Any] = {"p_message_id": message_id, "p_error_code": error_code, "p_error_message": error_message,
                            "p_usage_rows": list(usage_rows), "p_cost_usd": cost_usd}
    if price_version is not None:
        args["p_price_version"] = price_version
    if response_id is not None:
        args["p_response_id"] = response_id
    if conversation_id is not None:
        args["p_conversation_id"] = conversation_id
    failed: dict[str, Any] = db.call("fail_chat_turn", args, Identity.backend(user_id))
    return failed


def list_stale(db: Database, *, older_than_seconds: int, limit: int) -> list[dict[str, Any]]:
    """Pending turns older than ``older_than_seconds``, oldest first: ``[{message_id, user_id,
    session_id, response_id, created_at}]`` (service role)."""
    stale: list[dict[str, Any]] = db.call("list_stale_chat_turns", {"p_older_than_seconds": older_than_seconds,
                                                                    "p_limit": limit}, Identity.service())
    return stale
