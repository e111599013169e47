"""Settling chat turns whose finish never arrived, run by the scheduled registry refresh.

A turn stays pending when its request lost OpenAI's stream after ``response.created`` (the response
id is stored by then) or could not store the answer. Each pending turn older than the chat timeout
plus a margin is settled as the backend acting for its user:

    no response id                 -> the one its request left in the session's conversation (when the
                                      database could not take it), settled as below; else, when the
                                      conversation shows the turn answered, fail_chat_turn
                                      ``response_unrecorded`` billed at its reservation (OpenAI's usage
                                      cannot be read without the id: the reservation is its upper
                                      bound; logged at ERROR); else ``turn_abandoned``, no cost
    OpenAI has no such response    -> fail_chat_turn ``response_not_found``, no cost
    the response ended             -> priced from its usage and finished (completed or incomplete: the
                                      answer, its quotes and cost) or failed with what it billed
    still in progress              -> left for the next run, unless older than ``give_up_seconds``:
                                      then failed ``turn_timed_out`` with the cost known so far

Each settlement is one structured log line (event ``chat_turn_settled``); a turn whose settlement
fails is counted as an error and retried by the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from dataclasses import asdict, dataclass
from typing import Any

from common import chat_ledger
from common.db.base import Database
from common.errors import AppError, UpstreamNotFoundError
from common.logging import log_event
from common.pricing import PriceTable, TokenUsage

log = logging.getLogger(__name__)
STALE_MARGIN_SECONDS = 60
GIVE_UP_SECONDS = 6 * 3600
BATCH = 100


@dataclass
class SettlementFigures:
    """What one settlement pass found and did."""

    turns_stale: int = 0
    turns_finished: int = 0
    turns_failed: int = 0
    turns_waiting: int = 0
    turn_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def settle_stale_turns(db: Database, chat: Any, prices: PriceTable, *, model: str, older_than_seconds: int,
                       give_up_seconds: int = GIVE_UP_SECONDS) -> SettlementFigures:
    """Settle up to :data:`BATCH` pending turns older than ``older_than_seconds`` (see the module
    docstring); ``chat`` is the :class:`common.openai.responses.ChatModel`, ``model`` the model the
    turns asked for (their price). Returns the figures; raises what listing the turns raises (an
    error on one turn is counted and logged, and the pass goes on)."""
    figures = SettlementFigures()
    now = dt.datetime.now(dt.timezone.utc)
    for turn in chat_ledger.list_stale(db, older_than_seconds=older_than_seconds, limit=BATCH):
        figures.turns_stale += 1
        try:
            outcome = _settle_one(db, chat, prices, model, turn, now, give_up_seconds)
        except AppError as error:
            figures.turn_errors += 1
            log.warning("settling chat turn %s failed: %s %s", turn["message_id"], error.code, error.detail)
            continue
        if outcome == "waiting":
            figures.turns_waiting += 1
            continue
        if outcome == "finished":
            figures.turns_finished += 1
        else:
            figures.turns_failed += 1
    return figures


def _settle_one(db: Database, chat: Any, prices: PriceTable, model: str, turn: dict[str, Any],
                now: dt.datetime, give_up_seconds: int) -> str:
    """Settle one turn; returns ``finished``, ``failed`` or ``waiting``."""
    user_id, message_id, response_id = str(turn["user_id"]), str(turn["message_id"]), turn["response_id"]
    created = dt.datetime.fromisoformat(str(turn["created_at"]))
    age_ms = int((now - created).total_seconds() * 1000)
    if response_id is None and turn.get("conversation_id"):
        try:
            response_id = chat.unrecorded_response(str(turn["conversation_id"]), message_id)
        except UpstreamNotFoundError:
            response_id = None
        turn = {**turn, "response_id": response_id}
    if response_id is None and turn.get("conversation_id") and turn.get("user_message") and _answered(chat, turn):
        reserved = Decimal(str(turn["reserved_usd"]))
        row = chat_ledger.usage_rows(model, TokenUsage(), reserved, Decimal(0))
        chat_ledger.fail(db, user_id, message_id=message_id, error_code="response_unrecorded",
                         error_message="OpenAI answered, but its response was never recorded; billed at the "
                                       "turn's reservation.", usage_rows=row, cost_usd=reserved)
        _log(turn, "failed", "response_unrecorded", level=logging.ERROR, cost_usd=str(reserved))
        return "failed"
    if response_id is None:
        chat_ledger.fail(db, user_id, message_id=message_id, error_code="turn_abandoned",
                         error_message="The turn ended before OpenAI made a response.")
        _log(turn, "failed", "turn_abandoned")
        return "failed"
    try:
        result = chat.retrieve_result(response_id)
    except UpstreamNotFoundError:
        chat_ledger.fail(db, user_id, message_id=message_id, error_code="response_not_found",
                         error_message="OpenAI has no record of the turn's response.", response_id=response_id)
        _log(turn, "failed", "response_not_found")
        return "failed"
    if result.settled:
        settled = chat_ledger.settle_result(db, user_id, message_id=message_id, result=result, prices=prices,
                                               model=model, latency_ms=age_ms, conversation_id=result.conversation_id)
        status = settled["message"]["status"]
        _log(turn, "finished" if status == "complete" else "failed", result.status,
             cost_usd=str(settled["message"]["cost_usd"]))
        return "finished" if status == "complete" else "failed"
    if age_ms < give_up_seconds * 1000:
        _log(turn, "waiting", result.status)
        return "waiting"
    cost = prices.turn_cost(model, result.usage)
    chat_ledger.fail(db, user_id, message_id=message_id, error_code="turn_timed_out",
                     error_message="OpenAI's response did not end in time.",
                     usage_rows=chat_ledger.usage_rows(model, result.usage, cost.tokens, cost.file_search),
                     cost_usd=cost.total, price_version=cost.price_version, response_id=response_id)
    _log(turn, "failed", "turn_timed_out", level=logging.ERROR, cost_usd=str(cost.total))
    return "failed"


def _answered(chat: Any, turn: dict[str, Any]) -> bool:
    try:
        return bool(chat.answered_in_conversation(str(turn["conversation_id"]), str(turn["user_message"])))
    except UpstreamNotFoundError:
        return False


def _log(turn: dict[str, Any], outcome: str, reason: str, *, level: int = logging.INFO, **fields: str) -> None:
    log_event(log, "chat_turn_settled", level=level, outcome=outcome, reason=reason,
              message_id=str(turn["message_id"]), user_id=str(turn["user_id"]),
              response_id=turn["response_id"], **fields)
