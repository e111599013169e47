"""Supabase's anonymous sign-ins get a profile of their own with a lower monthly budget, whether the
profile is first made by a user-API call (from the token) or by a backend call (from auth.users)."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from common.db.base import Database, Identity
from tests.support.users import UserFactory

ANONYMOUS_BUDGET = Decimal("0.50")


def budget_of(db: Database, identity: Identity) -> Decimal:
    return Decimal(str(db.call("get_my_profile", {}, identity)["budget"]["monthly_budget_usd"]))


def test_an_anonymous_user_first_seen_through_the_user_api_gets_the_anonymous_budget(
        db: Database, users: UserFactory) -> None:
    # Given an anonymous sign-in and an ordinary user, neither seen before
    anonymous, ordinary = users.create(anonymous=True), users.create()
    # When each first calls the user API
    # Then the anonymous user's profile starts with the lower budget, the other with the usual one
    assert budget_of(db, anonymous.identity) == ANONYMOUS_BUDGET
    assert budget_of(db, ordinary.identity) > ANONYMOUS_BUDGET


def test_an_anonymous_user_first_seen_by_the_backend_gets_the_anonymous_budget(
        db: Database, users: UserFactory) -> None:
    # Given an anonymous sign-in never seen before
    anonymous = users.create(anonymous=True)
    # When the backend acts for them first (the profile is made from auth.users)
    db.call("set_user_vector_store", {"p_vector_store_id": f"vs_{anonymous.id[:8]}"}, Identity.backend(anonymous.id))
    # Then their profile has the anonymous budget and no email
    profile = db.call("get_my_profile", {}, anonymous.identity)
    assert Decimal(str(profile["budget"]["monthly_budget_usd"])) == ANONYMOUS_BUDGET
    assert profile.get("email") is None


def test_an_ordinary_users_budget_is_the_column_default(database_url: str) -> None:
    # Given the default of user_profiles.monthly_budget_usd (what an admin reading the schema sees)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("select column_default from information_schema.columns where table_schema = 'public'"
                           " and table_name = 'user_profiles' and column_name = 'monthly_budget_usd'").fetchone()
        assert row is not None and row[0]
        # When it is compared with the budget a new, not anonymous profile is given
        same = conn.execute(f"select ({row[0]})::numeric = private.new_profile_budget(false),"  # catalog text
                            " private.new_profile_budget(true)").fetchone()
    # Then they agree, and the anonymous budget is the lower one
    assert same is not None and same[0] is True and same[1] == ANONYMOUS_BUDGET
