"""Building a Response from retrieved passages, and replaying it as a Server-Sent Events stream.

There is no language model here. The answer quotes the sentences of the best-matching passages
that share the most words with the question, and cites each passage's file with a
``file_citation`` annotation whose ``index`` is the position right after the quote. When no
passage matches, the answer says the documents do not contain it, with no annotations.

Usage figures are estimates (about four characters per token, see :func:`search.estimate_tokens`),
shaped exactly as OpenAI reports them: ``input_tokens`` counts the instructions, the earlier turns
of the conversation, the new input and the retrieved passages; ``cached_tokens`` is the prefix seen
on an earlier turn (of the same conversation, or up to ``previous_response_id``), so cost code has
cache reads to price;
``cache_write_tokens`` is 0.

Reasoning is imitated: unless ``reasoning.effort`` is ``none``, a share of the output tokens (the
server's ``reasoning_share``) is reasoning, reported in ``output_tokens_details.reasoning_tokens``
and as a ``reasoning`` output item before the others. Reasoning is spent first: when reasoning plus
answer exceed ``max_output_tokens`` the response ends ``incomplete`` (``max_output_tokens``) with
what answer text the cap left, possibly none.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from .items import item_text
from .search import CHARS_PER_TOKEN, Hit, best_sentences, estimate_tokens
from .state import new_id

NO_MATCH_ANSWER = "The documents do not contain information about that."
NO_SEARCH_ANSWER = "No documents were searched for this question, so there is nothing to answer from."
PROMPT_OVERHEAD_TOKENS = 12  # the fixed framing every request adds to the model's input
_MAX_QUOTED_PASSAGES = 3
_DELTA_WORDS = 3
_DELTA_PIECE = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class SearchRequest:
    """A validated ``file_search`` tool: what to search, and the tool as the response echoes it."""

    vector_store_ids: list[str]
    filters: dict[str, Any] | None
    max_num_results: int
    score_threshold: float
    echo: dict[str, Any]


@dataclass
class Turn:
    """Everything a response is built from, validated by the route."""

    model: str
    question: str
    input_items: list[dict[str, Any]]
    instructions: str | None = None
    search: SearchRequest | None = None
    include_results: bool = False
    context_tokens: int = 0
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    safety_identifier: str | None = None
    store: bool = True
    conversation_id: str | None = None
    previous_response_id: str | None = None
    reasoning_effort: str | None = None
    reasoning_share: float = 0.0
    truncation: str = "disabled"
    obfuscation: bool = True
    echo: dict[str, Any] = field(default_factory=dict)

    @property
    def reasons(self) -> bool:
        return self.reasoning_share > 0 and self.reasoning_effort != "none"


def compose_answer(question: str, hits: Sequence[Hit]) -> tuple[str, list[dict[str, Any]]]:
    """The answer text quoting the best passages, and its ``file_citation`` annotations."""
    if not hits:
        return NO_MATCH_ANSWER, []
    best = hits[0].score
    text = "Based on the documents:\n"
    annotations: list[dict[str, Any]] = []
    quoted: set[str] = set()
    for hit in hits:
        if len(annotations) == _MAX_QUOTED_PASSAGES or hit.score < best / 2:
            break
        quote = best_sentences(hit.chunk.text, question)
        if not quote or quote in quoted:
            continue
        quoted.add(quote)
        text += f"\n- {quote}"
        annotations.append({"type": "file_citation", "file_id": hit.chunk.file_id, "filename": hit.chunk.filename,
                            "index": len(text)})
    return text, annotations


def build_response(turn: Turn, hits: Sequence[Hit] | None, *, response_id: str, created_at: int) -> dict[str, Any]:
    """The full Response payload for ``turn``; ``hits`` is None when no search ran."""
    output: list[dict[str, Any]] = []
    if hits is not None:
        results = [{"file_id": h.chunk.file_id, "filename": h.chunk.filename, "score": h.score, "text": h.chunk.text,
                    "attributes": dict(h.chunk.attributes)} for h in hits]
        output.append({"id": new_id("fs"), "type": "file_search_call", "status": "completed",
                       "queries": [turn.question], "results": results if turn.include_results else None})
        text, annotations = compose_answer(turn.question, hits)
    else:
        text, annotations = NO_SEARCH_ANSWER, []
    reasoning = reasoning_tokens(turn, estimate_tokens(text))
    cap = turn.max_output_tokens
    incomplete = cap is not None and reasoning + estimate_tokens(text) > cap
    if incomplete:
        assert cap is not None
        reasoning = min(reasoning, cap)
        text = text[: (cap - reasoning) * CHARS_PER_TOKEN]
        annotations = [a for a in annotations if a["index"] <= len(text)]
    if turn.reasons:
        output.insert(0, {"id": new_id("rs"), "type": "reasoning", "summary": [],
                          "encrypted_content": None})
    output.append({"id": new_id("msg"), "type": "message", "role": "assistant",
                   "status": "incomplete" if incomplete else "completed",
                   "content": [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}]})
    return {
        "id": response_id, "object": "response", "created_at": created_at,
        "status": "incomplete" if incomplete else "completed", "background": False,
        "completed_at": None if incomplete else created_at,
        "conversation": {"id": turn.conversation_id} if turn.conversation_id else None,
        "error": None, "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": turn.instructions, "max_output_tokens": turn.max_output_tokens,
        "max_tool_calls": turn.max_tool_calls, "metadata": dict(turn.metadata), "model": turn.model,
        "output": output, "parallel_tool_calls": True, "previous_response_id": turn.previous_response_id,
        "prompt_cache_key": None, "reasoning": {"effort": turn.reasoning_effort, "summary": None},
        "safety_identifier": turn.safety_identifier, "service_tier": "default", "store": turn.store,
        "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
        "tools": [turn.search.echo] if turn.search else [], "top_logprobs": 0, "top_p": 1.0,
        "truncation": turn.truncation, "usage": _usage(turn, hits or [], text, reasoning), **turn.echo,
    }


def prefix_tokens(turn: Turn, payload: dict[str, Any]) -> int:
    """Tokens of everything a later turn will see before its own input (context + this input + output)."""
    items = list(turn.input_items) + list(payload["output"])
    return turn.context_tokens + sum(estimate_tokens(item_text(item)) for item in items)


def reasoning_tokens(turn: Turn, answer_tokens: int) -> int:
    """Reasoning tokens for an answer of ``answer_tokens``: ``reasoning_share`` of all output tokens
    (at least one answer's worth of thought at a share of one half)."""
    if not turn.reasons:
        return 0
    share = min(turn.reasoning_share, 0.99)
    return math.ceil(max(answer_tokens, 1) * share / (1 - share))


def _usage(turn: Turn, hits: Sequence[Hit], text: str, reasoning: int) -> dict[str, Any]:
    prompt = PROMPT_OVERHEAD_TOKENS + estimate_tokens(turn.instructions or "")
    new_input = sum(estimate_tokens(item_text(item)) for item in turn.input_items)
    retrieved = sum(estimate_tokens(hit.chunk.text) for hit in hits)
    input_tokens = prompt + turn.context_tokens + new_input + retrieved
    cached = prompt + turn.context_tokens if turn.context_tokens else 0
    output_tokens = estimate_tokens(text) + reasoning
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def stream_events(payload: dict[str, Any], *, obfuscation: bool = True) -> Iterator[str]:
    """The Server-Sent Events OpenAI sends while producing ``payload``, in the order of a recorded
    real stream: created and in_progress (snapshots with ``usage: null``), then per output item:
    added, (reasoning | file search in_progress, searching, completed | content part added, text
    deltas with each annotation at its position among them, text done, content part done), done;
    finally ``response.completed`` (or ``response.incomplete``) carrying the full response with usage.
    Deltas carry ``obfuscation`` padding unless ``stream_options.include_obfuscation`` was false.
    """
    sequence = count()

    def event(kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": next(sequence), **fields}
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    # OpenAI's schema declares usage an object, but real in-progress snapshots carry usage: null.
    snapshot = dict(payload, status="in_progress", output=[], completed_at=None, incomplete_details=None, usage=None)
    yield event("response.created", response=snapshot)
    yield event("response.in_progress", response=snapshot)
    for index, item in enumerate(payload["output"]):
        if item["type"] == "file_search_call":
            yield event("response.output_item.added", output_index=index,
                        item=dict(item, status="in_progress", queries=[], results=None))
            for phase in ("in_progress", "searching", "completed"):
                yield event(f"response.file_search_call.{phase}", output_index=index, item_id=item["id"])
        elif item["type"] == "reasoning":
            yield event("response.output_item.added", output_index=index, item=item)
        else:
            yield event("response.output_item.added", output_index=index,
                        item=dict(item, status="in_progress", content=[]))
            yield from _message_events(event, item, index, obfuscation)
        yield event("response.output_item.done", output_index=index, item=item)
    terminal = "response.incomplete" if payload["status"] == "incomplete" else "response.completed"
    yield event(terminal, response=payload)


def _padding(delta: str) -> str:
    """Random characters that bring a delta's length towards a constant, as OpenAI's obfuscation does."""
    return secrets.token_urlsafe(12)[: max(1, 12 - len(delta))]


def _message_events(event: Any, item: dict[str, Any], output_index: int, obfuscation: bool) -> Iterator[str]:
    ids = {"item_id": item["id"], "output_index": output_index, "content_index": 0}
    part = item["content"][0]
    yield event("response.content_part.added", part={"type": "output_text", "text": "", "annotations": [],
                                                     "logprobs": []}, **ids)
    pending = list(enumerate(part["annotations"]))
    sent = 0
    pieces = _DELTA_PIECE.findall(part["text"])
    for start in range(0, len(pieces), _DELTA_WORDS):
        delta = "".join(pieces[start:start + _DELTA_WORDS])
        extra = {"obfuscation": _padding(delta)} if obfuscation else {}
        yield event("response.output_text.delta", delta=delta, logprobs=[], **extra, **ids)
        sent += len(delta)
        while pending and pending[0][1]["index"] <= sent:
            annotation_index, annotation = pending.pop(0)
            yield event("response.output_text.annotation.added", annotation_index=annotation_index,
                        annotation=annotation, **ids)
    for annotation_index, annotation in pending:
        yield event("response.output_text.annotation.added", annotation_index=annotation_index,
                    annotation=annotation, **ids)
    yield event("response.output_text.done", text=part["text"], logprobs=[], **ids)
    yield event("response.content_part.done", part=part, **ids)
