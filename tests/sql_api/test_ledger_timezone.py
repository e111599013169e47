"""Months and days are UTC whatever the session's time zone (PostgREST lets a caller pick one per
request with ``Prefer: timezone=``): here every connection of the module's database runs in
Pacific/Kiritimati (UTC+14), on both transports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from common.db.base import Database
from tests.support.factories import begin_turn, finish_turn
from tests.support.users import UserFactory

ZONE = "Pacific/Kiritimati"


@pytest.fixture(scope="module", autouse=True)
def far_time_zone(database_url: str) -> Iterator[None]:
    """Every new connection to the module's database (both transports' pools) runs in ZONE."""
    dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} set timezone = {}").format(sql.Identifier(dbname), sql.Literal(ZONE)))
    yield


def test_the_utc_month_does_not_follow_the_session_zone(database_url: str) -> None:
    # Given 2026-11-30 12:00 UTC, already 2026-12-01 02:00 in Kiritimati
    with psycopg.connect(database_url) as conn:
        assert conn.execute("show timezone").fetchone() == (ZONE,)
        local_month, utc_month = conn.execute(
            "select date_trunc('month', %s::timestamptz)::date, private.utc_month_start(%s::timestamptz)",
            ["2026-11-30T12:00:00Z"] * 2).fetchone()
    # Then the session zone would say December, the budget month is November
    assert local_month == dt.date(2026, 12, 1)
    assert utc_month == dt.date(2026, 11, 1)


def test_budget_and_reports_give_the_utc_figures(db: Database, users: UserFactory, database_url: str) -> None:
    # Given a finished turn
    user, admin = users.create(), users.create(admin=True)
    finish_turn(db, user, begin_turn(db, user), cost=Decimal("0.5"))
    utc_today = dt.datetime.now(dt.timezone.utc).date()
    # When the user and an admin read their figures in the far zone
    summary = db.call("get_usage_report", {}, user.identity)
    report = db.call("admin_usage_report", {"p_group_by": "user"}, admin.identity)
    mine = next(r for r in report["rows"] if r["key"] == user.id)
    listed = db.call("admin_get_user", {"p_user_id": user.id}, admin.identity)
    # Then the range, the day and the month are UTC's
    assert summary["from"] == str(utc_today.replace(day=1)) and summary["to"] == str(utc_today)
    month_to_date = [str(utc_today.replace(day=1) + dt.timedelta(days=n)) for n in range(utc_today.day)]
    assert [d["day"] for d in summary["by_day"]] == month_to_date
    assert [d["cost_usd"] for d in summary["by_day"]] == [Decimal(0)] * (utc_today.day - 1) + [Decimal("0.5")]
    assert summary["budget"]["spent_usd"] == Decimal("0.5")
    next_month = (utc_today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    assert summary["budget"]["resets_on"] == str(next_month)
    assert mine["cost_usd"] == Decimal("0.5") and report["from"] == summary["from"]
    assert listed["cost_this_month_usd"] == Decimal("0.5")
