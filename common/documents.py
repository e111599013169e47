"""The document flows of DESIGN.md: upload, status refresh, delete, and sharing by invitation.

Order is what makes them lose nothing: the row is recorded before any OpenAI side effect; the OpenAI
file carries the document id in its name and, in a store, as an attribute; every failure after a side
effect is written to the row (or, if that write fails too, left for the registry refresh to find
through the name and attributes). Each step logs one structured line with the document id and the
OpenAI request id.

Reads are user API (the caller's own token). Everything that records what OpenAI did, or needs an
OpenAI id, is backend API: the service role acting for the verified caller (``Identity.backend``).
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING, Any

from common.db.base import Database, Identity
from common.errors import AppError, UnsupportedMediaTypeError
from common.logging import log_event
from common.uploads import CheckedFile

if TYPE_CHECKING:  # the OpenAI SDK is imported when the first request builds the client, not at cold start
    from common.openai.files import DocumentFiles

log = logging.getLogger(__name__)


def _backend(identity: Identity) -> Identity:
    if not identity.user_id:
        raise ValueError("a document flow needs a signed-in user")
    return Identity.backend(identity.user_id)


def ensure_vector_store(db: Database, files: DocumentFiles, user_id: str, known: str | None) -> str:
    """The user's one vector store, created on first need. Two concurrent first uploads may both
    create one: the database keeps the first, and the loser's store is deleted here."""
    if known:
        return known
    created = files.create_store(user_id)
    recorded = db.call("set_user_vector_store", {"p_vector_store_id": created}, Identity.backend(user_id))
    if not recorded["won"]:
        files.delete_store(created)
    return str(recorded["vector_store_id"])


def upload_document(db: Database, files: DocumentFiles, identity: Identity, checked: CheckedFile,
                    content: IO[bytes], *, max_documents: int, max_bytes: int,
                    title: str | None = None) -> tuple[dict[str, Any], bool]:
    """Store a checked file; returns (document, created). The same bytes again return the existing
    document with created False. ``title`` (already clean) replaces the file's name for display; the
    OpenAI file keeps the file's name, whose extension tells OpenAI the format. A user over
    ``max_documents`` or ``max_bytes`` gets QuotaExceededError before any OpenAI call."""
    backend = _backend(identity)
    recorded = db.call("create_document", {"p_name": title or checked.name, "p_mime_type": checked.mime_type,
                                           "p_size_bytes": checked.size, "p_sha256": checked.sha256,
                                           "p_max_documents": max_documents, "p_max_bytes": max_bytes}, backend)
    doc = recorded["document"]
    doc_id = doc["id"]
    if not recorded["created"]:
        log_event(log, "upload_step", step="deduplicated", document_id=doc_id, status=doc["status"])
        return doc, False
    log_event(log, "upload_step", step="recorded", document_id=doc_id, size_bytes=checked.size)
    user_id = str(identity.user_id)
    try:
        store_id = ensure_vector_store(db, files, user_id, recorded["vector_store_id"])
        file_id, request_id = files.upload(doc_id, checked.name, content, checked.mime_type)
    except AppError as exc:
        _record_failure(db, backend, doc_id, exc, None)
        raise
    log_event(log, "upload_step", step="file_created", document_id=doc_id, openai_file_id=file_id,
              openai_request_id=request_id)
    try:
        attached = files.attach(store_id, file_id, document_id=doc_id, owner_id=user_id)
    except AppError as exc:
        _record_failure(db, backend, doc_id, exc, file_id)
        raise
    log_event(log, "upload_step", step="attached", document_id=doc_id, openai_file_id=file_id,
              vector_store_id=store_id, status=attached.status, openai_request_id=attached.request_id)
    if attached.status in ("failed", "cancelled"):
        error = UnsupportedMediaTypeError(f"OpenAI could not read this file ({attached.error or attached.status}).")
        _record_failure(db, backend, doc_id, error, file_id)
        raise error
    status = "ready" if attached.status == "completed" else "processing"
    doc = db.call("finish_document_upload", {"p_document_id": doc_id, "p_openai_file_id": file_id,
                                             "p_vector_store_id": store_id, "p_status": status}, backend)
    log_event(log, "upload_step", step="finished", document_id=doc_id, openai_file_id=file_id, status=status)
    return doc, True


def _record_failure(db: Database, backend: Identity, doc_id: str, exc: AppError, file_id: str | None) -> None:
    """Write the failure on the row. If that write fails as well, the original error still reaches
    the caller (this one is logged); the row stays 'uploading' and the registry refresh repairs it."""
    try:
        db.call("fail_document_upload", {"p_document_id": doc_id, "p_error": f"{exc.code}: {exc.detail}",
                                         "p_openai_file_id": file_id}, backend)
    except AppError as db_exc:
        log.error("could not record the failed upload of document %s (openai_file_id=%s): %s",
                  doc_id, file_id, db_exc.code)
        raise exc from db_exc
    log_event(log, "upload_step", step="failed", document_id=doc_id, openai_file_id=file_id, error=exc.code,
              openai_request_id=exc.extra.get("openai_request_id"))


def get_document(db: Database, files: DocumentFiles, identity: Identity, document_id: str) -> dict[str, Any]:
    """One document; while the caller's own document is processing, its status is refreshed from
    OpenAI (a reader sees the status its owner's requests and the registry record)."""
    doc = db.call("get_document", {"p_document_id": document_id}, identity)
    if doc["status"] != "processing" or doc["shared"]:
        return doc
    backend = _backend(identity)
    placed = db.call("get_document_placement", {"p_document_id": document_id}, backend)
    if not placed["openai_file_id"] or not placed["vector_store_id"]:
        return doc
    state = files.status(placed["vector_store_id"], placed["openai_file_id"])
    if state is None or state.status == "in_progress":
        return doc
    status = "ready" if state.status == "completed" else "failed"
    log_event(log, "upload_step", step="status_refreshed", document_id=document_id, status=status)
    return db.call("record_document_status", {"p_document_id": document_id, "p_status": status,
                                              "p_error": state.error}, backend)


def delete_document(db: Database, files: DocumentFiles, identity: Identity, document_id: str) -> None:
    """Remove the file from every store holding it, delete the file, mark the row deleted. A failure
    part-way leaves the row 'deleting'; repeating the delete (or the registry refresh) finishes it."""
    db.call("begin_document_delete", {"p_document_id": document_id}, identity)
    finish_document_delete(db, files, str(_backend(identity).acting_user_id), document_id)


def finish_document_delete(db: Database, files: DocumentFiles, owner_id: str, document_id: str) -> str | None:
    """The OpenAI half of a started delete, acting for the document's owner (backend API): detach the
    file from every store holding it, delete it, mark the row deleted; returns the OpenAI file id
    (None when the upload never made one). Raises ConflictError when no delete was started,
    NotFoundError, and the OpenAI layer's errors (the row then stays 'deleting')."""
    backend = Identity.backend(owner_id)
    targets = db.call("document_delete_targets", {"p_document_id": document_id}, backend)
    file_id: str | None = targets["openai_file_id"]
    if file_id:
        for store_id in targets["vector_store_ids"]:
            files.detach(store_id, file_id)
        files.delete_file(file_id)
    db.call("finish_document_delete", {"p_document_id": document_id}, backend)
    log_event(log, "upload_step", step="deleted", document_id=document_id, openai_file_id=file_id)
    return file_id
