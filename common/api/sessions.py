"""The sessions function: my chat sessions, searched, read, renamed, deleted, exported (``/sessions``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from decimal import Decimal
from typing import Any, Literal

import flask
import pydantic

from common import sessions
from common.http import RequestContext, ResponseDoc, Route
from common.idempotency import run_idempotent

MessageStatus = Literal["pending", "complete", "failed"]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Title = pydantic.Field(default=None, min_length=1, max_length=200)


class CitationOut(pydantic.BaseModel):
    """A source of an answer: the document, and the passage of it the answer rests on (``quote``, found
    verbatim in the document's retrieved text; null when none could be tied to the citation)."""

    document_id: uuid.UUID | None
    name: str
    quote: str | None
    score: float | None
    index: int = pydantic.Field(description="Position in the answer's text the citation follows")


class UsageOut(pydantic.BaseModel):
    """Tokens of one answer by kind (cached and cache-write tokens are parts of input tokens)."""

    input_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    file_search_calls: int | None


class MessageOut(pydantic.BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    role: Literal["user", "assistant"]
    status: MessageStatus
    content: str
    citations: list[CitationOut]
    model: str | None
    usage: UsageOut
    cost_usd: Decimal | None
    incomplete_reason: str | None = pydantic.Field(description="Set when the answer stopped early (e.g. "
                                                               "max_output_tokens): its content is partial, and billed")
    error_code: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


class SessionOut(pydantic.BaseModel):
    id: uuid.UUID
    title: str
    message_count: int
    last_message_at: dt.datetime | None
    document_ids: list[uuid.UUID] | None = pydantic.Field(description="The documents the session is narrowed to")
    cost_usd: Decimal = pydantic.Field(description="What the session's answers cost so far")
    snippet: str | None = pydantic.Field(default=None, description="With q: where it matched, matched words "
                                                                   "between ** and **")
    created_at: dt.datetime
    updated_at: dt.datetime


class SessionPage(pydantic.BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class MessagePage(pydantic.BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class SessionExport(pydantic.BaseModel):
    session: SessionOut
    messages: list[MessageOut]
    exported_at: dt.datetime


class SessionIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    title: pydantic.StrictStr | None = Title
    document_ids: list[uuid.UUID] | None = pydantic.Field(default=None, max_length=100)

    _clean = pydantic.field_validator("title")(_no_nul)


class RenameIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    title: pydantic.StrictStr = pydantic.Field(min_length=1, max_length=200)

    _clean = pydantic.field_validator("title")(_no_nul)


class ListQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    limit: int = pydantic.Field(default=20, ge=1, le=100)
    cursor: str | None = pydantic.Field(default=None, max_length=200)
    q: str | None = pydantic.Field(default=None, min_length=1, max_length=200,
                                   description="Words to find in titles and messages (web-search syntax)")

    _clean = pydantic.field_validator("q")(_no_nul)


class MessagesQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    limit: int = pydantic.Field(default=50, ge=1, le=100)
    cursor: str | None = pydantic.Field(default=None, max_length=200)


class ExportQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    format: Literal["md", "json"] = "json"


def _id(ctx: RequestContext) -> str:
    return str(ctx.path_params["id"])


def create(ctx: RequestContext) -> tuple[Any, int, dict[str, str]]:
    """Start a session, optionally narrowed to some of my documents (``Idempotency-Key`` honoured)."""
    body = ctx.body
    assert isinstance(body, SessionIn) and ctx.identity is not None
    ids = [str(d) for d in body.document_ids] if body.document_ids is not None else None
    database, identity = ctx.runtime.database, ctx.identity
    fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    return run_idempotent(database, identity, ctx.idempotency_key, "sessions", fingerprint,
                          lambda: (sessions.create_session(database, identity, body.title, ids), 201))


def list_sessions(ctx: RequestContext) -> Any:
    """My sessions, most recently active first; with q, those whose title or messages match."""
    query = ctx.query
    assert isinstance(query, ListQuery)
    return sessions.list_sessions(ctx.runtime.database, ctx.identity, limit=query.limit,  # type: ignore[arg-type]
                                  cursor=query.cursor, q=query.q)


def get_one(ctx: RequestContext) -> Any:
    """One of my sessions with its message count, last activity and cost."""
    return sessions.get_session(ctx.runtime.database, ctx.identity, _id(ctx))  # type: ignore[arg-type]


def rename(ctx: RequestContext) -> Any:
    """Rename a session."""
    body = ctx.body
    assert isinstance(body, RenameIn)
    return sessions.rename_session(ctx.runtime.database, ctx.identity, _id(ctx), body.title)  # type: ignore[arg-type]


def delete_one(ctx: RequestContext) -> tuple[None, int]:
    """Delete a session, its messages and its OpenAI conversation (usage and costs stay on record)."""
    runtime = ctx.runtime
    sessions.delete_session(runtime.database, ctx.identity, _id(ctx),  # type: ignore[arg-type]
                            lambda: runtime.openai.chat)
    return None, 204


def messages(ctx: RequestContext) -> Any:
    """A session's history in order: each message with status, citations, tokens, cost and model."""
    query = ctx.query
    assert isinstance(query, MessagesQuery)
    return sessions.list_messages(ctx.runtime.database, ctx.identity, _id(ctx),  # type: ignore[arg-type]
                                  limit=query.limit, cursor=query.cursor)


def export(ctx: RequestContext) -> Any:
    """The whole conversation with its citations, as JSON or as a Markdown file (format=md)."""
    query = ctx.query
    assert isinstance(query, ExportQuery)
    exported = sessions.export_session(ctx.runtime.database, ctx.identity, _id(ctx))  # type: ignore[arg-type]
    if query.format == "json":
        return exported
    response = flask.Response(sessions.export_markdown(exported), status=200, mimetype="text/markdown")
    response.headers["Content-Disposition"] = f'attachment; filename="session-{_id(ctx)}.md"'
    return response


ROUTES = [
    Route("POST", "/", create, body=SessionIn, response=SessionOut, status=201, errors=(400, 403, 404, 409)),
    Route("GET", "/", list_sessions, query=ListQuery, response=SessionPage, errors=(400, 403)),
    Route("GET", "/{id:uuid}", get_one, response=SessionOut, errors=(403,)),
    Route("PATCH", "/{id:uuid}", rename, body=RenameIn, response=SessionOut, errors=(403,)),
    Route("DELETE", "/{id:uuid}", delete_one, status=204, errors=(403, 502, 503)),
    Route("GET", "/{id:uuid}/messages", messages, query=MessagesQuery, response=MessagePage, errors=(400, 403)),
    Route("GET", "/{id:uuid}/export", export, query=ExportQuery, response=SessionExport, errors=(403,),
          responses=(ResponseDoc(200, "text/markdown", description="The session as JSON, or with format=md as a "
                                                                   "Markdown file with every message and its sources"),)),
]
