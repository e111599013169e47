"""Scale: with 1,000,000 rows in the daily rollup and 100,000 vector-storage rows, the admin usage
report for a month (by user and by document) and a user's usage report read the rollup through its
indexes and the per-document storage rows through their partial indexes (checked with auto_explain
on the statements the SQL functions run, not with wall time); no other raw usage row is read.

The rollup rows are seeded straight into usage_daily with one ``insert ... select generate_series``:
the rollup is what the reports read, and a million inserts into usage_logs would run the rollup
trigger a million times. The storage rows go into usage_logs (one per document and UTC day, as the
registry's accrual writes them) with the rollup trigger off for the seeding statement, since the
rollup is seeded already."""

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
STORING_USERS = 100  # 100 users x one document x 1000 days = 100,000 storage rows
FIRST_DAY = "2024-01-01"
STORAGE_INDEXES = ("usage_logs_user_storage_idx", "usage_logs_storage_created_idx")


def _plans(conn: psycopg.Connection, claims: dict[str, Any], call: str, params: list[Any]) -> list[str]:
    """The plans of every statement ``call`` runs, as auto_explain reports them."""
    plans: list[str] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        plans.append(diag.message_primary or "")

    conn.add_notice_handler(collect)
    with conn.transaction():
        conn.execute("load 'auto_explain'")
        conn.execute("set local auto_explain.log_min_duration = 0")
        conn.execute("set local auto_explain.log_nested_statements = on")
        conn.execute("set local auto_explain.log_level = notice")
        conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                     [json.dumps(claims)])
        conn.execute(call, params).fetchone()
    conn.remove_notice_handler(collect)
    return plans


def _rollup_scans(plans: list[str]) -> list[str]:
    lines = [line.strip() for plan in plans for line in plan.splitlines()]
    return [line for line in lines if " on usage_daily" in line or " on usage_logs" in line]


def _reads_raw_rows(scan: str) -> bool:
    """A scan of usage_logs that is not through a per-document storage index."""
    if "usage_logs" not in scan or "Bitmap Heap Scan" in scan:  # its Bitmap Index Scan line names the index
        return False
    return not any(f"using {index} on usage_logs" in scan or f"Bitmap Index Scan on {index}" in scan
                   for index in STORAGE_INDEXES)


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
        # and a document per storing user (the reader among them) with a storage row every day
        conn.execute("alter table public.usage_logs disable trigger usage_logs_rollup")
        conn.execute("insert into public.usage_logs (user_id, document_id, service, quantity, cost_usd, request_id,"
                     " created_at)"
                     " select u.id, md5(u.id::text)::uuid, 'vector_storage', 0.001, 0.0001,"
                     "        'seed:' || u.id || ':' || d, (%s::date + d)::timestamp at time zone 'UTC'"
                     "   from (select id from public.user_profiles order by id = %s desc, id limit %s) u,"
                     "        generate_series(0, %s) d", [FIRST_DAY, user.id, STORING_USERS, DAYS - 1])
        conn.execute("alter table public.usage_logs enable trigger usage_logs_rollup")
        conn.execute("analyze public.usage_daily")
        conn.execute("analyze public.usage_logs")
        assert conn.execute("select count(*) from public.usage_daily").fetchone() == (USERS * DAYS,)
        assert conn.execute("select count(*) from public.usage_logs").fetchone() == (STORING_USERS * DAYS,)

        # when an admin reads a month by user and by document, and a user reads a month of their own
        month = ["2025-03-01", "2025-03-31"]
        admin_plans = _plans(conn, {"sub": admin.id, "role": "authenticated"},
                             "select public.admin_usage_report(%s, %s, 'user')", month)
        document_plans = _plans(conn, {"sub": admin.id, "role": "authenticated"},
                                "select public.admin_usage_report(%s, %s, 'document')", month)
        user_plans = _plans(conn, {"sub": user.id, "role": "authenticated"},
                            "select public.get_usage_report(%s, %s)", month)

    # then every scan of the rollup goes through an index, and usage_logs is read only through the
    # per-document storage indexes (by document: the admin's and the user's reports)
    for plans in (admin_plans, document_plans, user_plans):
        scans = _rollup_scans(plans)
        assert scans, plans
        # (a Bitmap Heap Scan reads the heap pages its Bitmap Index Scan found)
        assert not any("Seq Scan" in scan for scan in scans), scans
        assert any("Index Scan" in scan or "Index Only Scan" in scan for scan in scans), scans
        assert not any(_reads_raw_rows(scan) for scan in scans), scans
    assert not any("usage_logs" in scan for scan in _rollup_scans(admin_plans))
    for plans, index in ((document_plans, "usage_logs_storage_created_idx"), (user_plans, "usage_logs_user_storage_idx")):
        assert any(index in scan for scan in _rollup_scans(plans)), _rollup_scans(plans)
    assert time.monotonic() - started < 60
