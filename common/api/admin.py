"""The admin function: users, documents, sessions, usage, health and the audit log (``/admin``).

Admins only: the SQL functions check the caller's role in ``user_profiles`` on every call (403
``forbidden`` for anyone else; 401 without a valid token), so a role change takes effect on the next
request. Reads of other users' content and every write are audited by the SQL call that does them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import flask
import pydantic

from common.admin import delete_any_document, session_messages, usage_csv, usage_report
from common.api.reports import DocumentCost, Figures, Money, RangeQuery
from common.http import RequestContext, ResponseDoc, Route

GroupBy = Literal["user", "model", "day", "service", "document"]
DocumentStatus = Literal["uploading", "processing", "ready", "failed", "deleting", "deleted", "missing"]


class PageQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    limit: int = pydantic.Field(default=20, ge=1, le=100)
    cursor: str | None = pydantic.Field(default=None, max_length=200)


class UsersQuery(PageQuery):
    q: str | None = pydantic.Field(default=None, max_length=200, description="Part of the email")


class DocumentsQuery(PageQuery):
    user_id: uuid.UUID | None = None
    status: DocumentStatus | None = None


class SessionsQuery(PageQuery):
    user_id: uuid.UUID | None = None


class MessagesQuery(PageQuery):
    limit: int = pydantic.Field(default=50, ge=1, le=100)


class UsageQuery(RangeQuery):
    group_by: GroupBy = "user"


class UserOut(pydantic.BaseModel):
    id: uuid.UUID
    email: str | None
    role: Literal["user", "admin"]
    disabled: bool
    monthly_budget_usd: Money
    documents: int
    sessions: int
    cost_this_month_usd: Money
    created_at: dt.datetime
    last_seen_at: dt.datetime


class UserDetail(UserOut):
    budget: dict[str, Any]


class UserPage(pydantic.BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class UserPatch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    role: Literal["user", "admin"] | None = None
    monthly_budget_usd: Money | None = pydantic.Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    disabled: bool | None = None


class AdminDocument(pydantic.BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    mime_type: str
    size_bytes: int
    status: DocumentStatus
    error: str | None
    usage_bytes: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AdminDocumentDetail(AdminDocument):
    shared_with: list[uuid.UUID]


class DocumentPage(pydantic.BaseModel):
    items: list[AdminDocument]
    next_cursor: str | None


class AdminSession(pydantic.BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    title: str
    message_count: int
    cost_usd: Money
    last_message_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SessionPage(pydantic.BaseModel):
    items: list[AdminSession]
    next_cursor: str | None


class AdminMessage(pydantic.BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    role: Literal["user", "assistant"]
    status: Literal["pending", "complete", "failed"]
    content: str | None = pydantic.Field(description="null when ADMIN_CAN_READ_MESSAGES is off")
    citations: list[dict[str, Any]] | None
    content_withheld: bool
    model: str | None
    input_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    file_search_calls: int | None
    cost_usd: Money | None
    latency_ms: int | None
    error_code: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


class MessagePage(pydantic.BaseModel):
    items: list[AdminMessage]
    next_cursor: str | None


class UsageRow(Figures):
    key: str | None
    label: str | None


class DocumentUsageRow(DocumentCost):
    key: uuid.UUID
    label: str
    user_id: uuid.UUID


class UsageReportOut(pydantic.BaseModel):
    from_: dt.date = pydantic.Field(alias="from")
    to: dt.date
    group_by: GroupBy
    rows: list[UsageRow] | list[DocumentUsageRow]
    totals: Figures


class HealthCheck(pydantic.BaseModel):
    """One check; ``data`` holds its figures (e.g. the pending migrations, the last run)."""

    name: Literal["database", "registry", "pending_turns", "openai", "scheduler"]
    status: Literal["ok", "failed", "not_applicable"]
    latency_ms: float | None
    detail: str
    data: dict[str, Any]


class HealthOut(pydantic.BaseModel):
    status: Literal["ok", "failed"]
    failing: list[str] = pydantic.Field(description="Names of the failed checks (503 when any)")
    checks: list[HealthCheck]


class AuditEntry(pydantic.BaseModel):
    id: int
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    created_at: dt.datetime


class AuditPage(pydantic.BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


CSV_DESCRIPTION = ("The report's rows as RFC 4180 CSV (UTF-8, CRLF line ends), streamed: a header row "
                   "`group_by,key,label,<figures>` (by document: `group_by,key,label,user_id,turns,turn_cost_usd,"
                   "storage_gb_days,storage_cost_usd,cost_usd`), then one row per group; a cell starting with "
                   "`=`, `+`, `-`, `@`, tab or CR is prefixed with `'`.")


def _page(model: type[pydantic.BaseModel], page: dict[str, Any]) -> dict[str, Any]:
    return {"items": [model.model_validate(item).model_dump(mode="json") for item in page["items"]],
            "next_cursor": page["next_cursor"]}


def _paging(query: PageQuery) -> dict[str, Any]:
    return {"p_limit": query.limit, **({"p_cursor": query.cursor} if query.cursor else {})}


def _call(ctx: RequestContext, function: str, args: dict[str, Any]) -> Any:
    assert ctx.identity is not None
    return ctx.runtime.database.call(function, args, ctx.identity)


def list_users(ctx: RequestContext) -> Any:
    """Users, newest first; ``q`` searches the email."""
    query = ctx.query
    assert isinstance(query, UsersQuery)
    args = _paging(query) | ({"p_search": query.q} if query.q else {})
    return _page(UserOut, _call(ctx, "admin_list_users", args))


def get_user(ctx: RequestContext) -> Any:
    """One user with their budget this month."""
    user = _call(ctx, "admin_get_user", {"p_user_id": ctx.path_params["id"]})
    return UserDetail.model_validate(user).model_dump(mode="json")


def update_user(ctx: RequestContext) -> Any:
    """Change a user's role, monthly budget or disabled flag (audited; the last admin stays one)."""
    body = ctx.body
    assert isinstance(body, UserPatch)
    args: dict[str, Any] = {"p_user_id": ctx.path_params["id"]}
    for name, value in body.model_dump(exclude_none=True).items():
        args[f"p_{name}"] = value
    return UserOut.model_validate(_call(ctx, "admin_update_user", args)).model_dump(mode="json")


def list_documents(ctx: RequestContext) -> Any:
    """Every user's documents (or one user's), newest first; audited."""
    query = ctx.query
    assert isinstance(query, DocumentsQuery)
    args = _paging(query) | {"p_user_id": query.user_id, "p_status": query.status}
    return _page(AdminDocument, _call(ctx, "admin_read_documents", args))


def get_document(ctx: RequestContext) -> Any:
    """One document of any user, with who it is shared with; audited."""
    doc = _call(ctx, "admin_read_document", {"p_document_id": ctx.path_params["id"]})
    return AdminDocumentDetail.model_validate(doc).model_dump(mode="json")


def delete_document(ctx: RequestContext) -> tuple[None, int]:
    """Delete any user's document everywhere (OpenAI file, every vector store, the row); audited."""
    assert ctx.identity is not None
    delete_any_document(ctx.runtime.database, ctx.runtime.openai.files, ctx.identity, str(ctx.path_params["id"]))
    return None, 204


def list_sessions(ctx: RequestContext) -> Any:
    """Sessions with message counts and cost, most recently active first; audited."""
    query = ctx.query
    assert isinstance(query, SessionsQuery)
    return _page(AdminSession, _call(ctx, "admin_read_sessions", _paging(query) | {"p_user_id": query.user_id}))


def list_messages(ctx: RequestContext) -> Any:
    """A session's messages, oldest first; content only when ADMIN_CAN_READ_MESSAGES; audited."""
    query = ctx.query
    assert isinstance(query, MessagesQuery) and ctx.identity is not None
    page = session_messages(ctx.runtime.database, ctx.identity, str(ctx.path_params["id"]),
                            include_content=ctx.runtime.settings.admin.can_read_messages,
                            limit=query.limit, cursor=query.cursor)
    return _page(AdminMessage, page)


def _usage(ctx: RequestContext) -> dict[str, Any]:
    query = ctx.query
    assert isinstance(query, UsageQuery) and ctx.identity is not None
    return usage_report(ctx.runtime.database, ctx.identity, query.start, query.end, query.group_by)


def get_usage(ctx: RequestContext) -> Any:
    """Cost and tokens from the daily rollup, grouped by user, model, day, service or document."""
    return UsageReportOut.model_validate(_usage(ctx)).model_dump(mode="json", by_alias=True)


def get_usage_csv(ctx: RequestContext) -> flask.Response:
    """The same report as CSV (RFC 4180, a header row, formula-like cells neutralised), streamed."""
    report = _usage(ctx)
    name = f"usage-{report['group_by']}-{report['from']}-{report['to']}.csv"
    return flask.Response(usage_csv(report), status=200, mimetype="text/csv",
                          headers={"Content-Disposition": f'attachment; filename="{name}"'})


def get_health(ctx: RequestContext) -> tuple[Any, int]:
    """Each dependency with status, latency and detail: 200 when all pass, 503 naming what failed."""
    from common.health import run_health

    assert ctx.identity is not None
    return run_health(ctx.runtime, ctx.identity)


def list_audit(ctx: RequestContext) -> Any:
    """Every admin write and every admin read of another user's content, newest first."""
    query = ctx.query
    assert isinstance(query, PageQuery)
    return _page(AuditEntry, _call(ctx, "admin_list_audit", _paging(query)))


ROUTES = [
    Route("GET", "/users", list_users, query=UsersQuery, response=UserPage, errors=(400, 403, 422)),
    Route("GET", "/users/{id:uuid}", get_user, response=UserDetail, errors=(403, 404)),
    Route("PATCH", "/users/{id:uuid}", update_user, body=UserPatch, response=UserOut,
          errors=(400, 403, 404, 409, 422)),
    Route("GET", "/documents", list_documents, query=DocumentsQuery, response=DocumentPage, errors=(400, 403, 422)),
    Route("GET", "/documents/{id:uuid}", get_document, response=AdminDocumentDetail, errors=(403, 404)),
    Route("DELETE", "/documents/{id:uuid}", delete_document, status=204, errors=(403, 404, 409, 502, 503)),
    Route("GET", "/sessions", list_sessions, query=SessionsQuery, response=SessionPage, errors=(400, 403, 422)),
    Route("GET", "/sessions/{id:uuid}/messages", list_messages, query=MessagesQuery, response=MessagePage,
          errors=(400, 403, 404, 422)),
    Route("GET", "/usage", get_usage, query=UsageQuery, response=UsageReportOut, errors=(400, 403, 422)),
    Route("GET", "/usage.csv", get_usage_csv, query=UsageQuery, errors=(400, 403, 422),
          responses=(ResponseDoc(200, "text/csv", description=CSV_DESCRIPTION),)),
    Route("GET", "/health", get_health, response=HealthOut, errors=(403, 503),
          responses=(ResponseDoc(503, "application/json", HealthOut,
                                 "A check failed: the same report, naming the failing checks"),)),
    Route("GET", "/audit", list_audit, query=PageQuery, response=AuditPage, errors=(400, 403, 422)),
]
