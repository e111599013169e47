"""Scale: the per-request SQL calls over seeded millions of rows (:mod:`benchmarks.seed`), each timed
as its endpoint makes it (one call through the psycopg transport, as the signed-in user or admin),
and the registry refresh over thousands of files at the stand-in (files/s, SQL calls per page)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import psycopg

from benchmarks.seed import DEFAULT_SIZES, TINY_SIZES, Sizes, seed_chats, seed_documents, seed_usage, seed_users
from benchmarks.stack import counting_runtime
from benchmarks.timing import time_calls
from common.db.base import Database
from tests.support.factories import begin_turn
from tests.support.users import AppUser, UserFactory

REGISTRY_FILES, TINY_REGISTRY_FILES = 10_000, 40
REGISTRY_STORES = 10


def _month() -> dict[str, str]:
    today = dt.datetime.now(dt.timezone.utc).date()
    return {"p_from": today.replace(day=1).isoformat(), "p_to": today.isoformat()}


def usage_queries(db: Database, user: AppUser, admin: AppUser, count: int) -> dict[str, Any]:
    return {
        "GET /usage (get_usage_report, one user)": time_calls(
            lambda: db.call("get_usage_report", {}, user.identity), count).to_json(),
        "GET /admin/usage (admin_usage_report, a month by user)": time_calls(
            lambda: db.call("admin_usage_report", {**_month(), "p_group_by": "user"}, admin.identity), count).to_json(),
    }


def other_queries(db: Database, user: AppUser, long_session: str, count: int) -> dict[str, Any]:
    return {
        "GET /sessions/{id}/messages (list_session_messages, long session)": time_calls(
            lambda: db.call("list_session_messages", {"p_session_id": long_session, "p_limit": 50}, user.identity),
            count).to_json(),
        "GET /sessions?q= (list_my_sessions, full-text search)": time_calls(
            lambda: db.call("list_my_sessions", {"p_q": "budget", "p_limit": 20}, user.identity), count).to_json(),
        "chat turn begin (begin_chat_turn, user with 1,000 documents)": time_calls(
            lambda: begin_turn(db, user, max_cost=Decimal("0.01"), p_max_turns_per_minute=10_000), count).to_json(),
    }


def measure_queries(url: str, sizes: Sizes, *, count: int, scale_10m: bool) -> dict[str, Any]:
    """Seed ``sizes`` into the database at ``url`` and time the scale queries (and, with
    ``scale_10m``, the usage reads again at 10,000,000 ledger rows)."""
    from common.db.psycopg_transport import PsycopgDatabase

    users = UserFactory(url)
    user, admin = users.create(), users.create(admin=True)
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for step, work in (("users", lambda: seed_users(conn, sizes.users)),
                           ("usage", lambda: seed_usage(conn, sizes.usage_rows, user_id=user.id)),
                           ("documents", lambda: seed_documents(conn, sizes, user_id=user.id))):
            begun = time.perf_counter()
            work()
            timings[step] = round(time.perf_counter() - begun, 1)
        begun = time.perf_counter()
        long_session = seed_chats(conn, sizes, user_id=user.id)
        timings["chats"] = round(time.perf_counter() - begun, 1)
    db = PsycopgDatabase(url, max_size=2)
    try:
        result: dict[str, Any] = {"sizes": sizes.__dict__, "seed_seconds": timings,
                                  "at_usage_rows": {str(sizes.usage_rows): usage_queries(db, user, admin, count)}}
        if scale_10m:
            more = 9 * sizes.usage_rows
            with psycopg.connect(url, autocommit=True) as conn:
                begun = time.perf_counter()
                seed_usage(conn, more, user_id=user.id, first=sizes.usage_rows + 1)
                timings["usage_10x"] = round(time.perf_counter() - begun, 1)
            result["at_usage_rows"][str(10 * sizes.usage_rows)] = usage_queries(db, user, admin, count)
        # Measured last, with the largest ledger: a turn's begin reads the month's spending from it.
        result["queries"] = other_queries(db, user, long_session, count)
        result["queries_at_usage_rows"] = (10 if scale_10m else 1) * sizes.usage_rows
        return result
    finally:
        db.close()


def measure_registry(url: str, standin_url: str, files: int) -> dict[str, Any]:
    """Put ``files`` documents' files in stores at the stand-in and recorded as processing, then time
    one registry refresh over them, counting its SQL calls and OpenAI pages."""
    from common.db.psycopg_transport import PsycopgDatabase
    from common.pricing import PriceTable
    from common.registry import RegistryRun
    from common.settings import RegistrySettings

    database = PsycopgDatabase(url, max_size=4)
    built = counting_runtime(database, url, standin_url)
    runtime, counting, requests, http_client = built.runtime, built.counting, built.requests, built.http_client
    try:
        owners = [UserFactory(url).create() for _ in range(REGISTRY_STORES)]
        gateway = runtime.openai
        stores = [gateway.files.create_store(owner.id) for owner in owners]

        def add(n: int) -> tuple[str, str, str, str]:
            owner, store = owners[n % REGISTRY_STORES], stores[n % REGISTRY_STORES]
            doc_id = str(uuid.uuid4())
            file_id, _ = gateway.files.upload(doc_id, f"n{n}.txt", f"note {n}".encode(), "text/plain")
            gateway.files.attach(store, file_id, document_id=doc_id, owner_id=owner.id)
            return doc_id, owner.id, file_id, store

        begun = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            rows = list(pool.map(add, range(files)))
        seed_seconds = time.perf_counter() - begun
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into public.user_profiles (id, email) select id, email from auth.users"
                         " on conflict do nothing")
            with conn.cursor() as cursor:
                cursor.executemany(
                    "insert into public.documents (id, user_id, name, mime_type, size_bytes, sha256, openai_file_id,"
                    " vector_store_id, status, created_at) values (%s, %s, 'n.txt', 'text/plain', 10,"
                    " md5(%s) || md5(%s || 'x'), %s, %s, 'processing', now() - interval '1 hour')",
                    [(doc, owner, doc, doc, file_id, store) for doc, owner, file_id, store in rows])
        counting.calls.clear()
        requests.calls.clear()
        run = RegistryRun(counting, gateway.files, PriceTable.load(),
                          RegistrySettings(service_token="bench", grace_seconds=0, time_budget_seconds=600))
        begun = time.perf_counter()
        outcome = run.execute()
        seconds = time.perf_counter() - begun
        pages = sum(n for call, n in requests.calls.items() if call.startswith("GET ") and call.endswith("/files"))
        return {"files": files, "stores": REGISTRY_STORES, "seed_seconds": round(seed_seconds, 1),
                "status": outcome["status"], "seconds": round(seconds, 2), "files_per_second": round(files / seconds, 1),
                "files_seen": outcome["figures"].get("files_seen"), "openai_pages": pages,
                "sql_calls": dict(counting.calls), "sql_calls_total": counting.total,
                "sql_calls_per_page": round(counting.total / pages, 2) if pages else None}
    finally:
        http_client.close()
        database.close()


def measure(pg: Any, *, tiny: bool, scale_10m: bool) -> dict[str, Any]:
    """Both scale parts, each on a database of its own (of PostgresForTests ``pg``); the registry
    refresh against a stand-in of its own, holding only the files it is to reconcile."""
    from tests.support.standin_process import StandinProcess

    queries = measure_queries(pg.new_database("benchscale"), TINY_SIZES if tiny else DEFAULT_SIZES,
                              count=3 if tiny else 30, scale_10m=scale_10m)
    standin = StandinProcess()
    try:
        registry = measure_registry(pg.new_database("benchregistry"), standin.base_url,
                                    TINY_REGISTRY_FILES if tiny else REGISTRY_FILES)
    finally:
        standin.stop()
    return {"queries": queries, "registry_refresh": registry}
