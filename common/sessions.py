"""Chat sessions as their owner sees them: create, list and search, read, rename, delete (with the
session's OpenAI conversation), the history, and an export for a person to keep.

Every call is one user-API SQL function run as the caller, so another user's session answers 404
like a missing one. Only :func:`delete_session` talks to OpenAI, through the chat model it is given
(built lazily by the caller: the sessions function does not import the SDK otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from common.db.base import Database, Identity
from common.errors import UpstreamNotFoundError

log = logging.getLogger(__name__)

_SESSION_FIELDS = ("id", "title", "message_count", "last_message_at", "document_ids", "created_at", "updated_at")


def session_out(session: dict[str, Any]) -> dict[str, Any]:
    """A session as the API shows it (no OpenAI ids): with its message count, last activity and cost
    (kept on the session row by the turn functions), and ``snippet`` when it was found by a search."""
    out = {name: session.get(name) for name in _SESSION_FIELDS}
    out["cost_usd"] = Decimal(str(session["cost_usd"]))
    if "snippet" in session:
        out["snippet"] = session["snippet"]
    return out


def message_out(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the API shows it: role, status, content, citations, tokens by kind, cost."""
    return {
        "id": message["id"], "session_id": message["session_id"], "role": message["role"],
        "status": message["status"], "content": message["content"],
        "citations": [_citation_out(c) for c in message["citations"] or []],
        "model": message.get("model"),
        "usage": {"input_tokens": message.get("input_tokens"), "cached_tokens": message.get("cached_tokens"),
                  "output_tokens": message.get("output_tokens"), "reasoning_tokens": message.get("reasoning_tokens"),
                  "file_search_calls": message.get("file_search_calls")},
        "cost_usd": message.get("cost_usd"), "incomplete_reason": message.get("incomplete_reason"),
        "error_code": message.get("error_code"),
        "created_at": message["created_at"], "completed_at": message.get("completed_at"),
    }


def _citation_out(citation: dict[str, Any]) -> dict[str, Any]:
    # A score read back from jsonb is an exact decimal; the API gives it as the number it was.
    score = citation.get("score")
    return {**citation, "score": None if score is None else float(score)}


def create_session(db: Database, identity: Identity, title: str | None,
                   document_ids: list[str] | None) -> dict[str, Any]:
    """A new session, optionally narrowed to documents the caller may read (NotFoundError otherwise)."""
    args: dict[str, Any] = {}
    if title is not None:
        args["p_title"] = title
    if document_ids is not None:
        args["p_document_ids"] = document_ids
    return session_out(db.call("create_session", args, identity))


def list_sessions(db: Database, identity: Identity, *, limit: int, cursor: str | None,
                  q: str | None) -> dict[str, Any]:
    """The caller's sessions, most recently active first; with ``q`` only those matching it, each with
    a highlighted snippet."""
    args: dict[str, Any] = {"p_limit": limit}
    if cursor is not None:
        args["p_cursor"] = cursor
    if q is not None:
        args["p_q"] = q
    page = db.call("list_my_sessions", args, identity)
    return {"items": [session_out(s) for s in page["items"]], "next_cursor": page["next_cursor"]}


def get_session(db: Database, identity: Identity, session_id: str) -> dict[str, Any]:
    """One of the caller's sessions; NotFoundError for a missing or another user's."""
    return session_out(db.call("get_session", {"p_session_id": session_id}, identity))


def rename_session(db: Database, identity: Identity, session_id: str, title: str) -> dict[str, Any]:
    """Give a session a new title (one call); returns it. NotFoundError for a missing or another user's."""
    return session_out(db.call("rename_session", {"p_session_id": session_id, "p_title": title}, identity))


def delete_session(db: Database, identity: Identity, session_id: str, chat_model: Callable[[], Any]) -> None:
    """Delete the session's OpenAI conversation, then the session and its messages (usage rows stay).
    The conversation goes first: if OpenAI fails nothing is deleted and a retry finishes the job
    (OpenAI has no ``conversations.list``, so a conversation whose session row is gone could never be
    found again). Hence two SQL calls: read the conversation id, then delete. NotFoundError for a
    missing or another user's session, ConflictError while a turn of it is still running."""
    session = db.call("get_session", {"p_session_id": session_id}, identity)
    conversation_id = session.get("openai_conversation_id")
    if conversation_id:
        try:
            chat_model().delete_conversation(conversation_id)
        except UpstreamNotFoundError:
            log.info("conversation of session %s was already gone at OpenAI", session_id)
    db.call("delete_session", {"p_session_id": session_id}, identity)


def list_messages(db: Database, identity: Identity, session_id: str, *, limit: int,
                  cursor: str | None) -> dict[str, Any]:
    """A session's history, oldest first."""
    args: dict[str, Any] = {"p_session_id": session_id, "p_limit": limit}
    if cursor is not None:
        args["p_cursor"] = cursor
    page = db.call("list_session_messages", args, identity)
    return {"items": [message_out(m) for m in page["items"]], "next_cursor": page["next_cursor"]}


def export_session(db: Database, identity: Identity, session_id: str) -> dict[str, Any]:
    """The whole conversation: the session and every message with its citations."""
    exported = db.call("export_session", {"p_session_id": session_id}, identity)
    return {"session": session_out(exported["session"]), "messages": [message_out(m) for m in exported["messages"]],
            "exported_at": exported["exported_at"]}


def export_markdown(exported: dict[str, Any]) -> str:
    """An export as Markdown: the title, then each message with its citations and their quotes."""
    session = exported["session"]
    lines = [f"# {session['title']}", "", f"Exported {exported['exported_at']} — {session['message_count']} messages, "
             f"cost ${session['cost_usd']}", ""]
    for message in exported["messages"]:
        who = "You" if message["role"] == "user" else "Assistant"
        lines.append(f"## {who} — {message['created_at']}")
        lines.append("")
        if message["status"] == "failed":
            lines.append(f"*This answer failed ({message['error_code']}).*")
        elif message["status"] == "pending":
            lines.append("*This answer is still being written.*")
        else:
            lines.append(message["content"])
        citations = message["citations"] or []
        if citations:
            lines.append("")
            lines.append("Sources:")
            for number, citation in enumerate(citations, start=1):
                quote = f" — “{citation['quote']}”" if citation.get("quote") else " — (no quote)"
                lines.append(f"{number}. {citation['name']}{quote}")
        lines.append("")
    return "\n".join(lines)
