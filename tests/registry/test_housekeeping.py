"""The registry refresh's housekeeping: chat turns whose stream was lost are settled from OpenAI
with their real usage and cost, once; a duplicated vector-store create leaves no orphan."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from common.api.registry_refresh import run_steps
from common.db.psycopg_transport import PsycopgDatabase
from common.documents import ensure_vector_store
from common.pricing import PriceTable, TokenUsage
from common.registry import RegistryRun
from common.runtime import Runtime
from common.settings import ChatSettings
from tests.chat.conftest import Apps, ask, history, make_apps, total_cost, upload_text, usage_rows_of
from tests.chat.test_chat_turns import COMETS
from tests.support.factories import begin_turn, make_document
from tests.support.functions import make_runtime
from tests.support.users import UserFactory

TIMEOUT_SECONDS = 1


@pytest.fixture(scope="module")
def short_runtime(psycopg_db: PsycopgDatabase, database_url: str, standin: Any) -> Iterator[Runtime]:
    """Turns time out after a second, so a turn is stale moments after it began; OpenAI calls time out
    after a second too, so a slow store create is sent again."""
    rt = make_runtime(psycopg_db, database_url, standin.base_url, chat=ChatSettings(timeout_seconds=TIMEOUT_SECONDS),
                      openai_timeout_seconds=1.0)
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def apps(short_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), short_runtime)


def _refresh(runtime: Runtime) -> dict[str, Any]:
    """One registry run with the scheduled function's steps, stale as soon as the chat timeout passed."""
    run = RegistryRun(runtime.database, runtime.openai.files, runtime.prices, runtime.settings.registry,
                      steps=run_steps(runtime, stale_margin_seconds=0))
    return run.execute()


def test_a_stream_cut_after_created_is_settled_by_one_refresh_with_its_real_cost_once(
        apps: Apps, users: UserFactory, standin: Any, short_runtime: Runtime, database_url: str) -> None:
    # Given a turn whose stream was cut right after OpenAI made the response (the response completes there)
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    standin.inject_fault(r"^/responses$", method="POST", cut_after_created=True)
    cut = ask(apps, user, "How often does Halley's comet return?")
    assert cut.status_code == 502 and cut.json["code"] == "upstream_error", cut.json
    session_id = apps.sessions.get("/", headers={"Authorization": f"Bearer {user.token}"}).json["items"][0]["id"]
    [_, pending] = history(apps, user, session_id)
    assert pending["status"] == "pending"
    time.sleep(TIMEOUT_SECONDS + 0.2)
    # When the registry refresh runs
    run = _refresh(short_runtime)
    # Then the turn is complete, with the answer OpenAI made, its quotes, usage and cost
    assert run["status"] == "completed" and run["figures"]["turns_finished"] >= 1, run
    [_, settled] = history(apps, user, session_id)
    assert settled["status"] == "complete" and settled["content"] and settled["citations"]
    assert all(c["quote"] in COMETS for c in settled["citations"])
    usage = settled["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0 and usage["file_search_calls"] == 1
    expected = PriceTable.load().turn_cost(short_runtime.settings.openai.model, TokenUsage(
        input_tokens=usage["input_tokens"], cached_tokens=usage["cached_tokens"], output_tokens=usage["output_tokens"],
        reasoning_tokens=usage["reasoning_tokens"], file_search_calls=usage["file_search_calls"]))
    assert Decimal(settled["cost_usd"]) == expected.total > 0
    rows = usage_rows_of(database_url, settled["id"])
    assert sorted(r["service"] for r in rows) == ["chat", "file_search"] and total_cost(rows) == expected.total
    # And a second refresh bills nothing more
    _refresh(short_runtime)
    assert history(apps, user, session_id)[-1] == settled and len(usage_rows_of(database_url, settled["id"])) == 2


def test_a_turn_that_never_reached_openai_is_failed_without_cost(
        users: UserFactory, psycopg_db: PsycopgDatabase, short_runtime: Runtime, database_url: str) -> None:
    # Given a turn that began but whose request died before OpenAI made a response
    user = users.create()
    turn = begin_turn(psycopg_db, user)
    time.sleep(TIMEOUT_SECONDS + 0.2)
    # When the registry refresh runs, then the turn is failed as abandoned, with no cost
    run = _refresh(short_runtime)
    assert run["figures"]["turns_failed"] >= 1, run
    [message] = [m for m in psycopg_db.call("list_session_messages", {"p_session_id": turn["session"]["id"]},
                                            user.identity)["items"] if m["role"] == "assistant"]
    assert (message["status"], message["error_code"]) == ("failed", "turn_abandoned")
    assert Decimal(message["cost_usd"]) == 0 and usage_rows_of(database_url, message["id"]) == []
    budget = psycopg_db.call("get_my_profile", {}, user.identity)["budget"]
    assert Decimal(budget["reserved_usd"]) == 0


def test_a_duplicated_store_create_leaves_no_orphan_after_one_refresh(
        users: UserFactory, psycopg_db: PsycopgDatabase, standin: Any, short_runtime: Runtime) -> None:
    # Given a first upload whose store create answered too late, so a second store was made and recorded
    files = short_runtime.openai.files
    user = users.create()
    make_document(psycopg_db, user, status="uploading")

    def owned() -> list[str]:
        return [s.vector_store_id for page in files.store_pages() for s in page if s.user_id == user.id]

    standin.inject_fault(r"^/vector_stores$", method="POST", delay=1.5)
    recorded = ensure_vector_store(psycopg_db, files, user.id, None)
    deadline = time.monotonic() + 5
    while len(owned()) < 2:
        assert time.monotonic() < deadline, "the late create never finished"
        time.sleep(0.05)
    # When one registry refresh runs (grace period zero)
    run = _refresh(short_runtime)
    # Then only the recorded store is left, and the run counted the orphan it deleted
    assert owned() == [recorded]
    assert run["figures"]["orphan_stores_deleted"] >= 1, run
