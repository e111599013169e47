"""One chat turn (DESIGN.md "Chat turn"): begin (one SQL call: checks, the user's message and a
reservation) -> the session's OpenAI conversation, created on its first turn -> the answer streamed
from OpenAI -> quotes for its citations -> finish (one SQL call: answer, citations, usage rows, cost).

:func:`begin_turn` raises before anything is streamed (404, 402, 429, 403 answer as plain errors).
:func:`run_turn` yields ``(event, data)`` pairs — ``session``, ``delta``..., ``citation``...,
``done`` — and raises an :class:`~common.errors.AppError` when the turn fails; by then the failure is
recorded on the turn (the user's message stays, the reservation is released, only what OpenAI
billed is charged). The response id is stored at ``response.created``, before anything else can
fail: a stream that breaks after it leaves the turn pending, and the registry refresh settles it
from OpenAI (:mod:`common.turn_settlement`). A citation is sent twice: as it arrives in the stream
(``provisional: true``: its document, no quote yet), and resolved with its quote once the answer is
stored (``provisional: false``, as the history shows it): a quote needs the whole sentence it
supports and the retrieved chunks, which come with the final response. The same generator serves a
streamed answer and a collected one (:func:`collect_turn`). Every OpenAI call goes through ``ChatModel`` and every chat-turn SQL call
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
from common.citations import provisional_citation
from common.db.base import Database
from common.errors import (
    AppError,
    ConflictError,
    DatabaseUnavailableError,
    IdempotencyInProgressError,
    IdempotencyMismatchError,
    UpstreamError,
)
from common.pricing import PriceTable
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


def begin_turn(parts: ChatParts, user_id: str, ask: TurnAsk) -> dict[str, Any]:
    """Open the turn in the database (one call); raises NotFoundError, BudgetExceededError,
    RateLimitedError, PayloadTooLargeError, UserDisabledError or InvalidInputError before any OpenAI call.

    A request id (``Idempotency-Key``) that already began a turn is a replay: a completed turn is
    answered again as stored (:func:`run_turn` yields it without asking OpenAI); one still running
    raises IdempotencyInProgressError (409, Retry-After); a failed one raises ConflictError (409)
    naming its error code, since asking again needs a new key. The key sent with another message (or
    session) raises IdempotencyMismatchError (422)."""
    begun = chat_ledger.begin(parts.database, user_id, request_id=ask.request_id, message=ask.message,
                              max_cost_usd=reservation(parts), session_id=ask.session_id,
                              document_ids=ask.document_ids, max_turns_per_minute=parts.limits.turns_per_minute,
                              max_message_chars=parts.limits.max_message_chars)
    if begun["replayed"]:
        if not begun["same_request"]:
            raise IdempotencyMismatchError("This Idempotency-Key began a turn with another message.")
        status = begun["message"]["status"]
        extra = {"session_id": str(begun["session"]["id"]), "message_id": str(begun["assistant_message_id"])}
        if status == "pending":
            raise IdempotencyInProgressError("The turn of this Idempotency-Key is still running.", extra=extra)
        if status == "failed":
            raise ConflictError("The turn of this Idempotency-Key failed; ask again with a new key.",
                                extra={**extra, "error_code": begun["message"]["error_code"]})
    return begun


def run_turn(parts: ChatParts, user_id: str, ask: TurnAsk, begun: dict[str, Any]) -> Iterator[Event]:
    """The turn's events after :func:`begin_turn`; see the module docstring. Raises the turn's error
    (RateLimitedError 429, UpstreamUnavailableError or OpenAIQuotaExhaustedError 503, UpstreamError
    502, DatabaseUnavailableError 503)."""
    from common.openai.responses import CitationFound, TextDelta, TurnRequest, TurnResult

    session_id = str(begun["session"]["id"])
    message_id = str(begun["assistant_message_id"])
    yield "session", {"session_id": session_id, "user_message_id": str(begun["user_message_id"]),
                      "assistant_message_id": message_id}
    if begun["replayed"]:
        yield from _answer_events(session_id, begun["message"], begun["session"])
        return
    started = time.monotonic()
    conversation_id: str | None = begun.get("conversation_id")
    announced: list[str] = []  # the response id, once OpenAI has made the response
    recorded: list[str] = []  # ... and once the database holds it

    def on_created(response_id: str) -> None:
        announced.append(response_id)
        try:
            chat_ledger.record_response(parts.database, user_id, message_id=message_id, response_id=response_id,
                                        conversation_id=conversation_id)
        except DatabaseUnavailableError as error:
            # OpenAI runs (and bills) the response whatever happens here: read it to its end, and the
            # finish, retried, records the response id with its usage.
            log.warning("chat turn %s: OpenAI response %s could not be recorded at response.created (%s);"
                        " the finish records it", message_id, response_id, error.code)
            return
        recorded.append(response_id)

    result: Any = None
    try:
        if conversation_id is None:
            conversation_id = parts.model.create_conversation(session_id=session_id)
            # Known to the database before the model call, so a turn whose response id is never
            # stored can still be settled through its conversation.
            chat_ledger.record_response(parts.database, user_id, message_id=message_id, response_id=None,
                                        conversation_id=conversation_id)
        turn = TurnRequest(user_id=user_id, message=ask.message, session_id=session_id, message_id=message_id,
                           vector_store_id=begun.get("vector_store_id"),
                           document_ids=[str(d) for d in begun.get("document_ids") or []],
                           conversation_id=conversation_id)
        for item in parts.model.stream(turn, on_created=on_created):
            if isinstance(item, TurnResult):
                result = item
            elif isinstance(item, TextDelta):
                yield "delta", {"text": item.text}
            elif isinstance(item, CitationFound):
                yield "citation", {**provisional_citation(item.filename, item.index), "provisional": True}
    except AppError as error:
        if announced and not recorded:  # OpenAI made the response; the database has not got its id
            try:
                chat_ledger.record_response(parts.database, user_id, message_id=message_id,
                                            response_id=announced[0], conversation_id=conversation_id)
            except DatabaseUnavailableError as db_error:
                _note_in_conversation(parts, session_id, message_id, conversation_id, announced[0])
                raise db_error from error
            recorded.append(announced[0])
        if recorded:
            raise _left_for_settlement(message_id, recorded[0], error) from error
        raise _record_failure(parts, user_id, message_id, conversation_id, error) from error
    if result is None:  # pragma: no cover - ChatModel.stream ends with a TurnResult or raises
        raise UpstreamError("OpenAI's stream ended without a final response.")
    try:
        finished = _settle(parts, user_id, message_id, result, conversation_id,
                           latency_ms=round((time.monotonic() - started) * 1000))
    except DatabaseUnavailableError:
        if not recorded:
            _note_in_conversation(parts, session_id, message_id, conversation_id, result.response_id)
        raise
    if finished["message"]["status"] == "failed":
        raise UpstreamError("OpenAI could not answer this turn.", extra={"error_code": finished["message"]["error_code"]})
    yield from _answer_events(session_id, finished["message"], finished["session"])


def _answer_events(session_id: str, stored: dict[str, Any], session: dict[str, Any]) -> Iterator[Event]:
    """``citation`` for each resolved citation (as stored, ``provisional: false``), then ``done`` with
    the stored message."""
    message = message_out(stored)
    for citation in message["citations"]:
        yield "citation", {**citation, "provisional": False}
    yield "done", {"session_id": session_id, "message": message, "session": session_out(session),
                   "usage": message["usage"], "cost_usd": message["cost_usd"]}


def collect_turn(events: Iterator[Event]) -> dict[str, Any]:
    """Run a turn to its end; the ``done`` data (the stored message, usage and cost)."""
    done: dict[str, Any] | None = None
    for name, data in events:
        if name == "done":
            done = data
    if done is None:  # pragma: no cover - run_turn ends with done or raises
        raise UpstreamError("The turn ended without an answer.")
    return done


def _left_for_settlement(message_id: str, response_id: str, error: AppError) -> AppError:
    """The stream broke after OpenAI made the response: it may still finish and bill, so the turn
    stays pending with its response id and the registry refresh settles it from OpenAI."""
    log.warning("chat turn %s lost its stream (%s); OpenAI response %s is left for settlement", message_id,
                error.code, response_id)
    return UpstreamError("The answer's stream broke; the answer is settled from OpenAI and appears in the "
                         "session's history.", extra={"message_id": message_id})


def _record_failure(parts: ChatParts, user_id: str, message_id: str, conversation_id: str | None,
                    error: AppError) -> AppError:
    """Record the turn as failed, with no cost (OpenAI did not run it); returns the error to answer
    with (the database's when even the failure cannot be recorded: the turn stays pending and is
    settled later)."""
    try:
        chat_ledger.fail(parts.database, user_id, message_id=message_id,
                         error_code=chat_ledger.failure_code(getattr(error.__cause__, "code", None), error.code),
                         error_message=error.detail, conversation_id=conversation_id)
    except DatabaseUnavailableError as db_error:
        log.error("chat turn %s failed (%s) and the failure could not be recorded", message_id, error.code)
        return db_error
    return error


def _note_in_conversation(parts: ChatParts, session_id: str, message_id: str, conversation_id: str | None,
                          response_id: str) -> None:
    """The database holds no response id for this turn and cannot take one now: leave it in the
    turn's conversation, where the registry refresh's settlement finds it (the answer is then billed
    from OpenAI's usage). If that fails too, the ERROR line is the only record of the response."""
    if conversation_id is None:  # pragma: no cover - every model call names its conversation
        return
    try:
        parts.model.note_unrecorded_response(conversation_id, session_id=session_id, message_id=message_id,
                                             response_id=response_id)
    except AppError as error:
        log.error("chat turn %s: OpenAI response %s is recorded nowhere (conversation note failed: %s)",
                  message_id, response_id, error.code)
        return
    log.warning("chat turn %s: OpenAI response %s left in conversation %s for settlement", message_id,
                response_id, conversation_id)


def _settle(parts: ChatParts, user_id: str, message_id: str, result: Any, conversation_id: str | None, *,
            latency_ms: int) -> dict[str, Any]:
    """Store the response; a database failure is retried briefly (idempotent by response id), then
    DatabaseUnavailableError with the response id logged at ERROR (the registry refresh settles it)."""
    for attempt in range(FINISH_ATTEMPTS):
        try:
            return chat_ledger.settle_result(parts.database, user_id, message_id=message_id, result=result,
                                             prices=parts.prices, model=parts.openai.model, latency_ms=latency_ms,
                                             conversation_id=conversation_id)
        except DatabaseUnavailableError as error:
            if attempt + 1 == FINISH_ATTEMPTS:
                log.error("chat turn %s answered by OpenAI response %s could not be stored", message_id,
                          result.response_id)
                raise DatabaseUnavailableError("The answer could not be stored; it will be settled later.") from error
            time.sleep(FINISH_BACKOFF_SECONDS[attempt])
    raise AssertionError("unreachable")


