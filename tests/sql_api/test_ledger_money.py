"""Money is one domain (public.usd: exact, never negative, NaN or infinite): every money argument of
the writing functions refuses such values with DC400, and every money column refuses them even to a
direct write by the service role."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from common.db.base import Database
from common.errors import InvalidInputError
from tests.support.factories import backend, begin_turn, finish_args, finish_turn, usage_rows
from tests.support.users import UserFactory

HOSTILE_MONEY = ["NaN", "Infinity", "-Infinity", "-1", "1e30", "lots"]
MONEY_COLUMNS = {("chat_messages", "cost_usd"), ("chat_messages", "reserved_usd"), ("chat_sessions", "cost_usd"),
                 ("usage_daily", "cost_usd"), ("usage_logs", "cost_usd"), ("user_profiles", "monthly_budget_usd"),
                 ("budget_alerts", "spent_usd"), ("budget_alerts", "budget_usd")}


@pytest.mark.parametrize("value", HOSTILE_MONEY)
def test_every_money_argument_refuses_hostile_values(db: Database, users: UserFactory, value: str) -> None:
    # Given a user with a pending turn, and an admin
    user, admin = users.create(), users.create(admin=True)
    turn = begin_turn(db, user)
    finish = finish_args(turn)
    calls: list[tuple[str, dict[str, Any], Any]] = [
        ("begin_chat_turn", {"p_request_id": "r-money", "p_message": "hi", "p_max_cost_usd": value}, backend(user)),
        ("finish_chat_turn", {**finish, "p_cost_usd": value}, backend(user)),
        ("finish_chat_turn", {**finish, "p_usage_rows": [{**usage_rows(Decimal(0))[0], "cost_usd": value}]},
         backend(user)),
        ("fail_chat_turn", {"p_message_id": turn["assistant_message_id"], "p_error_code": "x", "p_error_message": "",
                            "p_cost_usd": value}, backend(user)),
        ("fail_chat_turn", {"p_message_id": turn["assistant_message_id"], "p_error_code": "x", "p_error_message": "",
                            "p_usage_rows": [{**usage_rows(Decimal(0))[0], "cost_usd": value}]}, backend(user)),
        ("admin_update_user", {"p_user_id": user.id, "p_monthly_budget_usd": value}, admin.identity),
    ]
    # When each is called with the hostile amount, then each is refused as invalid input
    for function, args, identity in calls:
        with pytest.raises(InvalidInputError):
            db.call(function, args, identity)
    # And the turn is still pending and nothing was billed
    summary = db.call("get_usage_report", {}, user.identity)
    assert summary["totals"]["cost_usd"] == 0 and summary["budget"]["monthly_budget_usd"] == 10
    assert finish_turn(db, user, turn)["message"]["status"] == "complete"


def test_every_money_column_uses_the_domain(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        in_domain = set(conn.execute("select table_name, column_name from information_schema.columns"
                                     " where table_schema = 'public' and domain_name = 'usd'"
                                     " and table_name in (select tablename from pg_tables where schemaname = 'public')"
                                     ).fetchall())
        other_money = conn.execute("select table_name, column_name from information_schema.columns"
                                   " where table_schema = 'public' and column_name like '%%usd'"
                                   " and coalesce(domain_name, '') <> 'usd'"
                                   " and table_name in (select tablename from pg_tables where schemaname = 'public')"
                                   ).fetchall()
    assert in_domain == MONEY_COLUMNS
    assert other_money == []


@pytest.mark.parametrize(("table", "column"), sorted(MONEY_COLUMNS))
@pytest.mark.parametrize("value", ["NaN", "-0.01"])
def test_a_direct_write_of_a_bad_amount_is_refused(db: Database, users: UserFactory, database_url: str,
                                                  table: str, column: str, value: str) -> None:
    # Given a user with a finished turn (a row in every money table)
    user = users.create()
    turn = begin_turn(db, user)
    finish_turn(db, user, turn)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into public.budget_alerts (user_id, month, threshold, spent_usd, budget_usd)"
                     " values (%s, date '2026-01-01', 80, 8, 10)", [user.id])
    key = {"user_profiles": "id", "usage_daily": "user_id"}.get(table, "user_id")
    # When the service role writes the bad amount straight into the column
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("select set_config('role', 'service_role', true), set_config('request.jwt.claims', %s, true)",
                     [json.dumps({"role": "service_role"})])
        # Then the domain's check refuses it
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"update public.{table} set {column} = %s::numeric where {key} = %s",  # noqa: S608
                         [value, user.id])


def test_infinity_does_not_fit_a_money_column(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for value in ("Infinity", "-Infinity"):
            with pytest.raises(psycopg.errors.NumericValueOutOfRange), conn.transaction():
                conn.execute("select %s::numeric::public.usd", [value])
