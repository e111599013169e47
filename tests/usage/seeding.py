"""Seeding usage for the report tests: ledger rows written as the backend writes them (into
usage_logs, so the rollup trigger builds usage_daily), and the SQL sums they must add up to."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from common.db.base import Database
from tests.support.users import AppUser


@dataclass(frozen=True)
class Row:
    user_id: str
    at: dt.datetime
    service: str
    model: str | None
    cost: Decimal
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0
    quantity: Decimal = Decimal("0")

    @property
    def utc_day(self) -> dt.date:
        return self.at.astimezone(dt.UTC).date()


def seed_usage(database_url: str, rows: list[Row]) -> None:
    """Insert ``rows`` into usage_logs in one statement (the trigger keeps usage_daily in step)."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into public.usage_logs (user_id, service, model, input_tokens, cached_tokens, cache_write_tokens,"
            " output_tokens, reasoning_tokens, tool_calls, quantity, cost_usd, request_id, created_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(r.user_id, r.service, r.model, r.input_tokens, r.cached_tokens, r.cache_write_tokens, r.output_tokens,
              r.reasoning_tokens, r.tool_calls, r.quantity, r.cost, f"seed_{uuid.uuid4().hex}", r.at) for r in rows])


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def utc_at(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def signed_in(db: Database, *users: AppUser) -> None:
    """Give ``users`` their profiles, as their first request does."""
    for user in users:
        db.call("get_my_profile", {}, user.identity)
