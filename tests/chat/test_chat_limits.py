"""Limits of a turn: the monthly budget under concurrency, turns per minute, message length, a
disabled account, and bad input answered 4xx with nothing stored."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from common.chat import ChatParts, reservation
from common.db.psycopg_transport import PsycopgDatabase
from common.runtime import Runtime
from common.settings import ChatSettings
from tests.chat.conftest import Apps, ask, auth, make_apps, set_budget, upload_text
from tests.chat.test_chat_turns import COMETS
from tests.support.functions import make_runtime
from tests.support.users import AppUser, UserFactory

TURNS_PER_MINUTE = 3
MAX_CHARS = 2000


@pytest.fixture(scope="module")
def limited_runtime(psycopg_db: PsycopgDatabase, database_url: str, standin: Any) -> Iterator[Runtime]:
    rt = make_runtime(psycopg_db, database_url, standin.base_url,
                      chat=ChatSettings(turns_per_minute=TURNS_PER_MINUTE, max_message_chars=MAX_CHARS))
    yield rt
    rt.openai.client.close()


@pytest.fixture(scope="module")
def apps(limited_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), limited_runtime)


@pytest.fixture(scope="module")
def unlimited(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    """The default limits (20 turns a minute), for the budget test's 20 concurrent turns."""
    return make_apps(tmp_path_factory.mktemp("functions"), runtime)


def _stored(apps: Apps, user: AppUser) -> list[dict[str, Any]]:
    return apps.sessions.get("/", headers=auth(user)).json["items"]


def test_twenty_concurrent_turns_against_a_budget_for_five(unlimited: Apps, runtime: Runtime, users: UserFactory,
                                                            standin: Any, psycopg_db: PsycopgDatabase) -> None:
    # Given a budget that holds exactly five turns' reservations, and an OpenAI slow enough that all
    # twenty turns are running at once
    admin, user = users.create(admin=True), users.create()
    upload_text(unlimited, user, "comets.txt", COMETS)
    per_turn = reservation(ChatParts(psycopg_db, None, runtime.prices, runtime.settings.openai, runtime.settings.chat))
    budget = (per_turn * 5 + per_turn / 2).quantize(Decimal("0.0001"))
    set_budget(psycopg_db, admin, user, budget)
    standin.inject_fault(r"^/responses$", method="POST", delay=2.0, times=20)
    statuses: list[int] = []
    lock = threading.Lock()

    def turn() -> None:
        status = ask(unlimited, user, "How often does Halley's comet return?").status_code
        with lock:
            statuses.append(status)

    # When twenty turns start together
    threads = [threading.Thread(target=turn) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then at most five ran, the others were refused for the budget
    assert len(statuses) == 20
    assert 1 <= statuses.count(200) <= 5 and statuses.count(402) == 20 - statuses.count(200), statuses
    spent = Decimal(psycopg_db.call("get_my_profile", {}, user.identity)["budget"]["spent_usd"])
    assert spent <= budget + per_turn


def test_a_budget_refusal_says_what_was_spent_and_when_it_resets(apps: Apps, users: UserFactory,
                                                                  psycopg_db: PsycopgDatabase) -> None:
    admin, user = users.create(admin=True), users.create()
    set_budget(psycopg_db, admin, user, Decimal("0"))
    response = ask(apps, user, "Anything?")
    assert response.status_code == 402 and response.json["code"] == "budget_exceeded"
    first_of_next_month = (dt.datetime.now(dt.timezone.utc).date().replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    assert response.json["spent_usd"] == "0" and response.json["reserved_usd"] == "0"
    assert response.json["resets_on"] == first_of_next_month.isoformat()
    assert Decimal(response.json["monthly_budget_usd"]) == 0


def test_the_turn_after_the_per_minute_limit_is_429_with_retry_after(apps: Apps, users: UserFactory) -> None:
    user = users.create()
    upload_text(apps, user, "comets.txt", COMETS)
    for _ in range(TURNS_PER_MINUTE):
        assert ask(apps, user, "What is a comet?").status_code == 200
    refused = ask(apps, user, "What is a comet?")
    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(_stored(apps, user)) == TURNS_PER_MINUTE


def test_a_disabled_user_is_403(apps: Apps, users: UserFactory, psycopg_db: PsycopgDatabase) -> None:
    admin, user = users.create(admin=True), users.create()
    set_budget(psycopg_db, admin, user, Decimal("10"))
    psycopg_db.call("admin_update_user", {"p_user_id": user.id, "p_disabled": True}, admin.identity)
    response = ask(apps, user, "Anything?")
    assert response.status_code == 403 and response.json["code"] == "user_disabled"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"message": ""}, 422, "validation_failed"),
    ({"message": "   \n\t "}, 422, "validation_failed"),
    ({"message": "x" * (MAX_CHARS + 1)}, 413, "payload_too_large"),
    ({"message": "x" * (1024 * 1024 + 1)}, 413, "payload_too_large"),
    ({"message": "hello\u0000world"}, 422, "validation_failed"),
    ({"message": 42}, 422, "validation_failed"),
    ({"message": "hi", "stream": "yes"}, 422, "validation_failed"),
    ({"message": "hi", "session_id": "not-a-uuid"}, 422, "validation_failed"),
    ({"message": "hi", "document_ids": "all"}, 422, "validation_failed"),
    ({"message": "hi", "temperature": 2}, 422, "validation_failed"),
    ({}, 422, "validation_failed"),
    ({"message": "hi", "session_id": "00000000-0000-4000-8000-000000000000"}, 404, "not_found"),
    ({"message": "hi", "document_ids": ["00000000-0000-4000-8000-000000000000"]}, 404, "not_found"),
])
def test_bad_input_is_a_clear_4xx_and_stores_nothing(apps: Apps, users: UserFactory, body: dict[str, Any],
                                                     status: int, code: str) -> None:
    user = users.create()
    response = apps.chat.post("/", headers=auth(user), json=body)
    assert response.status_code == status and response.json["code"] == code, response.json
    assert _stored(apps, user) == []


@pytest.mark.parametrize(("data", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 422),
    (b"message=hi", "application/x-www-form-urlencoded", 415),
])
def test_a_body_that_is_not_a_json_object_is_refused(apps: Apps, users: UserFactory, data: bytes,
                                                     content_type: str, status: int) -> None:
    user = users.create()
    response = apps.chat.post("/", headers=auth(user), data=data, content_type=content_type)
    assert response.status_code == status
    assert _stored(apps, user) == []


def test_another_users_session_is_404_and_gets_no_message(apps: Apps, users: UserFactory) -> None:
    owner, other = users.create(), users.create()
    upload_text(apps, owner, "comets.txt", COMETS)
    session_id = ask(apps, owner, "What is a comet?").json["session_id"]
    response = ask(apps, other, "Let me in", session_id=session_id)
    assert response.status_code == 404 and response.json["code"] == "not_found"
    assert _stored(apps, other) == []
    assert apps.sessions.get(f"/{session_id}", headers=auth(owner)).json["message_count"] == 2
