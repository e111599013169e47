"""Shapes shared by the usage and admin reports: the figures every report row carries, what a
document cost, and the date range query."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pydantic

Money = Decimal


class Figures(pydantic.BaseModel):
    """Sums from the daily rollup: usage rows, tokens by kind, tool calls, quantity (GB-days for
    storage) and cost in USD."""

    requests: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    tool_calls: int
    quantity: Decimal
    cost_usd: Money


class DocumentCost(pydantic.BaseModel):
    """What a document cost in a range: the completed turns that cited it (a turn citing two documents
    counts for each) and its vector storage, charged to its owner; ``cost_usd`` is both together."""

    turns: int
    turn_cost_usd: Money
    storage_gb_days: Decimal
    storage_cost_usd: Money
    cost_usd: Money


class RangeQuery(pydantic.BaseModel):
    """``from``/``to``: UTC days, both included; default this UTC month up to today."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)

    start: dt.date | None = pydantic.Field(default=None, alias="from")
    end: dt.date | None = pydantic.Field(default=None, alias="to")
