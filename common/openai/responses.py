"""Chat turns on the Responses API with file_search, and their conversations (thread -> conversation,
run -> response; D1).

Every turn is bounded (``max_output_tokens``, sized for reasoning plus answer; ``max_tool_calls``;
``max_num_results``), so its worst cost is known before it starts, and sends ``reasoning.effort``.
``responses.create`` is never retried by the SDK: a blind re-send has no idempotency key and could
bill twice. It is always a stream, so the response id is known from the first event; a turn whose
stream is lost is settled from ``responses.retrieve``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from common.errors import AppError, UpstreamError
from common.openai.errors import translate, translated
from common.openai.files import OBJECT_METADATA_APP, document_id_from_filename
from common.pricing import TokenUsage
from common.settings import OpenAISettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnRequest:
    user_id: str
    message: str
    session_id: str
    message_id: str
    vector_store_id: str | None
    document_ids: list[str]
    conversation_id: str | None = None


@dataclass(frozen=True)
class Citation:
    document_id: str | None
    file_id: str
    filename: str
    quote: str | None
    index: int  # the annotation's position in the answer text


@dataclass(frozen=True)
class RetrievedChunk:
    """One passage ``file_search`` returned for the turn (``include: ["file_search_call.results"]``)."""

    document_id: str | None
    file_id: str
    filename: str
    text: str
    score: float


@dataclass(frozen=True)
class TurnResult:
    """A turn as OpenAI reports it. ``status`` is completed | incomplete | failed | cancelled, or
    in_progress | queued when :meth:`ChatModel.retrieve_result` asked before the response ended."""

    text: str
    citations: list[Citation]
    response_id: str
    model: str
    usage: TokenUsage
    status: str
    conversation_id: str | None = None
    incomplete_reason: str | None = None
    error: str | None = None
    request_id: str | None = field(default=None, compare=False)
    retrieved: tuple[RetrievedChunk, ...] = ()

    @property
    def settled(self) -> bool:
        """True once the response has ended (its usage is final)."""
        return self.status not in PENDING_STATUSES

    @property
    def cut_short(self) -> bool:
        """True when the answer stopped early (e.g. ``max_output_tokens``): ``text`` is partial."""
        return self.status == "incomplete"


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class CitationFound:
    """A ``file_citation`` annotation as it arrives in the stream, at ``index`` in the answer text."""

    file_id: str
    filename: str
    index: int


StreamEvent = TextDelta | CitationFound | TurnResult
PENDING_STATUSES = frozenset({"in_progress", "queued"})
# Conversation metadata key holding "<message id> <response id>" of a turn the database could not
# store (metadata values are strings of at most 512 characters, keys at most 64).
UNRECORDED_KEY = "unrecorded_response"
# How many of a conversation's newest items are read to tell whether a turn was answered (one turn
# adds its question, its file_search call, its reasoning and its answer).
ANSWER_LOOKBACK = 20
_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def safety_identifier(user_id: str) -> str:
    """A stable, non-reversible per-user id for OpenAI's abuse detection (never the raw id or email)."""
    return hashlib.sha256(f"docchat-safety:{user_id}".encode()).hexdigest()[:64]


def usage_of(response: Any) -> TokenUsage:
    """Usage as reported, with file_search calls counted from the output items (the usage object
    has no such counter). Missing detail fields count as zero."""
    u = response.usage
    searches = sum(1 for item in response.output or [] if getattr(item, "type", None) == "file_search_call")
    if u is None:
        return TokenUsage(file_search_calls=searches)
    details = u.input_tokens_details
    out_details = u.output_tokens_details
    return TokenUsage(
        input_tokens=u.input_tokens or 0,
        cached_tokens=(getattr(details, "cached_tokens", 0) or 0) if details else 0,
        cache_write_tokens=(getattr(details, "cache_write_tokens", 0) or 0) if details else 0,
        output_tokens=u.output_tokens or 0,
        reasoning_tokens=(getattr(out_details, "reasoning_tokens", 0) or 0) if out_details else 0,
        file_search_calls=searches,
    )


def retrieved_of(response: Any) -> tuple[RetrievedChunk, ...]:
    """The passages every ``file_search_call`` of the response returned, in their order."""
    chunks: list[RetrievedChunk] = []
    for item in response.output or []:
        if getattr(item, "type", None) != "file_search_call":
            continue
        for result in item.results or []:
            if not result.file_id:
                continue
            doc = (result.attributes or {}).get("document_id")
            chunks.append(RetrievedChunk(
                document_id=doc if isinstance(doc, str) else document_id_from_filename(result.filename),
                file_id=result.file_id, filename=result.filename or "", text=result.text or "",
                score=float(result.score or 0.0)))
    return tuple(chunks)


def citations_of(response: Any, retrieved: tuple[RetrievedChunk, ...]) -> list[Citation]:
    """``file_citation`` annotations resolved to our document ids, names and the best passage of
    the cited file as the quote (an annotation carries no quote of its own)."""
    best: dict[str, RetrievedChunk] = {}
    for chunk in retrieved:
        if chunk.file_id not in best or chunk.score > best[chunk.file_id].score:
            best[chunk.file_id] = chunk
    citations: list[Citation] = []
    for item in response.output or []:
        if getattr(item, "type", None) != "message":
            continue
        for part in item.content or []:
            for ann in getattr(part, "annotations", None) or []:
                if getattr(ann, "type", None) != "file_citation":
                    continue
                chunk = best.get(ann.file_id)
                citations.append(Citation(
                    document_id=(chunk.document_id if chunk else None) or document_id_from_filename(ann.filename),
                    file_id=ann.file_id, filename=ann.filename, quote=chunk.text if chunk else None,
                    index=ann.index))
    return citations


def result_of(response: Any, request_id: str | None) -> TurnResult:
    """Our TurnResult for an SDK Response (any status; usage counts zero until it is reported)."""
    incomplete = getattr(response, "incomplete_details", None)
    error = getattr(response, "error", None)
    conversation = getattr(response, "conversation", None)
    retrieved = retrieved_of(response)
    return TurnResult(
        text=response.output_text, citations=citations_of(response, retrieved), response_id=response.id,
        model=response.model, usage=usage_of(response), status=response.status or "completed",
        conversation_id=conversation.id if conversation else None,
        incomplete_reason=incomplete.reason if incomplete else None,
        error=f"{error.code}: {error.message}" if error else None, request_id=request_id, retrieved=retrieved,
    )


def _file_citation(annotation: Any) -> CitationFound | None:
    """A streamed ``file_citation`` annotation (the SDK types it loosely: a dict or a model)."""
    fields = annotation if isinstance(annotation, dict) else getattr(annotation, "__dict__", {})
    if fields.get("type") != "file_citation":
        return None
    return CitationFound(str(fields["file_id"]), str(fields["filename"]), int(fields["index"]))


class ChatModel:
    """One chat turn at OpenAI, always requested as a stream (the response id arrives first, with
    ``response.created``, so a turn cut later can be settled with :meth:`retrieve_result`)."""

    def __init__(self, client: openai.OpenAI, settings: OpenAISettings) -> None:
        self._client = client
        self._no_retry = client.with_options(max_retries=0)
        self._settings = settings

    @property
    def model(self) -> str:
        return self._settings.model

    def create_conversation(self, *, session_id: str) -> str:
        """A new conversation for a session; raises the project's OpenAI errors.

        Never retried: OpenAI has no idempotency key and no ``conversations.list``, so a retry after
        a timeout could leave a conversation nothing can find. A failed attempt fails the request
        (503 upstream_unavailable); a conversation it may have left is empty (it holds no messages
        and costs nothing) and carries ``app``, ``session_id`` and its ``attempt`` in its metadata.
        """
        metadata = {"app": OBJECT_METADATA_APP, "session_id": session_id, "attempt": uuid.uuid4().hex}
        with translated("conversation creation"):
            conversation = self._no_retry.conversations.create(metadata=metadata)
        return conversation.id

    def note_unrecorded_response(self, conversation_id: str, *, session_id: str, message_id: str,
                                 response_id: str) -> None:
        """Leave a response id the database could not take in its conversation's metadata, where
        the settlement of the pending turn finds it (:meth:`unrecorded_response`). Raises the
        project's OpenAI errors."""
        metadata = {"app": OBJECT_METADATA_APP, "session_id": session_id,
                    UNRECORDED_KEY: f"{message_id} {response_id}"}
        with translated("conversation update"):
            self._client.conversations.update(conversation_id, metadata=metadata)

    def unrecorded_response(self, conversation_id: str, message_id: str) -> str | None:
        """The response id left for ``message_id`` by :meth:`note_unrecorded_response`, or None.
        Raises UpstreamNotFoundError when OpenAI has no such conversation."""
        with translated("conversation retrieval"):
            conversation = self._client.conversations.retrieve(conversation_id)
        noted = str((conversation.metadata or {}).get(UNRECORDED_KEY) or "").split(" ")
        return noted[1] if len(noted) == 2 and noted[0] == message_id else None

    def answered_in_conversation(self, conversation_id: str, user_message: str) -> bool:
        """Whether the conversation's newest user message is ``user_message`` and an answer follows
        it: OpenAI ran that turn (its items are appended once a response completes), though nothing
        recorded its response id. Items carry no usage. Raises UpstreamNotFoundError when OpenAI has
        no such conversation."""
        with translated("conversation items"):
            items = self._client.conversations.items.list(conversation_id, limit=ANSWER_LOOKBACK, order="desc")
        answered = False
        for item in items.data:
            if getattr(item, "type", None) != "message":
                continue
            if item.role == "assistant":
                answered = True
            elif item.role == "user":
                text = "".join(getattr(part, "text", "") or "" for part in item.content or [])
                return answered and text == user_message
        return False

    def delete_conversation(self, conversation_id: str) -> None:
        with translated("conversation deletion"):
            self._client.conversations.delete(conversation_id)

    def params(self, turn: TurnRequest) -> dict[str, Any]:
        """The request for one bounded turn. Retrieval names only the caller's store and only the
        documents the caller may read, so another user's chunks cannot reach the answer."""
        s = self._settings
        params: dict[str, Any] = {
            "model": s.model, "instructions": s.instructions, "input": turn.message,
            "max_output_tokens": s.max_output_tokens, "max_tool_calls": s.max_tool_calls,
            "reasoning": {"effort": s.reasoning_effort},
            "safety_identifier": safety_identifier(turn.user_id), "store": True, "truncation": "auto",
            "metadata": {"session_id": turn.session_id, "message_id": turn.message_id},
        }
        if turn.conversation_id:
            params["conversation"] = turn.conversation_id
        if turn.vector_store_id and turn.document_ids:
            params["tools"] = [{
                "type": "file_search", "vector_store_ids": [turn.vector_store_id],
                "filters": {"type": "in", "key": "document_id", "value": list(turn.document_ids)},
                "max_num_results": s.max_num_results,
            }]
            params["include"] = ["file_search_call.results"]
        return params

    def answer(self, turn: TurnRequest, on_created: Callable[[str], None] | None = None) -> TurnResult:
        """The turn's stream collected into its result; raises as :meth:`stream` does."""
        for event in self.stream(turn, on_created):
            if isinstance(event, TurnResult):
                return event
        raise AssertionError("stream() ends with a TurnResult or raises")  # pragma: no cover

    def stream(self, turn: TurnRequest, on_created: Callable[[str], None] | None = None) -> Iterator[StreamEvent]:
        """Text deltas and citations as they arrive, then exactly one TurnResult.

        ``on_created(response_id)`` runs at ``response.created``, before anything is yielded; if it
        raises, the stream is closed and its error propagates. Once the response exists, a stream
        that ends without a terminal event (cut, timed out, an ``error`` event) raises UpstreamError
        whose ``extra`` carries ``openai_response_id`` (settle it with :meth:`retrieve_result`);
        before that, failures are translated as every OpenAI call's are (429, 503, ...).
        """
        with translated("chat response stream"):
            events = self._no_retry.responses.create(**self.params(turn), stream=True)
        request_id = events.response.headers.get("x-request-id")
        extra: dict[str, Any] = {"openai_request_id": request_id}
        try:
            yield from self._events(events, request_id, extra, on_created)
        except openai.OpenAIError as exc:
            if "openai_response_id" in extra and isinstance(exc, openai.APIConnectionError):
                # The response exists at OpenAI (and may still finish and bill): not a retryable
                # outage but a turn to settle from its id.
                error: AppError = UpstreamError("The OpenAI stream was cut before the answer ended.", extra=extra)
            else:
                error = translate(exc, "chat response stream")
                error.extra.update({k: v for k, v in extra.items() if v})
            log.warning("openai chat response stream broke: %s (openai_response_id=%s)", error.code,
                        extra.get("openai_response_id"))
            raise error from exc
        finally:
            events.close()

    def _events(self, events: Any, request_id: str | None, extra: dict[str, Any],
                on_created: Callable[[str], None] | None) -> Iterator[StreamEvent]:
        for event in events:
            kind = event.type
            if kind == "response.created":
                extra["openai_response_id"] = event.response.id
                if on_created is not None:
                    on_created(event.response.id)
            elif kind == "response.output_text.delta":
                yield TextDelta(event.delta)
            elif kind == "response.output_text.annotation.added":
                found = _file_citation(event.annotation)
                if found is not None:
                    yield found
            elif kind in _TERMINAL_EVENTS:
                yield result_of(event.response, request_id)
                return
            elif kind == "error":
                raise UpstreamError(f"OpenAI stream error: {getattr(event, 'code', None) or 'error'}", extra=extra)
        raise UpstreamError("OpenAI stream ended without a final response.", extra=extra)

    def retrieve_result(self, response_id: str) -> TurnResult:
        """The response as OpenAI holds it now, to settle a turn whose stream was lost. Its status may
        still be in_progress or queued (``settled`` is False, usage not final). Raises
        UpstreamNotFoundError when OpenAI has no such response."""
        with translated("chat response retrieval"):
            response = self._client.responses.retrieve(response_id, include=["file_search_call.results"])
        return result_of(response, response._request_id)
