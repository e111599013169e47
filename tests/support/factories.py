"""Builders of state through the SQL function API itself (never by writing tables directly)."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

from common.db.base import Database, Identity
from tests.support.users import AppUser


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_document(db: Database, user: AppUser, *, name: str = "notes.txt", content: str | None = None,
                  status: str = "ready") -> dict[str, Any]:
    """A document of ``user`` in the given status (uploading, ready, processing or failed), recorded
    the way the backend records an upload; the result carries the OpenAI ids (a backend result)."""
    content = content or f"content {uuid.uuid4()}"
    backend = Identity.backend(user.id)
    created = db.call("create_document", {"p_name": name, "p_mime_type": "text/plain",
                                          "p_size_bytes": len(content), "p_sha256": sha256_of(content)}, backend)
    doc = created["document"]
    if status == "uploading":
        return doc
    if status == "failed":
        return db.call("fail_document_upload", {"p_document_id": doc["id"], "p_error": "boom"}, backend)
    store = db.call("set_user_vector_store", {"p_vector_store_id": f"vs_{user.id.replace('-', '')[:16]}"},
                    backend)["vector_store_id"]
    return db.call("finish_document_upload", {"p_document_id": doc["id"], "p_openai_file_id": f"file-{uuid.uuid4().hex}",
                                              "p_vector_store_id": store, "p_status": status}, backend)


def share_with(db: Database, owner: AppUser, doc: dict[str, Any], grantee: AppUser, *,
               accept: bool = True) -> dict[str, Any]:
    """``owner`` invites ``grantee`` to ``doc``; the grantee accepts unless ``accept`` is False.
    Returns the invitation (accepted: the backend's answer, with the file and the grantee's store)."""
    invited = db.call("share_document", {"p_document_id": doc["id"], "p_email": grantee.email}, owner.identity)
    if not accept:
        return invited
    return db.call("accept_document_invitation", {"p_share_id": invited["share_id"]}, Identity.backend(grantee.id))


def backend(user: AppUser) -> Identity:
    """The service role acting for ``user`` (how the backend calls the backend API)."""
    return Identity.backend(user.id)


def usage_rows(cost: Decimal, *, model: str = "gpt-6-luna", input_tokens: int = 1000,
               output_tokens: int = 100) -> list[dict[str, Any]]:
    return [{"service": "chat", "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens,
             "cost_usd": cost}]


def finish_args(turn: dict[str, Any], *, cost: Decimal = Decimal("0.0012"), content: str = "The answer.",
                response_id: str | None = None) -> dict[str, Any]:
    """Arguments of a finish_chat_turn for ``turn`` whose usage rows add up to ``cost``."""
    return {
        "p_message_id": turn["assistant_message_id"], "p_response_id": response_id or f"resp_{uuid.uuid4().hex}",
        "p_model": "gpt-6-luna", "p_content": content, "p_citations": [],
        "p_retrieval": [{"document_id": str(uuid.uuid4()), "text": "a retrieved passage", "score": 0.9}],
        "p_usage": {"input_tokens": 1000, "cached_tokens": 0, "output_tokens": 100, "reasoning_tokens": 0,
                    "file_search_calls": 1},
        "p_usage_rows": usage_rows(cost), "p_cost_usd": cost, "p_price_version": "test-1", "p_latency_ms": 420,
        "p_conversation_id": "conv_test"}


def finish_turn(db: Database, user: AppUser, turn: dict[str, Any], *, cost: Decimal = Decimal("0.0012"),
                content: str = "The answer.", citations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    args = finish_args(turn, cost=cost, content=content)
    args["p_citations"] = citations or []
    return db.call("finish_chat_turn", args, backend(user))


def begin_turn(db: Database, user: AppUser, message: str = "What is in my notes?", *,
               session_id: str | None = None, max_cost: Decimal = Decimal("0.01"),
               request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"p_request_id": request_id or f"req_{uuid.uuid4().hex}", "p_message": message,
                            "p_max_cost_usd": max_cost, **extra}
    if session_id:
        args["p_session_id"] = session_id
    return db.call("begin_chat_turn", args, backend(user))
