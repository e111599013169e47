"""Direct-API attacks: everything a signed-in user can reach on Supabase without our functions.

Every function granted to ``authenticated`` is called through the PostgREST emulator (POST
/rest/v1/rpc/<fn>, the publishable key and user B's own token, as any frontend can) with user A's
ids and with hostile values; every table and view is read, updated and deleted from as the
``authenticated`` role with B's claims (the emulator is RPC-only: this is what /rest/v1/<table>
runs). Afterwards no row of anyone but B has changed, and the ledger is exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from common.db.base import Database
from tests.battery.figures import record
from tests.battery.stack import Stack
from tests.support.factories import make_document, share_with
from tests.support.users import TEST_PUBLISHABLE_KEY, AppUser, UserFactory

LEDGER = ("usage_logs", "usage_daily")
GRANTED = """
select p.proname, coalesce(p.proargnames, '{}'), array(select format_type(t, null) from unnest(p.proargtypes) t)
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'f' and has_function_privilege('authenticated', p.oid, 'execute')
 order by 1
"""
RELATIONS = """
select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relkind in ('r', 'v', 'm') order by 1
"""


@pytest.fixture(scope="module")
def victim(users: UserFactory, psycopg_db: Database) -> dict[str, Any]:
    """User A with a document, an accepted share with a friend and a pending invitation."""
    a, friend, invitee = users.create(), users.create(), users.create()
    doc = make_document(psycopg_db, a)
    accepted = share_with(psycopg_db, a, doc, friend)
    pending = share_with(psycopg_db, a, doc, invitee, accept=False)
    return {"a": a, "doc": doc["id"], "accepted": accepted["share_id"], "pending": pending["share_id"],
            "friend": friend}


@pytest.fixture(scope="module")
def session_of_a(stack: Stack, victim: dict[str, Any]) -> str:
    with stack.client(victim["a"].token) as http:
        made = http.post("/sessions", json={"title": "A's"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _value_sets(name: str, argnames: list[str], types: list[str], victim: dict[str, Any],
                session: str) -> Iterator[dict[str, Any]]:
    """Argument sets for one function: A's ids where ids go, then hostile values everywhere."""
    def foreign(arg: str, kind: str) -> Any:
        if kind == "uuid":
            return {"p_session_id": session, "p_share_id": victim["pending"], "p_user_id": victim["a"].id}.get(
                arg, victim["doc"])
        if kind == "uuid[]":
            return [victim["doc"]]
        if kind in ("text", "character varying"):
            return victim["a"].email if "email" in arg else "renamed by B"
        if kind in ("integer", "bigint", "smallint"):
            return 1
        if kind in ("numeric", "usd", "public.usd"):
            return "1000000"
        if kind == "boolean":
            return True
        if kind in ("jsonb", "json"):
            return {"user_id": victim["a"].id, "document_id": victim["doc"]}
        return None
    hostile = {"uuid": victim["accepted"], "uuid[]": [victim["doc"], session], "text": "x\u202e' or 1=1 --",
               "integer": -2**31, "bigint": 2**62, "numeric": "-1", "boolean": False, "jsonb": [victim["a"].id],
               "timestamp with time zone": "1970-01-01T00:00:00Z", "date": "9999-12-31"}
    names = argnames[:len(types)]
    yield {arg: foreign(arg, kind) for arg, kind in zip(names, types, strict=True)}
    yield {arg: hostile.get(kind) for arg, kind in zip(names, types, strict=True)}
    yield {}


def _world(database_url: str, outsider: str) -> dict[str, Any]:
    """Every row of every table that is not the outsider's own, and the whole ledger."""
    seen: dict[str, Any] = {}
    with psycopg.connect(database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'public' order by 1").fetchall()]
        for table in tables:
            rows = conn.execute(sql.SQL("select to_jsonb(t)::text from public.{} t").format(
                sql.Identifier(table))).fetchall()
            values = sorted(r[0] for r in rows)
            seen[table] = values if table in LEDGER else [v for v in values if outsider not in v]
    return seen


def test_no_user_api_call_changes_another_users_data_or_the_ledger(
        postgrest: Any, database_url: str, users: UserFactory, victim: dict[str, Any], session_of_a: str) -> None:
    # given user A's document, shares and session, the whole world's rows, and user B's token
    b = users.create()
    with psycopg.connect(database_url) as conn:
        granted = conn.execute(GRANTED).fetchall()
    before = _world(database_url, b.id)
    statuses: dict[str, list[int]] = {}
    unmatched: list[str] = []
    # when B calls every function granted to authenticated with A's ids and with hostile values
    headers = {"apikey": TEST_PUBLISHABLE_KEY, "Authorization": f"Bearer {b.token}"}
    with httpx.Client(base_url=postgrest.url, headers=headers, timeout=30) as http:
        for name, argnames, types in granted:
            for args in _value_sets(name, list(argnames), list(types), victim, session_of_a):
                answer = http.post(f"/rest/v1/rpc/{name}", content=json.dumps(args),
                                   headers={"Content-Type": "application/json"})
                statuses.setdefault(name, []).append(answer.status_code)
                if args and answer.status_code == 404 and answer.json().get("code") == "PGRST202":
                    unmatched.append(name)  # the call never reached the function: the battery's own bug
    # then nothing but B's own rows changed, the ledger is untouched and no call was a server error
    assert len(granted) > 15 and unmatched == []
    codes = [code for answers in statuses.values() for code in answers]
    record("direct_api", functions=len(granted), calls=len(codes), answered_2xx=sum(c < 300 for c in codes),
           refused_4xx=sum(400 <= c < 500 for c in codes), server_errors=sum(c >= 500 for c in codes))
    assert {name: codes for name, codes in statuses.items() if any(code >= 500 for code in codes)} == {}
    after = _world(database_url, b.id)
    assert {t: (before[t], after[t]) for t in before if before[t] != after[t]} == {}


def _as_user(conn: psycopg.Connection[Any], user: AppUser, statement: sql.Composable) -> tuple[str, int]:
    """Run ``statement`` as the authenticated role with ``user``'s claims; (outcome, rows)."""
    claims = json.dumps({"sub": user.id, "role": "authenticated", "email": user.email})
    try:
        with conn.transaction():
            conn.execute("select set_config('role', 'authenticated', true),"
                         " set_config('request.jwt.claims', %s, true)", [claims])
            cursor = conn.execute(statement)
            return "ok", cursor.rowcount
    except psycopg.errors.InsufficientPrivilege:
        return "denied", 0
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return "read-only", 0


def test_tables_show_a_user_only_what_they_may_see_and_refuse_their_writes(
        database_url: str, users: UserFactory, victim: dict[str, Any], session_of_a: str) -> None:
    # given A's rows and a stranger B
    b = users.create()
    before = _world(database_url, b.id)
    leaks: dict[str, int] = {}
    writes: dict[str, tuple[str, int]] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        relations = [r[0] for r in conn.execute(RELATIONS).fetchall()]
        for relation in relations:
            name = sql.Identifier(relation)
            # when B reads every table and view
            read = sql.SQL("select to_jsonb(t)::text from public.{} t").format(name)
            claims = json.dumps({"sub": b.id, "role": "authenticated", "email": b.email})
            try:
                with conn.transaction():
                    conn.execute("select set_config('role', 'authenticated', true),"
                                 " set_config('request.jwt.claims', %s, true)", [claims])
                    rows = [r[0] for r in conn.execute(read).fetchall()]
            except psycopg.errors.InsufficientPrivilege:
                rows = []
            found = [r for r in rows if victim["a"].id in r or victim["doc"] in r or session_of_a in r]
            if found:
                leaks[relation] = len(found)
            # and tries to delete and to update every row of it
            for verb, statement in (
                    ("delete", sql.SQL("delete from public.{} where true").format(name)),
                    ("update", sql.SQL("update public.{} set {} = {} where true").format(
                        name, sql.Identifier(_first_column(conn, relation)),
                        sql.Identifier(_first_column(conn, relation))))):
                outcome = _as_user(conn, b, statement)
                if outcome[0] == "ok" and outcome[1] > 0:
                    writes[f"{verb} {relation}"] = outcome
    # then B saw none of A's rows, changed no row, and the world is as it was
    record("direct_tables", relations=len(relations), leaks=len(leaks), writes_that_changed_rows=len(writes))
    assert len(relations) >= 10
    assert leaks == {}
    assert writes == {}
    assert _world(database_url, b.id) == before


def _first_column(conn: psycopg.Connection[Any], relation: str) -> str:
    row = conn.execute("select attname from pg_attribute where attrelid = ('public.' || quote_ident(%s))::regclass"
                       " and attnum > 0 and not attisdropped and attidentity = '' and attgenerated = ''"
                       " order by attnum limit 1", [relation]).fetchone()
    assert row is not None
    return str(row[0])
