"""Scale: with 1,000,000 rows in the daily rollup, the admin usage report for a month and a user's
usage report read the rollup through its indexes (checked with auto_explain on the statements the
SQL functions run, not with wall time), and never the raw usage rows.

The rows are seeded straight into usage_daily with one ``insert ... select generate_series``: the
rollup is what the reports read, and a million inserts into usage_logs would run the rollup
trigger a million times."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest

from tests.support.postgres import PostgresForTests
from tests.support.users import UserFactory

USERS = 1000
DAYS = 1000  # 1000 users x 1000 days = 1,000,000 rollup rows
FIRST_DAY = "2024-01-01"


def _plans(conn: psycopg.Connection, claims: dict[str, Any], call: str, params: list[Any]) -> list[str]:
    """The plans of every statement ``call`` runs, as auto_explain reports them."""
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    with conn.transaction():
        conn.execute("load 'auto_explain'")
        conn.execute("set local auto_explain.log_min_duration = 0")
        conn.execute("set local auto_explain.log_nested_statements = on")
        conn.execute("set local auto_explain.log_level = notice")
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     [json.dumps(claims)])
        conn.execute(call, params).fetchone()
    return plans


def _rollup_scans(plans: list[str]) -> list[str]:
    lines = [line.strip() for plan in plans for line in plan.splitlines()]
    return [line for line in lines if " on usage_daily" in line or " on usage_logs" in line]


@pytest.mark.slow
def test_reports_read_the_rollup_through_its_indexes_at_a_million_rows(postgres: PostgresForTests) -> None:
    started = time.monotonic()
    url = postgres.new_database("usage_scale")
    people = UserFactory(url)
    admin, user = people.create(admin=True), people.create()
    with psycopg.connect(url, autocommit=True) as conn:
        # given 1000 users with a profile and a year and more of daily rollup rows each
        conn.execute("insert into auth.users (id, email) select gen_random_uuid(), 'scale-' || n || '@example.test'"
                     f" from generate_series(1, {USERS - 2}) n")
        conn.execute("insert into public.user_profiles (id, email, role) select id, email,"
                     " case when raw_app_meta_data ->> 'role' = 'admin' then 'admin' else 'user' end from auth.users")
        conn.execute("insert into public.usage_daily (user_id, day, service, model, requests, input_tokens,"
                     " output_tokens, cost_usd)"
                     f" select u.id, date '{FIRST_DAY}' + d, 'chat', 'gpt-6-luna', 1, 100, 10, 0.001"
                     f" from public.user_profiles u, generate_series(0, {DAYS - 1}) d")
        conn.execute("analyze public.usage_daily")
        assert conn.execute("select count(*) from public.usage_daily").fetchone() == (USERS * DAYS,)

        # when an admin reads a month by user, and a user reads a month of their own
        admin_plans = _plans(conn, {"sub": admin.id, "role": "authenticated"},
                             "select public.admin_usage_report(%s, %s, 'user')", ["2025-03-01", "2025-03-31"])
        user_plans = _plans(conn, {"sub": user.id, "role": "authenticated"},
                            "select public.get_usage_report(%s, %s)", ["2025-03-01", "2025-03-31"])

    # then every scan of the rollup goes through an index, and the raw rows are never read
    for plans in (admin_plans, user_plans):
        scans = _rollup_scans(plans)
        assert scans, plans
        # (a Bitmap Heap Scan reads the heap pages its Bitmap Index Scan found)
        assert not any("Seq Scan" in scan for scan in scans), scans
        assert any("Index Scan" in scan for scan in scans), scans
        assert not any("usage_logs" in scan for scan in scans), scans
    assert time.monotonic() - started < 60
