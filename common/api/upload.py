"""The upload function: documents uploaded, tracked, listed, shared by invitation and deleted (``/upload``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any, Literal

import pydantic
from werkzeug.exceptions import RequestEntityTooLarge

from common import sharing
from common.documents import delete_document, get_document, upload_document
from common.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from common.http import RequestContext, Route
from common.idempotency import run_idempotent
from common.uploads import check_file, clean_title

# Room for the multipart envelope around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024

Status = Literal["uploading", "processing", "ready", "failed", "deleting", "missing"]


class DocumentOut(pydantic.BaseModel):
    """A document as its owner or a reader sees it."""

    id: uuid.UUID
    name: str
    mime_type: str
    size_bytes: int
    sha256: str
    status: Status
    error: str | None
    shared: bool = pydantic.Field(description="True when another user owns it and shared it with you")
    created_at: dt.datetime
    updated_at: dt.datetime


class DocumentPage(pydantic.BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class ListQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    status: Status | None = None
    limit: int = pydantic.Field(default=20, ge=1, le=100)
    cursor: str | None = pydantic.Field(default=None, max_length=200)


class UploadForm(pydantic.BaseModel):
    """``multipart/form-data``: one file (PDF, DOCX, TXT, MD, HTML, JSON or CSV) and an optional title
    shown instead of the file's name."""

    file: bytes
    title: str | None = pydantic.Field(default=None, max_length=200)


class ShareIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    email: str = pydantic.Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


ShareStatus = Literal["invited", "accepted", "declined", "left"]


class ShareOut(pydantic.BaseModel):
    """An invitation as its owner sees it: the email it was sent to and where it stands."""

    share_id: uuid.UUID
    email: str
    status: ShareStatus


class ShareListItem(ShareOut):
    created_at: dt.datetime
    updated_at: dt.datetime


class ShareList(pydantic.BaseModel):
    items: list[ShareListItem]


class InvitationOut(pydantic.BaseModel):
    """A pending invitation to read someone's document."""

    share_id: uuid.UUID
    document_id: uuid.UUID
    name: str
    mime_type: str
    size_bytes: int
    invited_by: str | None = pydantic.Field(description="The inviting owner's email")
    created_at: dt.datetime


class InvitationList(pydantic.BaseModel):
    items: list[InvitationOut]


class AcceptedOut(pydantic.BaseModel):
    share_id: uuid.UUID
    document_id: uuid.UUID
    status: Literal["accepted"]


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    return DocumentOut.model_validate(doc).model_dump(mode="json")


def create(ctx: RequestContext) -> tuple[Any, int, dict[str, str]]:
    """Upload a document (201; 200 with the existing document when these bytes were uploaded before)."""
    request, settings = ctx.request, ctx.runtime.settings
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaTypeError("Send the document as multipart/form-data with a 'file' field.")
    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + _MULTIPART_OVERHEAD:
        raise PayloadTooLargeError(f"Files are limited to {limit} bytes.")
    request.max_content_length = limit + _MULTIPART_OVERHEAD
    try:
        uploaded = request.files.get("file")
    except RequestEntityTooLarge as exc:
        raise PayloadTooLargeError(f"Files are limited to {limit} bytes.") from exc
    if uploaded is None:
        raise InvalidInputError("The form has no 'file' field.")
    checked = check_file(uploaded.stream, uploaded.filename, max_bytes=limit)
    title = clean_title(request.form.get("title"))
    identity = ctx.identity
    assert identity is not None
    runtime = ctx.runtime
    fingerprint = hashlib.sha256(f"{checked.sha256}:{checked.name}:{title or ''}".encode()).hexdigest()

    def run() -> tuple[Any, int]:
        doc, created = upload_document(runtime.database, runtime.openai.files, identity, checked, uploaded.stream,
                                       max_documents=settings.max_documents_per_user,
                                       max_bytes=settings.max_bytes_per_user, title=title)
        return _out(doc), 201 if created else 200

    return run_idempotent(runtime.database, identity, ctx.idempotency_key, "upload", fingerprint, run)


def list_documents(ctx: RequestContext) -> Any:
    """My documents and those shared with me, newest first."""
    query = ctx.query
    assert isinstance(query, ListQuery)
    args: dict[str, Any] = {"p_limit": query.limit}
    if query.status:
        args["p_status"] = query.status
    if query.cursor:
        args["p_cursor"] = query.cursor
    page = ctx.runtime.database.call("list_documents", args, ctx.identity)  # type: ignore[arg-type]
    return {"items": [_out(d) for d in page["items"]], "next_cursor": page["next_cursor"]}


def get_one(ctx: RequestContext) -> Any:
    """One document; its processing status is refreshed from OpenAI while it is processing."""
    return _out(get_document(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity,  # type: ignore[arg-type]
                             str(ctx.path_params["id"])))


def delete_one(ctx: RequestContext) -> tuple[None, int]:
    """Delete a document everywhere: every vector store, the OpenAI file, the row."""
    delete_document(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity,  # type: ignore[arg-type]
                    str(ctx.path_params["id"]))
    return None, 204


def share(ctx: RequestContext) -> tuple[Any, int]:
    """Invite someone by email to read a document; 202 alike whether or not the email is a user's."""
    body = ctx.body
    assert isinstance(body, ShareIn)
    invited = sharing.invite(ctx.runtime.database, ctx.identity, str(ctx.path_params["id"]),  # type: ignore[arg-type]
                             body.email)
    return ShareOut.model_validate(invited).model_dump(mode="json"), 202


def list_shares(ctx: RequestContext) -> Any:
    """The invitations of one of my documents (email and status)."""
    shares = ctx.runtime.database.call("list_document_shares", {"p_document_id": str(ctx.path_params["id"])},
                                       ctx.identity)  # type: ignore[arg-type]
    return ShareList.model_validate(shares).model_dump(mode="json")


def revoke(ctx: RequestContext) -> tuple[None, int]:
    """Withdraw an invitation or a share (the file leaves the grantee's vector store)."""
    sharing.revoke(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity,  # type: ignore[arg-type]
                   str(ctx.path_params["id"]), str(ctx.path_params["share_id"]))
    return None, 204


def leave(ctx: RequestContext) -> tuple[None, int]:
    """Leave a document shared with me (the file leaves my vector store)."""
    sharing.leave(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity,  # type: ignore[arg-type]
                  str(ctx.path_params["id"]))
    return None, 204


def list_invitations(ctx: RequestContext) -> Any:
    """Invitations waiting for me (matched by my confirmed email)."""
    pending = ctx.runtime.database.call("list_document_invitations", {}, ctx.identity)  # type: ignore[arg-type]
    return InvitationList.model_validate(pending).model_dump(mode="json")


def accept_invitation(ctx: RequestContext) -> Any:
    """Accept an invitation: the document joins my documents and my chats' search."""
    accepted = sharing.accept(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity,  # type: ignore[arg-type]
                              str(ctx.path_params["share_id"]))
    return AcceptedOut.model_validate(accepted).model_dump(mode="json")


def decline_invitation(ctx: RequestContext) -> tuple[None, int]:
    """Decline an invitation; nothing of it reaches my documents."""
    ctx.runtime.database.call("decline_document_invitation", {"p_share_id": str(ctx.path_params["share_id"])},
                              ctx.identity)  # type: ignore[arg-type]
    return None, 204


ROUTES = [
    Route("POST", "/", create, body=UploadForm, body_media="multipart/form-data", response=DocumentOut,
          status=201, errors=(200, 400, 402, 403, 409, 413, 415, 422, 429, 502, 503)),
    Route("GET", "/", list_documents, query=ListQuery, response=DocumentPage, errors=(400, 422)),
    Route("GET", "/invitations", list_invitations, response=InvitationList, errors=(403,)),
    Route("POST", "/invitations/{share_id:uuid}/accept", accept_invitation, response=AcceptedOut,
          errors=(403, 404, 502, 503)),
    Route("DELETE", "/invitations/{share_id:uuid}", decline_invitation, status=204, errors=(403, 404, 409)),
    Route("GET", "/{id:uuid}", get_one, response=DocumentOut, errors=(404, 502, 503)),
    Route("DELETE", "/{id:uuid}", delete_one, status=204, errors=(403, 404, 502, 503)),
    Route("POST", "/{id:uuid}/access", share, body=ShareIn, response=ShareOut, status=202,
          errors=(400, 403, 404, 409, 422)),
    Route("GET", "/{id:uuid}/access", list_shares, response=ShareList, errors=(403, 404)),
    Route("DELETE", "/{id:uuid}/access/me", leave, status=204, errors=(404, 502, 503)),
    Route("DELETE", "/{id:uuid}/access/{share_id:uuid}", revoke, status=204, errors=(403, 404, 502, 503)),
]
