"""The per-request queries of a chat turn and of the usage report use indexes at scale: with
100,000 messages, 100,000 documents and 30,000 rollup rows, no statement run inside
begin/finish/report scans chat_messages, documents, usage_logs or usage_daily (the documents a turn
may search start from the user's own and their accepted shares). Plans are read with auto_explain (nested statements
included), so the test sees the functions' own queries, not copies of them."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.support.factories import finish_args

USERS = 1000
MESSAGES_PER_USER = 100
DAYS = 30
DOCUMENTS_PER_USER = 100
SCANNED = ("Seq Scan on chat_messages", "Seq Scan on documents", "Seq Scan on usage_logs",
           "Seq Scan on usage_daily")


@pytest.fixture(scope="module")
def crowded(database_url: str) -> str:
    """USERS users, each with a session, MESSAGES_PER_USER settled messages, DOCUMENTS_PER_USER ready
    documents and DAYS rollup rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email) select gen_random_uuid(), 'crowd' || n || '@example.test'"
                     " from generate_series(1, %s) n", [USERS])
        conn.execute("insert into public.user_profiles (id, email) select id, email from auth.users")
        conn.execute("insert into public.chat_sessions (user_id, title) select id, 'crowd' from public.user_profiles")
        conn.execute(
            "insert into public.chat_messages (session_id, user_id, role, status, content, cost_usd, created_at)"
            " select s.id, s.user_id, case when n %% 2 = 0 then 'user' else 'assistant' end, 'complete', 'x', 0.001,"
            "        now() - n * interval '1 minute'"
            "   from public.chat_sessions s cross join generate_series(1, %s) n", [MESSAGES_PER_USER])
        conn.execute("insert into public.documents (user_id, name, mime_type, size_bytes, sha256, status)"
                     " select p.id, 'doc' || n, 'text/plain', 10, encode(sha256((p.id::text || n)::bytea), 'hex'),"
                     "        'ready'"
                     "   from public.user_profiles p cross join generate_series(1, %s) n", [DOCUMENTS_PER_USER])
        # A month of storage rows per document, as the registry writes them (the rollup of these is
        # seeded below with the rest, so the trigger is held off meanwhile).
        conn.execute("alter table public.usage_logs disable trigger usage_logs_rollup")
        conn.execute("insert into public.usage_logs (user_id, document_id, service, quantity, cost_usd, created_at)"
                     " select d.user_id, d.id, 'vector_storage', 0.001, 0.0001, now() - n * interval '1 day'"
                     "   from public.documents d cross join generate_series(0, %s) n", [DAYS // 10])
        conn.execute("alter table public.usage_logs enable trigger usage_logs_rollup")
        conn.execute("insert into public.usage_daily (user_id, day, service, model, requests, cost_usd)"
                     " select p.id, (now() at time zone 'UTC')::date - d, 'chat', 'm', 1, 0.01"
                     "   from public.user_profiles p cross join generate_series(0, %s) d", [DAYS - 1])
        conn.execute("analyze")
        return str(conn.execute("select id from public.user_profiles limit 1").fetchone()[0])


def _plans_of(database_url: str, role: str, claims: dict[str, Any], statement: str,
              params: list[Any]) -> tuple[Any, list[str]]:
    plans: list[str] = []
    with psycopg.connect(database_url) as conn:
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        conn.execute("load 'auto_explain'")
        for setting, value in [("auto_explain.log_min_duration", "0"), ("auto_explain.log_nested_statements", "on"),
                               ("auto_explain.log_level", "notice"), ("client_min_messages", "notice")]:
            conn.execute("select set_config(%s, %s, false)", [setting, value])
        with conn.transaction():
            conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                         [role, json.dumps(claims)])
            result = conn.execute(statement, params).fetchone()[0]
    return result, plans


def _scans(plans: list[str]) -> list[str]:
    return [p for p in plans if any(s in p for s in SCANNED)]


def test_a_turn_and_a_summary_use_indexes_at_scale(database_url: str, crowded: str) -> None:
    service = {"role": "service_role"}
    # When a crowded user's turn begins and finishes, and they read their summary
    turn, begin_plans = _plans_of(database_url, "service_role", service,
                                  "select public.begin_chat_turn(p_user_id => %s, p_request_id => %s,"
                                  " p_message => 'q', p_max_cost_usd => 0.01)", [crowded, f"r-{uuid.uuid4()}"])
    args = finish_args(turn, cost=Decimal("0.002"))
    _, finish_plans = _plans_of(
        database_url, "service_role", service,
        "select public.finish_chat_turn(p_user_id => %s, p_message_id => %s, p_response_id => %s, p_model => %s,"
        " p_content => %s, p_citations => %s, p_retrieval => %s, p_usage => %s, p_usage_rows => %s,"
        " p_cost_usd => %s, p_price_version => %s, p_latency_ms => %s)",
        [crowded, args["p_message_id"], args["p_response_id"], args["p_model"], args["p_content"],
         json.dumps(args["p_citations"]), json.dumps(args["p_retrieval"]), json.dumps(args["p_usage"]),
         json.dumps(args["p_usage_rows"], default=str), args["p_cost_usd"], args["p_price_version"],
         args["p_latency_ms"]])
    _, summary_plans = _plans_of(database_url, "authenticated", {"role": "authenticated", "sub": crowded},
                                 "select public.get_usage_report()", [])
    # Then plans were seen for every call, and none scans a big table
    assert begin_plans and finish_plans and summary_plans
    assert _scans(begin_plans + finish_plans + summary_plans) == []
