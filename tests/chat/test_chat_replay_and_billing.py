"""A turn's Idempotency-Key (a replay answers the stored turn, 409 while it runs or after it failed),
an answer cut short by the output cap (kept, billed, flagged), and the budget alert a turn reaches."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from common.chat import ChatParts, reservation
from common.db.psycopg_transport import PsycopgDatabase
from common.runtime import Runtime
from common.usage import BUDGET_ALERT_EVENT, record_budget_alerts
from tests.chat.conftest import Apps, ask, auth, history, make_apps, set_budget, total_cost, upload_text, usage_rows_of
from tests.chat.test_chat_turns import COMETS
from tests.support.factories import begin_turn, finish_turn
from tests.support.functions import make_runtime
from tests.support.users import UserFactory

QUESTION = "How often does Halley's comet return?"


def _responses_posts(standin: Any) -> int:
    return len([r for r in standin.requests if r.method == "POST" and r.path == "/v1/responses"])


def _keyed(apps: Apps, user: Any, key: str, **fields: Any) -> Any:
    return apps.chat.post("/", headers=auth(user, **{"Idempotency-Key": key}), json={"message": QUESTION, **fields})


def test_a_replayed_key_answers_the_stored_turn_without_asking_openai_again(
        apps: Apps, users: UserFactory, standin: Any, database_url: str) -> None:
    # Given a turn answered under an Idempotency-Key
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    first = _keyed(apps, user, "turn-key-0001")
    assert first.status_code == 200, first.json
    standin.clear_requests()
    # When the client sends the same request with the same key again
    again = _keyed(apps, user, "turn-key-0001")
    # Then it gets the stored turn, OpenAI is not asked, nothing more is stored or billed
    assert again.status_code == 200 and again.json["message"] == first.json["message"]
    assert again.json["session_id"] == first.json["session_id"] and _responses_posts(standin) == 0
    assert len(history(apps, user, first.json["session_id"])) == 2
    assert len(usage_rows_of(database_url, first.json["message"]["id"])) == 2
    # And the key sent with another question is refused, storing nothing
    other = apps.chat.post("/", headers=auth(user, **{"Idempotency-Key": "turn-key-0001"}),
                           json={"message": "Something else entirely?"})
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert len(history(apps, user, first.json["session_id"])) == 2


def test_a_key_whose_turn_is_running_is_409_and_one_that_failed_is_409_with_its_code(
        apps: Apps, users: UserFactory, standin: Any) -> None:
    # Given a turn still running under a key (OpenAI is slow)
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    standin.inject_fault(r"^/responses$", method="POST", delay=1.5)
    results: list[Any] = []
    running = threading.Thread(target=lambda: results.append(_keyed(apps, user, "turn-key-0002")))
    running.start()
    deadline = time.monotonic() + 5
    while not apps.sessions.get("/", headers=auth(user)).json["items"]:
        assert time.monotonic() < deadline, "the turn never began"
        time.sleep(0.05)
    # When the same key is sent while it runs, then it is 409 idempotency_in_progress with Retry-After
    during = _keyed(apps, user, "turn-key-0002")
    assert during.status_code == 409 and during.json["code"] == "idempotency_in_progress"
    assert int(during.headers["Retry-After"]) >= 1
    running.join(30)
    assert results[0].status_code == 200
    # And a key whose turn failed answers 409 conflict naming the failure; a new key asks again
    standin.inject_fault(r"^/responses$", method="POST", status=500)
    assert _keyed(apps, user, "turn-key-0003").status_code == 503
    after = _keyed(apps, user, "turn-key-0003")
    assert after.status_code == 409 and after.json["code"] == "conflict" and after.json["error_code"]
    assert _keyed(apps, user, "turn-key-0004").status_code == 200


def test_an_answer_cut_short_by_the_output_cap_is_kept_billed_and_flagged(
        apps: Apps, users: UserFactory, psycopg_db: PsycopgDatabase, database_url: str, standin: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given the output a full answer to a question takes
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    full = ask(apps, user, QUESTION).json["message"]
    assert full["incomplete_reason"] is None
    usage = full["usage"]
    cap = usage["reasoning_tokens"] + (usage["output_tokens"] - usage["reasoning_tokens"]) // 2
    # When the same question is asked with an output cap that stops the answer half way
    capped = make_runtime(psycopg_db, database_url, standin.base_url, max_output_tokens=cap)
    try:
        response = ask(make_apps(tmp_path_factory.mktemp("capped"), capped), user, QUESTION)
    finally:
        capped.openai.client.close()
    # Then the partial answer is stored and billed, and says it stopped early
    assert response.status_code == 200, response.json
    message = response.json["message"]
    assert message["status"] == "complete" and message["incomplete_reason"] == "max_output_tokens"
    assert message["content"] and full["content"].startswith(message["content"])
    assert len(message["content"]) < len(full["content"])
    assert Decimal(message["cost_usd"]) > 0 and total_cost(usage_rows_of(database_url, message["id"])) == Decimal(
        message["cost_usd"])
    assert history(apps, user, response.json["session_id"])[-1] == message


def test_a_turn_that_reaches_a_budget_threshold_logs_its_alert_once(
        apps: Apps, users: UserFactory, runtime: Runtime, psycopg_db: PsycopgDatabase,
        caplog: pytest.LogCaptureFixture) -> None:
    # Given a user who has spent just under 80 % of a budget that still admits one more turn
    admin, user = users.create(admin=True), users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    per_turn = reservation(ChatParts(psycopg_db, None, runtime.prices, runtime.settings.openai, runtime.settings.chat))
    budget = (per_turn * Decimal("5.5")).quantize(Decimal("0.0001"))
    set_budget(psycopg_db, admin, user, budget)
    earlier = begin_turn(psycopg_db, user)
    finish_turn(psycopg_db, user, earlier, cost=budget * Decimal("0.8") - Decimal("0.00000001"))
    # When one more turn is billed
    with caplog.at_level(logging.WARNING, logger="docchat.usage"):
        assert ask(apps, user, QUESTION).status_code == 200
        # (and the alerts are asked for again, as the next turn would)
        assert record_budget_alerts(psycopg_db, user.id) == []
    # Then the 80 % alert is logged once, for this user
    alerts = [r for r in caplog.records if getattr(r, "json_fields", {}).get("event") == BUDGET_ALERT_EVENT]
    assert [(a.json_fields["user_id"], a.json_fields["threshold"]) for a in alerts] == [(user.id, 80)]
