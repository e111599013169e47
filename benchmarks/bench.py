"""Benchmarks (figures, not pass/fail): ``./deploy.sh bench``.

1. Cold start: import time of each function's ``main.py`` in a fresh interpreter (median of 5).
2. SQL API round trips through each transport against the embedded PostgreSQL: latency of
   ``get_document``, ``list_documents`` (20 items) and a whole chat turn's two calls
   (``begin_chat_turn`` + ``finish_chat_turn``), p50 and p95 over repeated calls.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cold_starts(runs: int = 5) -> dict[str, float]:
    results = {}
    for main in sorted((ROOT / "functions").glob("*/main.py")):
        code = ("import time, runpy; t = time.perf_counter(); "
                f"runpy.run_path({str(main)!r}); print(time.perf_counter() - t)")
        times = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(runs)]
        results[main.parent.name] = statistics.median(times)
    return results


def _timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.95) - 1]


def sql_round_trips(n: int = 300) -> dict[str, dict[str, tuple[float, float]]]:
    from common.db.psycopg_transport import PsycopgDatabase
    from common.db.supabase_transport import SupabaseDatabase
    from tests.support.factories import begin_turn, finish_turn, make_document
    from tests.support.postgres import PostgresForTests
    from tests.support.postgrest_emulator import start_postgrest_emulator
    from tests.support.users import TEST_JWT_SECRET, TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, UserFactory

    pg = PostgresForTests()
    try:
        url = pg.new_database("bench")
        emulator = start_postgrest_emulator(url, TEST_JWT_SECRET)
        transports = {"psycopg": PsycopgDatabase(url, max_size=2),
                      "supabase": SupabaseDatabase(emulator.url, TEST_SECRET_KEY, publishable_key=TEST_PUBLISHABLE_KEY)}
        users = UserFactory(url)
        results = {}
        for name, db in transports.items():
            user = users.create()
            doc = make_document(db, user)
            for i in range(19):
                make_document(db, user, name=f"d{i}.txt")
            def turn() -> None:
                finish_turn(db, user, begin_turn(db, user, max_cost=Decimal("0"), p_max_turns_per_minute=10000),
                            cost=Decimal("0"))
            results[name] = {
                "get_document": _timed(lambda: db.call("get_document", {"p_document_id": doc["id"]}, user.identity), n),
                "list_documents(20)": _timed(lambda: db.call("list_documents", {"p_limit": 20}, user.identity), n),
                "chat turn (2 calls)": _timed(turn, n // 3),
            }
            db.close()
        emulator.stop()
        return results
    finally:
        pg.close()


def main() -> int:
    print("cold start (import of main.py, median of 5):")
    for name, seconds in cold_starts().items():
        print(f"  {name:20s} {seconds * 1000:7.1f} ms")
    print("SQL API round trips (p50 / p95):")
    for transport, figures in sql_round_trips().items():
        for what, (p50, p95) in figures.items():
            print(f"  {transport:9s} {what:22s} {p50 * 1000:6.2f} / {p95 * 1000:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
