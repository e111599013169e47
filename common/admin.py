"""The admin flows that do more than one SQL call: a complete delete of any user's document, message
history under the content-reading setting, and the usage export as CSV.

Every read of another user's content and every write is audited by the SQL call that performs it
(sql/055_admin_reports.sql), so nothing here can forget to audit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from common.csv_export import csv_lines
from common.db.base import Database, Identity
from common.errors import ConflictError, UserDisabledError
from common.logging import log_event

if TYPE_CHECKING:  # the OpenAI SDK is imported when a delete first builds the client, not at cold start
    from common.openai.files import DocumentFiles

log = logging.getLogger("docchat.admin")

FIGURE_COLUMNS = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens",
                  "reasoning_tokens", "tool_calls", "quantity", "cost_usd")
DOCUMENT_COLUMNS = ("turns", "turn_cost_usd", "storage_gb_days", "storage_cost_usd", "cost_usd")


def delete_any_document(db: Database, files: DocumentFiles, identity: Identity, document_id: str) -> None:
    """The owner's complete delete, started by an admin: the audited user-API call checks the role and
    marks the document deleting, then the owner's delete finishes it acting for the owner (every
    vector store holding the file, the OpenAI file, the row). A failure part-way leaves the row
    'deleting' (repeat, or the registry refresh finishes it). Raises NotFoundError, ForbiddenError,
    UpstreamError/UpstreamUnavailableError, and ConflictError when the owner's account is disabled
    (the backend API does not act for a disabled user: the document stays 'deleting' and the
    registry refresh removes it at OpenAI)."""
    from common.documents import finish_document_delete  # the upload checks it imports are not needed at cold start

    started = db.call("admin_begin_document_delete", {"p_document_id": document_id}, identity)
    owner_id = str(started["owner_id"])
    try:
        file_id = finish_document_delete(db, files, owner_id, document_id)
    except UserDisabledError as exc:
        log_event(log, "admin_document_delete_pending", level=logging.WARNING, document_id=document_id,
                  owner_id=owner_id, reason="owner_disabled")
        raise ConflictError("the owner's account is disabled: the document is marked deleting and the "
                            "registry refresh removes it") from exc
    log_event(log, "admin_document_deleted", document_id=document_id, openai_file_id=file_id, owner_id=owner_id,
              admin_id=identity.user_id)


def session_messages(db: Database, identity: Identity, session_id: str, *, include_content: bool,
                     limit: int, cursor: str | None) -> dict[str, Any]:
    """Any session's messages, oldest first. With ``include_content`` (the ``ADMIN_CAN_READ_MESSAGES``
    setting, checked here and nowhere a caller can flip it) through the backend API acting for the
    admin; otherwise through the user API, which never returns content or citations. Raises
    NotFoundError, ForbiddenError."""
    args: dict[str, Any] = {"p_session_id": session_id, "p_limit": limit}
    if cursor:
        args["p_cursor"] = cursor
    if include_content:
        if not identity.user_id:
            raise ValueError("reading message content needs a signed-in admin")
        page: dict[str, Any] = db.call("admin_read_session_messages", args, Identity.backend(identity.user_id))
    else:
        page = db.call("admin_list_session_messages", args, identity)
    return page


def usage_report(db: Database, identity: Identity, start: dt.date | None, end: dt.date | None,
                 group_by: str) -> dict[str, Any]:
    """Cost and tokens in a range of UTC days grouped by user, model, day, service or document.
    Raises InvalidInputError for a bad range or grouping, ForbiddenError for a non-admin."""
    args: dict[str, Any] = {"p_group_by": group_by}
    if start is not None:
        args["p_from"] = start
    if end is not None:
        args["p_to"] = end
    report: dict[str, Any] = db.call("admin_usage_report", args, identity)
    return report


def report_columns(group_by: str) -> tuple[str, ...]:
    """The CSV columns of a grouping (by document: the turns that cited each document and its storage)."""
    if group_by == "document":
        return ("group_by", "key", "label", "user_id", *DOCUMENT_COLUMNS)
    return ("group_by", "key", "label", *FIGURE_COLUMNS)


def usage_csv(report: dict[str, Any]) -> Iterator[str]:
    """The report's rows as CSV lines (header first), produced one at a time."""
    group_by = str(report["group_by"])
    rows = ({"group_by": group_by, **row} for row in report["rows"])
    return csv_lines(report_columns(group_by), rows)
