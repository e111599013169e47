"""Benchmarks (figures, not pass/fail): ``./deploy.sh bench [--scale-10m] [--tiny] [--out DIR]``.

Writes ``BENCHMARKS.md`` and ``BENCHMARKS.json`` (the same figures) at the repository root:

1. cold start of each function, first request included, next to a bare functions-framework hello
   (:mod:`benchmarks.cold_start`);
2. warm overhead per endpoint and transport, next to the hello, the bare SQL call and the model call;
   round trips counted by the transports; time to first byte of a streamed answer
   (:mod:`benchmarks.warm` on :mod:`benchmarks.stack`);
3. scale: the per-request queries over seeded millions of rows, and the registry refresh
   (:mod:`benchmarks.scale`).

``--tiny`` runs every part on a few rows and requests (what the test suite checks); ``--scale-10m``
adds the 10,000,000-row usage case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _environment(database_url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        server = conn.execute("show server_version").fetchone()
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "postgresql": server[0] if server else "unknown", "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run(*, tiny: bool, scale_10m: bool) -> dict[str, Any]:
    """Every benchmark, in one run; returns the figures (what BENCHMARKS.json holds)."""
    from benchmarks import cold_start, scale, warm
    from benchmarks.stack import running_stack
    from tests.support.postgres import PostgresForTests
    from tests.support.postgrest_emulator import start_postgrest_emulator
    from tests.support.standin_process import StandinProcess
    from tests.support.users import TEST_JWT_SECRET, UserFactory

    started = time.perf_counter()
    figures: dict[str, Any] = {"tiny": tiny}
    figures["cold_start"] = cold_start.measure(("usage",) if tiny else cold_start.FUNCTIONS, runs=1 if tiny else 7)
    requests, concurrencies = (3, (1, 2)) if tiny else (100, (1, 8))
    with ExitStack() as cleanup:
        pg = PostgresForTests()
        cleanup.callback(pg.close)
        url = pg.new_database("bench")
        figures["environment"] = _environment(url)
        with ExitStack() as warm_parts:
            emulator = start_postgrest_emulator(url, TEST_JWT_SECRET)
            warm_parts.callback(emulator.stop)
            standin = StandinProcess()
            warm_parts.callback(standin.stop)
            stack = warm_parts.enter_context(running_stack(url, standin.base_url, emulator.url))
            users = UserFactory(url)
            chatter = warm.chat_user(stack.deployments["psycopg"], users)
            figures["floors"] = warm.measure_floors(stack, chatter, requests=requests, concurrencies=concurrencies)
            figures["warm"] = {}
            for transport, deployment in stack.deployments.items():
                measured = warm.measure_deployment(stack, deployment, users, chatter, requests=requests,
                                                   concurrencies=concurrencies)
                figures["warm"][transport] = measured
                if transport == "psycopg":
                    figures["streaming"] = warm.measure_streaming(stack, deployment, chatter,
                                                                  delay_seconds=0.25, runs=2 if tiny else 7)
        figures["scale"] = scale.measure(pg, tiny=tiny, scale_10m=scale_10m)
    figures["duration_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./deploy.sh bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few rows and requests per part (a smoke run)")
    parser.add_argument("--scale-10m", action="store_true", help="also measure at 10,000,000 usage rows")
    parser.add_argument("--out", type=Path, default=ROOT, help="where BENCHMARKS.md and BENCHMARKS.json go")
    parser.add_argument("--from-json", type=Path, help="only render BENCHMARKS.md again from a BENCHMARKS.json")
    options = parser.parse_args(argv)
    from benchmarks.report import render

    if options.from_json:
        figures = json.loads(options.from_json.read_text())
        (options.out / "BENCHMARKS.md").write_text(render(figures))
        return 0
    figures = run(tiny=options.tiny, scale_10m=options.scale_10m)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "BENCHMARKS.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (options.out / "BENCHMARKS.md").write_text(render(figures))
    print(f"wrote {options.out / 'BENCHMARKS.md'} and BENCHMARKS.json in {figures['duration_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
