"""Chat turns on the Responses API with file_search, and their conversations (thread -> conversation,
run -> response; D1).

Every turn is bounded (``max_output_tokens``, ``max_tool_calls``, ``max_num_results``), so its worst
cost is known before it starts. ``responses.create`` is never retried by the SDK: a blind re-send has
no idempotency key and could bill twice; the caller decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from common.errors import UpstreamError
from common.openai.errors import translated
from common.openai.files import document_id_from_filename
from common.pricing import TokenUsage
from common.settings import OpenAISettings


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
    index: int


@dataclass(frozen=True)
class RetrievedChunk:
    """One passage file_search returned for a turn, with the document it belongs to."""

    document_id: str | None
    file_id: str
    filename: str
    text: str
    score: float


@dataclass(frozen=True)
class TurnResult:
    text: str
    citations: list[Citation]
    response_id: str
    model: str
    usage: TokenUsage
    status: str  # completed | incomplete | failed
    conversation_id: str | None = None
    incomplete_reason: str | None = None
    error: str | None = None
    request_id: str | None = field(default=None, compare=False)
    retrieved: tuple[RetrievedChunk, ...] = ()


@dataclass(frozen=True)
class TextDelta:
    text: str


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


def citations_of(response: Any) -> list[Citation]:
    """``file_citation`` annotations resolved to our document ids, names and quoted passages."""
    passages: dict[str, tuple[float, str | None, str | None]] = {}
    for item in response.output or []:
        if getattr(item, "type", None) != "file_search_call":
            continue
        for result in item.results or []:
            if not result.file_id:
                continue
            score = result.score or 0.0
            doc = (result.attributes or {}).get("document_id")
            if result.file_id not in passages or score > passages[result.file_id][0]:
                passages[result.file_id] = (score, result.text, doc if isinstance(doc, str) else None)
    citations: list[Citation] = []
    for item in response.output or []:
        if getattr(item, "type", None) != "message":
            continue
        for part in item.content or []:
            for ann in getattr(part, "annotations", None) or []:
                if getattr(ann, "type", None) != "file_citation":
                    continue
                _, quote, doc = passages.get(ann.file_id, (0.0, None, None))
                citations.append(Citation(document_id=doc or document_id_from_filename(ann.filename),
                                          file_id=ann.file_id, filename=ann.filename, quote=quote, index=ann.index))
    return citations


def retrieved_of(response: Any) -> tuple[RetrievedChunk, ...]:
    """Every passage the turn's file_search calls returned (``include: file_search_call.results``)."""
    chunks: list[RetrievedChunk] = []
    for item in response.output or []:
        if getattr(item, "type", None) != "file_search_call":
            continue
        for result in item.results or []:
            if not result.file_id or not result.text:
                continue
            doc = (result.attributes or {}).get("document_id")
            chunks.append(RetrievedChunk(
                document_id=doc if isinstance(doc, str) else document_id_from_filename(result.filename or ""),
                file_id=result.file_id, filename=result.filename or "", text=result.text,
                score=float(result.score or 0.0)))
    return tuple(chunks)


def result_of(response: Any, request_id: str | None) -> TurnResult:
    incomplete = getattr(response, "incomplete_details", None)
    error = getattr(response, "error", None)
    conversation = getattr(response, "conversation", None)
    return TurnResult(
        text=response.output_text, citations=citations_of(response), response_id=response.id,
        model=response.model, usage=usage_of(response), status=response.status or "completed",
        conversation_id=conversation.id if conversation else None,
        incomplete_reason=incomplete.reason if incomplete else None,
        error=f"{error.code}: {error.message}" if error else None, request_id=request_id,
        retrieved=retrieved_of(response),
    )


class ChatModel:
    """One chat turn at OpenAI: a complete answer or a stream of text deltas, then the result."""

    def __init__(self, client: openai.OpenAI, settings: OpenAISettings) -> None:
        self._client = client
        self._no_retry = client.with_options(max_retries=0)
        self._settings = settings

    @property
    def model(self) -> str:
        return self._settings.model

    def create_conversation(self, *, session_id: str) -> str:
        with translated("conversation creation"):
            conversation = self._client.conversations.create(metadata={"session_id": session_id})
        return conversation.id

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

    def answer(self, turn: TurnRequest) -> TurnResult:
        with translated("chat response"):
            response = self._no_retry.responses.create(**self.params(turn))
        return result_of(response, response._request_id)

    def stream(self, turn: TurnRequest) -> Iterator[TextDelta | TurnResult]:
        """Text deltas as they arrive, then exactly one TurnResult (from the terminal event)."""
        with translated("chat response stream"):
            events = self._no_retry.responses.create(**self.params(turn), stream=True)
            request_id = events.response.headers.get("x-request-id")
            try:
                for event in events:
                    kind = event.type
                    if kind == "response.output_text.delta":
                        yield TextDelta(event.delta)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        yield result_of(event.response, request_id)
                        return
                    elif kind == "error":
                        raise UpstreamError(f"OpenAI stream error: {getattr(event, 'code', None) or 'error'}",
                                            extra={"openai_request_id": request_id})
            finally:
                events.close()
        raise UpstreamError("OpenAI stream ended without a final response.", extra={"openai_request_id": request_id})
