"""One chat turn (DESIGN.md "Chat turn"): begin (one SQL call: checks, the user's message and a
reservation) -> the session's OpenAI conversation, created on its first turn -> the answer streamed
from OpenAI -> quotes for its citations -> finish (one SQL call: answer, citations, usage rows, cost).

:func:`begin_turn` raises before anything is streamed (404, 402, 429, 403 answer as plain errors).
:func:`run_turn` yields ``(event, data)`` pairs — ``session``, ``delta``..., ``citation``...,
``done`` — and raises an :class:`~common.errors.AppError` when the turn fails; by then the failure is
recorded on the turn (the user's message stays, the reservation is released, only what OpenAI
billed is charged). The same generator serves a streamed answer and a collected one
(:func:`collect_turn`). Every OpenAI call goes through ``ChatModel`` and every chat-turn SQL call
through :mod:`common.chat_ledger`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common import chat_ledger
from common.citations import quote_citations
from common.db.base import Database, Identity
from common.errors import (
    AppError,
    ConflictError,
    DatabaseUnavailableError,
    RateLimitedError,
    UpstreamError,
    UpstreamUnavailableError,
)
from common.pricing import PriceTable, TokenUsage
from common.sessions import message_out, session_out
from common.settings import ChatSettings, OpenAISettings

log = logging.getLogger(__name__)

FINISH_ATTEMPTS = 3
FINISH_BACKOFF_SECONDS = (0.2, 0.6)
Event = tuple[str, Any]


@dataclass(frozen=True)
class TurnAsk:
    """What the user asked, as validated by the route."""

    message: str
    request_id: str
    session_id: str | None = None
    document_ids: list[str] | None = None


@dataclass(frozen=True)
class ChatParts:
    """The turn's collaborators: the database, the OpenAI chat model, prices and limits."""

    database: Database
    model: Any  # common.openai.responses.ChatModel (not imported here: cold start)
    prices: PriceTable
    openai: OpenAISettings
    limits: ChatSettings


def reservation(parts: ChatParts) -> Decimal:
    """The worst-case cost of one bounded turn, reserved against the budget while it runs."""
    return parts.prices.max_turn_cost(parts.openai.model, max_input_tokens=parts.limits.max_input_tokens,
                                      max_output_tokens=parts.openai.max_output_tokens,
                                      max_tool_calls=parts.openai.max_tool_calls)


def begin_turn(parts: ChatParts, identity: Identity, ask: TurnAsk) -> dict[str, Any]:
    """Open the turn in the database; raises NotFoundError, BudgetExceededError, RateLimitedError,
    UserDisabledError or InvalidInputError before any OpenAI call, and ConflictError when this
    request id already began a turn (its answer is in the session's history)."""
    begun = chat_ledger.begin(parts.database, identity, request_id=ask.request_id, message=ask.message,
                             max_cost_usd=reservation(parts), session_id=ask.session_id,
                             document_ids=ask.document_ids, max_turns_per_minute=parts.limits.turns_per_minute,
                             max_message_chars=parts.limits.max_message_chars)
    if begun["replayed"]:
        raise ConflictError("This request already began a turn; its answer is in the session's history.",
                            extra={"session_id": str(begun["session"]["id"])})
    return begun


def run_turn(parts: ChatParts, identity: Identity, ask: TurnAsk, begun: dict[str, Any]) -> Iterator[Event]:
    """The turn's events after :func:`begin_turn`; see the module docstring. Raises the turn's error
    (RateLimitedError 429, UpstreamUnavailableError 503, UpstreamError 502, DatabaseUnavailableError 503)."""
    from common.openai.responses import TextDelta, TurnRequest, TurnResult

    session_id = str(begun["session"]["id"])
    message_id = str(begun["assistant_message_id"])
    yield "session", {"session_id": session_id, "user_message_id": str(begun["user_message_id"]),
                      "assistant_message_id": message_id}
    started = time.monotonic()
    conversation_id = begun.get("conversation_id")
    result: Any = None
    try:
        if conversation_id is None:
            conversation_id = parts.model.create_conversation(session_id=session_id)
        turn = TurnRequest(user_id=str(identity.user_id), message=ask.message, session_id=session_id,
                           message_id=message_id, vector_store_id=begun.get("vector_store_id"),
                           document_ids=[str(d) for d in begun.get("document_ids") or []],
                           conversation_id=conversation_id)
        for item in parts.model.stream(turn):
            if isinstance(item, TurnResult):
                result = item
            elif isinstance(item, TextDelta):
                yield "delta", {"text": item.text}
        if result is None:
            raise UpstreamError("OpenAI's stream ended without a final response.")
    except AppError as error:
        raise _record_failure(parts, identity, message_id, conversation_id, error) from error
    # Today's ChatModel.stream announces the response id only with its result; a stream that calls
    # on_created(response_id) at response.created gets this call as that hook instead.
    chat_ledger.record_response(parts.database, identity, message_id=message_id, response_id=result.response_id,
                                conversation_id=conversation_id)
    # Priced by the model asked for: OpenAI may answer with a dated snapshot name of it.
    usage: TokenUsage = result.usage
    cost = parts.prices.turn_cost(parts.openai.model, usage)
    rows = usage_rows(parts.openai.model, usage, cost.tokens, cost.file_search)
    if result.status == "failed":
        failure = UpstreamError("OpenAI could not answer this turn.")
        _record_failure(parts, identity, message_id, conversation_id, failure, rows=rows, cost=cost.total,
                        response_id=result.response_id)
        raise failure
    citations = quote_citations(result.text, result.citations, result.retrieved)
    for citation in citations:
        yield "citation", citation.as_json()
    finished = _finish(parts, identity, message_id, result, citations=[c.as_json() for c in citations],
                       retrieval=[{"document_id": c.document_id, "text": c.text, "score": c.score}
                                  for c in result.retrieved],
                       usage=usage, rows=rows, cost=cost.total, conversation_id=conversation_id,
                       latency_ms=round((time.monotonic() - started) * 1000))
    message = message_out(finished["message"])
    yield "done", {"session_id": session_id, "message": message, "session": session_out(finished["session"]),
                   "usage": message["usage"], "cost_usd": message["cost_usd"]}


def collect_turn(events: Iterator[Event]) -> dict[str, Any]:
    """Run a turn to its end; the ``done`` data (the stored message, usage and cost)."""
    done: dict[str, Any] | None = None
    for name, data in events:
        if name == "done":
            done = data
    if done is None:
        raise UpstreamError("The turn ended without an answer.")
    return done


def usage_rows(model: str, usage: TokenUsage, token_cost: Decimal, search_cost: Decimal) -> list[dict[str, Any]]:
    """The ledger rows of one answered turn: tokens (by kind), and file-search calls when any ran."""
    rows: list[dict[str, Any]] = [{
        "service": "chat", "model": model, "input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens, "cost_usd": token_cost}]
    if usage.file_search_calls:
        rows.append({"service": "file_search", "model": model, "tool_calls": usage.file_search_calls,
                     "quantity": usage.file_search_calls, "cost_usd": search_cost})
    return rows


def _turn_error(error: AppError) -> AppError:
    """OpenAI's 429 ``insufficient_quota`` is an outage of the account, not a rate: 503."""
    cause = error.__cause__
    if isinstance(error, RateLimitedError) and getattr(cause, "code", None) == "insufficient_quota":
        return UpstreamUnavailableError("The AI provider's quota is exhausted.", extra=error.extra)
    return error


def _failure_code(error: AppError) -> str:
    cause = error.__cause__
    code = getattr(cause, "code", None)
    return code if isinstance(code, str) and code else error.code


def _record_failure(parts: ChatParts, identity: Identity, message_id: str, conversation_id: str | None,
                    error: AppError, *, rows: list[dict[str, Any]] | None = None, cost: Decimal = Decimal(0),
                    response_id: str | None = None) -> AppError:
    """Record the turn as failed; returns the error to answer with (the database's when even the
    failure cannot be recorded: the turn stays pending and is settled later)."""
    answer = _turn_error(error)
    try:
        chat_ledger.fail(parts.database, identity, message_id=message_id, error_code=_failure_code(error),
                         error_message=error.detail, usage_rows=rows or [], cost_usd=cost,
                         response_id=response_id, conversation_id=conversation_id)
    except DatabaseUnavailableError as db_error:
        log.error("chat turn %s failed (%s) and the failure could not be recorded", message_id, error.code)
        return db_error
    return answer


def _finish(parts: ChatParts, identity: Identity, message_id: str, result: Any, *, citations: list[dict[str, Any]],
            retrieval: list[dict[str, Any]], usage: TokenUsage, rows: list[dict[str, Any]], cost: Decimal,
            conversation_id: str | None, latency_ms: int) -> dict[str, Any]:
    """Store the answer; a database failure is retried briefly (finish is idempotent by response id),
    then DatabaseUnavailableError with the response id logged at ERROR."""
    usage_json = {"input_tokens": usage.input_tokens, "cached_tokens": usage.cached_tokens,
                  "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
                  "reasoning_tokens": usage.reasoning_tokens, "file_search_calls": usage.file_search_calls}
    for attempt in range(FINISH_ATTEMPTS):
        try:
            return chat_ledger.finish(
                parts.database, identity, message_id=message_id, response_id=result.response_id, model=result.model,
                content=result.text, citations=citations, retrieval=retrieval, usage=usage_json, usage_rows=rows,
                cost_usd=cost, price_version=None, latency_ms=latency_ms,
                incomplete_reason=result.incomplete_reason, conversation_id=conversation_id)
        except DatabaseUnavailableError as error:
            if attempt + 1 == FINISH_ATTEMPTS:
                log.error("chat turn %s answered by OpenAI response %s could not be stored", message_id,
                          result.response_id)
                raise DatabaseUnavailableError("The answer could not be stored; it will be settled later.") from error
            time.sleep(FINISH_BACKOFF_SECONDS[attempt])
    raise AssertionError("unreachable")
