"""The chat, sessions and upload functions on functions-framework, sharing one Runtime: the module's
real database (psycopg) and the real OpenAI SDK against the module's stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import flask.testing
import psycopg
import pytest

from common.db.base import Database
from common.runtime import Runtime
from tests.support.functions import build_function_app
from tests.support.users import AppUser
from tests.upload.conftest import auth, upload

@dataclass(frozen=True)
class Apps:
    """Test clients of the three functions a chat needs."""

    upload: flask.testing.FlaskClient
    chat: flask.testing.FlaskClient
    sessions: flask.testing.FlaskClient


def make_apps(directory: Path, runtime: Runtime) -> Apps:
    return Apps(*(build_function_app(directory, name, runtime).test_client()
                  for name in ("upload", "chat", "sessions")))


@pytest.fixture(scope="module")
def apps(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Apps:
    return make_apps(tmp_path_factory.mktemp("functions"), runtime)


@pytest.fixture(autouse=True)
def _no_leftover_faults(standin: Any) -> Iterator[None]:
    yield
    standin.clear_faults()


def upload_text(apps: Apps, user: AppUser, name: str, text: str) -> dict[str, Any]:
    """Upload a text document and return it (ready: the stand-in processes at once)."""
    response = upload(apps.upload, user, name, text.encode())
    assert response.status_code == 201, response.json
    return response.json


def ask(apps: Apps, user: AppUser, message: str, **fields: Any) -> Any:
    """POST /chat as ``user`` with a JSON body."""
    return apps.chat.post("/", headers=auth(user), json={"message": message, **fields})


def parse_events(chunks: Iterable[bytes | str]) -> list[tuple[str, Any]]:
    """Server-Sent Events as ``(event, data)`` pairs; comment lines become ``(":", text)``."""
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    events: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        if block.startswith(":"):
            events.append((":", block[1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def usage_rows_of(database_url: str, message_id: str) -> list[dict[str, Any]]:
    """The ledger rows of one message (read for assertions; written only through the SQL API)."""
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute("select service, tool_calls, input_tokens, output_tokens, cost_usd from public.usage_logs"
                              " where message_id = %s order by id", [message_id])
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def total_cost(rows: Iterable[dict[str, Any]]) -> Decimal:
    return sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))


def history(apps: Apps, user: AppUser, session_id: str) -> list[dict[str, Any]]:
    response = apps.sessions.get(f"/{session_id}/messages", headers=auth(user))
    assert response.status_code == 200, response.json
    return response.json["items"]


def set_budget(database: Database, admin: AppUser, user: AppUser, budget: Decimal) -> None:
    """Give ``user`` (whose profile is made on first sight) a monthly budget, as an admin does."""
    database.call("get_my_profile", {}, user.identity)
    database.call("admin_update_user", {"p_user_id": user.id, "p_monthly_budget_usd": budget}, admin.identity)
