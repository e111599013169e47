"""The chat function: one turn of a conversation about my documents (``/chat``), answered as JSON or
streamed as Server-Sent Events."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pydantic

from common.api.sessions import CitationOut, MessageOut, SessionOut, UsageOut
from common.chat import ChatParts, TurnAsk, begin_turn, collect_turn, run_turn
from common.errors import PayloadTooLargeError
from common.http import RequestContext, Route
from common.http.problem import Problem
from common.http.sse import event_stream, wants_event_stream


class ChatIn(pydantic.BaseModel):
    """One question. Without ``session_id`` a new session is started, titled from the message."""

    model_config = pydantic.ConfigDict(extra="forbid")

    message: pydantic.StrictStr = pydantic.Field(min_length=1, description="The question (limited by "
                                                                           "CHAT_MAX_MESSAGE_CHARS: 413 beyond)")
    session_id: uuid.UUID | None = None
    document_ids: list[uuid.UUID] | None = pydantic.Field(default=None, max_length=100,
                                                          description="Search only these of my documents")
    stream: pydantic.StrictBool = pydantic.Field(default=False, description="Answer as Server-Sent Events "
                                                                            "(as does Accept: text/event-stream)")

    @pydantic.field_validator("message")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class TurnOut(pydantic.BaseModel):
    """The stored answer (as the session's history shows it), its usage and cost."""

    session_id: uuid.UUID
    message: MessageOut
    session: SessionOut
    usage: UsageOut
    cost_usd: Decimal | None


class SessionEvent(pydantic.BaseModel):
    """First event: where the turn is stored."""

    session_id: uuid.UUID
    user_message_id: uuid.UUID
    assistant_message_id: uuid.UUID


class CitationEvent(CitationOut):
    """A citation of the answer: first as it arrives (``provisional``: its document, no quote yet), then
    resolved with its quote once the answer is stored (as the history shows it)."""

    provisional: bool


class DeltaEvent(pydantic.BaseModel):
    """The next piece of the answer's text."""

    text: str


def _parts(ctx: RequestContext) -> ChatParts:
    runtime = ctx.runtime
    return ChatParts(database=runtime.database, model=runtime.openai.chat, prices=runtime.prices,
                     openai=runtime.settings.openai, limits=runtime.settings.chat)


def chat(ctx: RequestContext) -> Any:
    """Ask a question about my documents: the answer with quoted citations, usage and cost.

    Raises (as problem+json) 413 for a message over the limit and whatever beginning the turn raises;
    once the turn began, its failures are recorded on it and answered (or streamed as ``error``)."""
    body = ctx.body
    assert isinstance(body, ChatIn) and ctx.identity is not None
    limits = ctx.runtime.settings.chat
    if len(body.message) > limits.max_message_chars:
        raise PayloadTooLargeError(f"A message may hold at most {limits.max_message_chars} characters.")
    # The turn is idempotent per request id: a retry with the same Idempotency-Key is not a second turn
    # (a finished turn is answered again as stored; one still running is 409 idempotency_in_progress).
    ask = TurnAsk(message=body.message, request_id=ctx.idempotency_key or ctx.request_id,
                  session_id=str(body.session_id) if body.session_id else None,
                  document_ids=[str(d) for d in body.document_ids] if body.document_ids is not None else None)
    parts = _parts(ctx)
    user_id = str(ctx.identity.user_id)
    begun = begin_turn(parts, user_id, ask)
    events = run_turn(parts, user_id, ask, begun)
    if body.stream or wants_event_stream(ctx.request):
        return event_stream(events, request_id=ctx.request_id, heartbeat_seconds=limits.heartbeat_seconds,
                            finish_seconds=limits.timeout_seconds)
    return collect_turn(events)


ROUTES = [
    Route("POST", "/", chat, body=ChatIn, response=TurnOut,
          events=(("session", SessionEvent), ("delta", DeltaEvent), ("citation", CitationEvent), ("done", TurnOut),
                  ("error", Problem)),
          errors=(400, 402, 403, 404, 409, 413, 422, 429, 502, 503),
          codes=((402, "`budget_exceeded`: the monthly budget cannot hold this turn; with `spent_usd`, "
                       "`reserved_usd`, `monthly_budget_usd` and `resets_on` (the first day of the next UTC month)"),
                 (403, "`user_disabled`: the account is disabled"),
                 (404, "`not_found`: no such session or document among mine"),
                 (409, "`idempotency_in_progress`: the turn of this Idempotency-Key is still running (see "
                       "Retry-After); `conflict`: it failed (its `error_code` given), ask again with a new key. "
                       "A completed turn's key answers the stored turn again"),
                 (422, "`idempotency_key_reused`: this Idempotency-Key began a turn with another message; "
                       "`validation_failed`: the body does not match the schema"),
                 (413, "`payload_too_large`: the message is longer than CHAT_MAX_MESSAGE_CHARS"),
                 (429, "`rate_limited`: too many turns this minute, or OpenAI's rate limit; see Retry-After"),
                 (502, "`upstream_error`: OpenAI refused or failed the answer; when its stream broke after "
                       "the answer began, the answer is settled later and appears in the history"),
                 (503, "`upstream_unavailable` (OpenAI down or timed out), `openai_quota_exhausted` (the "
                       "service's OpenAI quota is used up) or `database_unavailable` (the answer could not be "
                       "stored)"))),
]
