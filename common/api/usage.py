"""The usage function: what I spent, by model, service, document and day, and my budget (``/usage``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pydantic

from common.api.reports import DocumentCost, Figures, Money, RangeQuery
from common.http import RequestContext, Route
from common.usage import usage_report


class Totals(Figures):
    turns: int
    file_search_calls: int
    storage_gb_days: Money
    storage_cost_usd: Money


class ModelFigures(Figures):
    model: str


class ServiceFigures(Figures):
    service: str


class DayFigures(Figures):
    day: dt.date


class DocumentFigures(DocumentCost):
    document_id: uuid.UUID
    name: str
    status: str


class Budget(pydantic.BaseModel):
    monthly_budget_usd: Money
    spent_usd: Money
    reserved_usd: Money = pydantic.Field(description="Held by turns still running")
    remaining_usd: Money
    month: dt.date = pydantic.Field(description="First day of this UTC month")
    resets_on: dt.date = pydantic.Field(description="First day of the next UTC month")
    thresholds_crossed: list[int] = pydantic.Field(description="Of 80, 95 and 100 (% of the budget)")
    projected_month_end_usd: Money = pydantic.Field(description="This month's spend so far, extrapolated "
                                                                "to the month's end at the same daily pace")


class UsageReport(pydantic.BaseModel):
    from_: dt.date = pydantic.Field(alias="from")
    to: dt.date
    totals: Totals
    by_model: list[ModelFigures]
    by_service: list[ServiceFigures]
    by_document: list[DocumentFigures]
    by_day: list[DayFigures] = pydantic.Field(description="Every day of the range, zeros included")
    budget: Budget


def get_usage(ctx: RequestContext) -> Any:
    """My usage in a range of UTC days (default: this UTC month) and my budget."""
    query = ctx.query
    assert isinstance(query, RangeQuery) and ctx.identity is not None
    report = usage_report(ctx.runtime.database, ctx.identity, query.start, query.end)
    return UsageReport.model_validate(report).model_dump(mode="json", by_alias=True)


ROUTES = [
    Route("GET", "/", get_usage, query=RangeQuery, response=UsageReport, errors=(400, 403, 422, 503)),
]
