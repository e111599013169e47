"""The ledger outlives its user: deleting a user in Auth removes their profile, sessions and messages,
but their usage rows and daily rollups stay (with the user id), and the admin report still counts them."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from common.db.base import Database
from tests.support.factories import begin_turn, finish_turn
from tests.support.users import UserFactory


def test_usage_survives_the_deletion_of_its_user(db: Database, users: UserFactory, database_url: str) -> None:
    # Given a user whose finished turn cost 0.125
    user, admin = users.create(), users.create(admin=True)
    finish_turn(db, user, begin_turn(db, user), cost=Decimal("0.125"))
    # When Supabase Auth deletes the user
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", [user.id])
        profile = conn.execute("select count(*) from public.user_profiles where id = %s", [user.id]).fetchone()
        logs = conn.execute("select count(*), sum(cost_usd), bool_and(message_id is null) from public.usage_logs"
                            " where user_id = %s", [user.id]).fetchone()
        daily = conn.execute("select sum(cost_usd) from public.usage_daily where user_id = %s", [user.id]).fetchone()
    # Then the profile is gone but the ledger keeps the cost under the user's id
    assert profile == (0,)
    assert logs == (1, Decimal("0.125"), True)
    assert daily == (Decimal("0.125"),)
    report = db.call("admin_usage_report", {"p_group_by": "user"}, admin.identity)
    gone = [r for r in report["rows"] if r["key"] == user.id]
    assert gone and gone[0]["cost_usd"] == Decimal("0.125") and gone[0]["label"] == user.id
