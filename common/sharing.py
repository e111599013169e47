"""Sharing by invitation (DESIGN.md D8): invite by email, the grantee accepts, declines or leaves, the
owner lists and revokes. Only an accepted share puts the file in the grantee's vector store; leaving
or a revoke takes it out. The steps with an OpenAI side effect call the backend API (their results
name the file and the store); invitations, lists and declines are user API and carry no OpenAI id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from common.db.base import Database, Identity
from common.documents import ensure_vector_store
from common.logging import log_event

if TYPE_CHECKING:
    from common.openai.files import DocumentFiles

log = logging.getLogger(__name__)


def _backend(identity: Identity) -> Identity:
    if not identity.user_id:
        raise ValueError("sharing needs a signed-in user")
    return Identity.backend(identity.user_id)


def invite(db: Database, identity: Identity, document_id: str, email: str) -> dict[str, Any]:
    """Invite ``email`` to read the caller's document; the same answer whether or not it is a user's."""
    invited = db.call("share_document", {"p_document_id": document_id, "p_email": email}, identity)
    log_event(log, "share_step", step="invited", document_id=document_id, share_id=invited["share_id"])
    return dict(invited)


def accept(db: Database, files: DocumentFiles, identity: Identity, share_id: str) -> dict[str, Any]:
    """Accept an invitation: record it, then attach the file to the caller's own store. Accepting
    again repeats the attach (idempotent), which repairs an accept whose attach failed."""
    backend = _backend(identity)
    accepted = db.call("accept_document_invitation", {"p_share_id": share_id}, backend)
    store_id = ensure_vector_store(db, files, str(identity.user_id), accepted["vector_store_id"])
    if accepted["openai_file_id"]:
        files.attach(store_id, accepted["openai_file_id"], document_id=accepted["document_id"],
                     owner_id=accepted["owner_id"])
    log_event(log, "share_step", step="accepted", document_id=accepted["document_id"], share_id=share_id)
    return {"share_id": accepted["share_id"], "document_id": accepted["document_id"], "status": accepted["status"]}


def leave(db: Database, files: DocumentFiles, identity: Identity, document_id: str) -> None:
    """Give an accepted share back; the file leaves the caller's store."""
    left = db.call("leave_document_share", {"p_document_id": document_id}, _backend(identity))
    if left["vector_store_id"] and left["openai_file_id"]:
        files.detach(left["vector_store_id"], left["openai_file_id"])
    log_event(log, "share_step", step="left", document_id=document_id)


def revoke(db: Database, files: DocumentFiles, identity: Identity, document_id: str, share_id: str) -> None:
    """Withdraw an invitation or an accepted share; an accepted one's file leaves the grantee's store
    (if that detach fails, the registry refresh detaches it: the share is gone)."""
    revoked = db.call("revoke_document_share", {"p_document_id": document_id, "p_share_id": share_id},
                      _backend(identity))
    if revoked["vector_store_id"] and revoked["openai_file_id"]:
        files.detach(revoked["vector_store_id"], revoked["openai_file_id"])
    log_event(log, "share_step", step="revoked", document_id=document_id, share_id=share_id)
