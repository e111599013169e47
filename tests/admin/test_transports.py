"""The usage and admin SQL functions answer alike through psycopg and through supabase-py (the
PostgREST emulator), including the ones that write while they read (alerts, audit)."""

from __future__ import annotations

from decimal import Decimal

from common.db.base import Database
from common.health import shipped_migrations
from tests.support.factories import begin_turn, finish_turn
from tests.support.users import UserFactory


def test_reports_and_audited_reads_over_each_transport(db: Database, users: UserFactory) -> None:
    # given a user's billed turn and an admin
    admin, user = users.create(admin=True), users.create()
    turn = begin_turn(db, user)
    finish_turn(db, user, turn, cost=Decimal("0.0031"))
    # when each report is read through this transport
    mine = db.call("get_usage_report", {}, user.identity)
    grouped = db.call("admin_usage_report", {"p_group_by": "user"}, admin.identity)
    messages = db.call("admin_list_session_messages", {"p_session_id": turn["session"]["id"],
                                                       "p_limit": 10}, admin.identity)
    health = db.call("admin_health_report", {"p_migrations": shipped_migrations(), "p_pending_seconds": 900},
                     admin.identity)
    audit = db.call("admin_list_audit", {"p_limit": 5}, admin.identity)
    # then the figures are exact decimals and the reads were audited in the same call
    assert Decimal(str(mine["totals"]["cost_usd"])) == Decimal("0.0031") and mine["new_alerts"] == []
    assert Decimal(str(next(r["cost_usd"] for r in grouped["rows"] if r["key"] == user.id))) == Decimal("0.0031")
    assert [m["content"] for m in messages["items"]] == [None, None]
    assert health["migrations_pending"] == []
    assert audit["items"][0]["action"] == "session.messages.read"
