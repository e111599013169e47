"""The catalog says which functions a signed-in user may call directly (the user API), and none of
them takes what a user must not choose: money, token counts, OpenAI ids, statuses learned from
OpenAI, reservations or the acting user. Admin functions may name a user and set a budget: they
check the caller's role themselves."""

from __future__ import annotations

import re

import psycopg
import pytest

# Argument names a user-callable function must not take.
FORBIDDEN_ARG = re.compile(
    r"^p_user_id$|usd|cost|token|reserv|usage|price|latency|response_id|conversation_id|file_id|"
    r"vector_store_id|retrieval|citation|^p_model$|^p_status$|^p_error|request_id|fingerprint|^p_body$")
# What an admin function may take: the user it looks at, the budget it sets, a status filter.
ADMIN_ALLOWED_ARG = re.compile(r"^p_user_id$|^p_monthly_budget_usd$|^p_status$")
# Read filters a user chooses for their own lists.
READ_FILTER_ARG = {"list_documents": {"p_status"}}

USER_CALLABLE = """
select p.proname, coalesce(p.proargnames, '{}'), p.prosrc, p.provolatile
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'public' and p.prokind = 'f'
   and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute'))
"""


def _user_callable(database_url: str) -> list[tuple[str, list[str], str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(USER_CALLABLE).fetchall()


def _offences(name: str, args: list[str], source: str) -> list[str]:
    found = []
    for arg in args:
        if not FORBIDDEN_ARG.search(arg):
            continue
        if name.startswith("admin_") and "private.require_admin()" in source and ADMIN_ALLOWED_ARG.search(arg):
            continue
        if arg in READ_FILTER_ARG.get(name, set()):
            continue
        found.append(f"{name}({arg})")
    return found


def _offenders(database_url: str) -> list[str]:
    functions = _user_callable(database_url)
    assert len(functions) > 10
    return sorted(o for name, args, source, _ in functions for o in _offences(name, args, source))


def test_no_user_callable_function_takes_what_a_user_must_not_choose(database_url: str) -> None:
    # Given every function anon or authenticated may execute, when each argument is checked against
    # what only the backend may pass, then none is found
    offenders = _offenders(database_url)
    assert offenders == [], f"user-callable functions taking backend-only arguments: {offenders}"


def test_the_backend_api_is_granted_to_the_service_role_only(database_url: str) -> None:
    backend = ["begin_chat_turn", "record_chat_response", "finish_chat_turn", "fail_chat_turn",
               "list_stale_chat_turns", "idempotency_begin", "idempotency_finish"]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select p.proname, has_function_privilege('authenticated', p.oid, 'execute'),"
            " has_function_privilege('anon', p.oid, 'execute'), has_function_privilege('service_role', p.oid, 'execute'),"
            " (p.proargnames)[1] from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = any(%s)",
            [backend]).fetchall()
    assert sorted(r[0] for r in rows) == sorted(backend)  # one signature each: no old overload left
    for name, by_user, by_anon, by_service, first_arg in rows:
        assert (by_user, by_anon, by_service) == (False, False, True), name
        assert first_arg == "p_user_id" or name == "list_stale_chat_turns", name
