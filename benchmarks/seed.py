"""Seeding of the scale database through SQL (``insert ... select generate_series``), as the superuser.

The ledger is seeded with its rollup trigger off (``session_replication_role = replica``) and the
daily rollup is then built from the raw rows in one aggregate insert: the same rows the trigger would
have written, in seconds instead of minutes. The usage reads (``GET /usage``, ``GET /admin/usage``)
read only the rollup, so this is what they see in production.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

WORDS = ("budget", "travel", "contract", "invoice", "roadmap", "hiring", "pricing", "security")


@dataclass(frozen=True)
class Sizes:
    users: int
    usage_rows: int
    messages: int
    long_session_messages: int
    documents: int
    documents_of_one_user: int


DEFAULT_SIZES = Sizes(users=1000, usage_rows=1_000_000, messages=1_000_000, long_session_messages=10_000,
                      documents=100_000, documents_of_one_user=1000)
TINY_SIZES = Sizes(users=10, usage_rows=2000, messages=2000, long_session_messages=200, documents=300,
                   documents_of_one_user=20)


def seed_users(conn: psycopg.Connection, count: int) -> None:
    """``count`` more users in auth.users, and a profile for every user without one."""
    conn.execute("insert into auth.users (id, email) select gen_random_uuid(), 'seed-' || g || '@example.test'"
                 " from generate_series(1, %s::integer) g", [count])
    conn.execute("insert into public.user_profiles (id, email, role) select id, email, case when"
                 " raw_app_meta_data->>'role' = 'admin' then 'admin' else 'user' end from auth.users"
                 " on conflict (id) do nothing")


def seed_usage(conn: psycopg.Connection, rows: int, *, user_id: str, first: int = 1) -> None:
    """``rows`` chat ledger rows over the last 90 days (one in ``users`` is ``user_id``'s), then the
    daily rollup rebuilt from every raw row."""
    conn.execute("set session_replication_role = replica")
    conn.execute(
        "with ids as (select array_agg(id order by id = %s desc, id) a, count(*) n from public.user_profiles)"
        " insert into public.usage_logs (user_id, service, model, input_tokens, output_tokens, cost_usd, created_at)"
        " select ids.a[1 + g %% ids.n], 'chat', 'gpt-6-luna', 1000, 100, 0.0012,"
        "  now() - (g %% 129600) * interval '1 minute' from ids, generate_series(%s::bigint, %s::bigint) g",
        [user_id, first, first + rows - 1])
    conn.execute("set session_replication_role = origin")
    conn.execute("delete from public.usage_daily where true")
    conn.execute(
        "insert into public.usage_daily (user_id, day, service, model, requests, input_tokens, cached_tokens,"
        " cache_write_tokens, output_tokens, reasoning_tokens, tool_calls, quantity, cost_usd)"
        " select user_id, (created_at at time zone 'UTC')::date, service, coalesce(model, ''), count(*),"
        " sum(input_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(output_tokens),"
        " sum(reasoning_tokens), sum(tool_calls), sum(quantity), sum(cost_usd)"
        " from public.usage_logs group by 1, 2, 3, 4")
    conn.execute("analyze public.usage_logs")
    conn.execute("analyze public.usage_daily")


def seed_chats(conn: psycopg.Connection, sizes: Sizes, *, user_id: str) -> str:
    """One long session of ``user_id`` and sessions of 100 messages spread over every user, holding
    ``sizes.messages`` messages in all; returns the long session's id."""
    long_id = conn.execute("insert into public.chat_sessions (user_id, title, message_count) values (%s,"
                           " 'A long session', %s) returning id::text",
                           [user_id, sizes.long_session_messages]).fetchone()[0]  # type: ignore[index]
    bulk = max(1, (sizes.messages - sizes.long_session_messages) // 100)
    conn.execute(
        "with ids as (select array_agg(id order by id = %s desc, id) a, count(*) n from public.user_profiles)"
        " insert into public.chat_sessions (user_id, title, message_count)"
        " select ids.a[1 + g %% ids.n], 'Session about ' || (%s::text[])[1 + g %% %s], 100"
        " from ids, generate_series(1, %s::integer) g", [user_id, list(WORDS), len(WORDS), bulk])
    message = ("insert into public.chat_messages (session_id, user_id, role, content, created_at)"
               " select s.id, s.user_id, case when g %% 2 = 0 then 'user' else 'assistant' end,"
               " 'A note about the ' || (%s::text[])[1 + g %% %s] || ' of item ' || g,"
               " now() - interval '30 days' + g * interval '1 second' from {source}")
    conn.execute(message.format(source="public.chat_sessions s, generate_series(1, %s::integer) g where s.id = %s"),
                 [list(WORDS), len(WORDS), sizes.long_session_messages, long_id])
    conn.execute(message.format(source="public.chat_sessions s, generate_series(1, 100) g where s.id <> %s"),
                 [list(WORDS), len(WORDS), long_id])
    conn.execute("analyze public.chat_sessions")
    conn.execute("analyze public.chat_messages")
    return str(long_id)


def seed_documents(conn: psycopg.Connection, sizes: Sizes, *, user_id: str) -> None:
    """``sizes.documents`` ready documents, ``sizes.documents_of_one_user`` of them ``user_id``'s, the
    rest spread over the other users."""
    conn.execute("update public.user_profiles set vector_store_id = 'vs_seed_' || replace(id::text, '-', '')"
                 " where vector_store_id is null")
    row = ("select {owner}, 'doc-' || g || '.txt', 'text/plain', 100, md5(g::text) || md5((g + 1)::text),"
           " 'file-seed-' || g, 'vs_seed', 'ready' from {source}")
    insert = ("insert into public.documents (user_id, name, mime_type, size_bytes, sha256, openai_file_id,"
              " vector_store_id, status) ")
    conn.execute(insert + row.format(owner="%s::uuid", source="generate_series(1, %s::integer) g"),
                 [user_id, sizes.documents_of_one_user])
    conn.execute(
        "with ids as (select array_agg(id) filter (where id <> %s) a, count(*) - 1 n from public.user_profiles) "
        + insert + row.format(owner="ids.a[1 + g %% ids.n]", source="ids, generate_series(%s::bigint, %s::bigint) g"),
        [user_id, sizes.documents_of_one_user + 1, sizes.documents])
    conn.execute("analyze public.documents")
