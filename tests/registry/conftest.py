"""Registry refresh fixtures: the real database, the stand-in, and a run factory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.openai import OpenAIGateway
from common.pricing import PriceTable
from common.registry import RegistryRun
from common.runtime import Runtime
from common.settings import RegistrySettings
from tests.support.counting import CountingDatabase

RunFactory = Callable[..., RegistryRun]


@pytest.fixture(scope="module")
def gateway(runtime: Runtime) -> OpenAIGateway:
    """The OpenAI layer of the module's function Runtime (the module's stand-in)."""
    return runtime.openai


@pytest.fixture
def make_run(psycopg_db: PsycopgDatabase, gateway: OpenAIGateway) -> RunFactory:
    """``make_run(db=None, grace_seconds=0, time_budget_seconds=60, clock=None)``: a run ready to execute."""

    def make(*, db: Any = None, grace_seconds: int = 0, time_budget_seconds: float = 60.0,
             clock: Callable[[], float] | None = None, today: dt.date | None = None) -> RegistryRun:
        settings = RegistrySettings(service_token="t", grace_seconds=grace_seconds,
                                    time_budget_seconds=time_budget_seconds)
        kwargs: dict[str, Any] = {"today": (lambda: today)} if today else {}
        if clock:
            kwargs["clock"] = clock
        return RegistryRun(db or psycopg_db, gateway.files, PriceTable.load(), settings, **kwargs)

    return make


@pytest.fixture
def counting_db(psycopg_db: PsycopgDatabase) -> CountingDatabase:
    return CountingDatabase(psycopg_db)


@pytest.fixture(autouse=True)
def _reset(standin: Any, database_url: str) -> Iterator[None]:
    """Each test starts with no running run and a fresh cycle; faults never leak into the next test."""
    yield
    standin.clear_faults()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.registry_runs set status = 'failed', finished_at = now() where status = 'running'")
        conn.execute("update public.registry_state set cursor = null, cycle_started_at = now()")
