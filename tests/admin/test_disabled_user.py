"""A disabled account gets 403 ``user_disabled`` on every endpoint that takes a user's token, and
cannot start a chat turn."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.db.base import Database
from common.errors import UserDisabledError
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.support.factories import begin_turn
from tests.support.functions import build_function_app
from tests.support.users import AppUser, UserFactory
from tests.upload.conftest import auth

# A valid body for each JSON body model, so the request reaches the database's account check.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "ShareIn": {"email": "someone@example.test"},
    "UserPatch": {"monthly_budget_usd": "5"},
    "ChatIn": {"message": "What is in my notes?"},
    "SessionIn": {"title": "Notes"},
    "RenameIn": {"title": "Renamed"},
}


@pytest.fixture(scope="module")
def disabled_pair(users: UserFactory, psycopg_db: Database) -> tuple[AppUser, AppUser]:
    """A disabled user and a disabled admin, disabled by another admin."""
    boss, user, admin = users.create(admin=True), users.create(), users.create(admin=True)
    for person in (user, admin):
        psycopg_db.call("get_my_profile", {}, person.identity)
        psycopg_db.call("admin_update_user", {"p_user_id": person.id, "p_disabled": True}, boss.identity)
    return user, admin


def _user_routes() -> list[tuple[str, Any]]:
    return [(name, route) for name, routes in registered_functions() for route in routes if route.auth == "user"]


@pytest.mark.parametrize(("function", "route"), _user_routes(),
                         ids=[f"{n}:{r.method}{r.path}" for n, r in _user_routes()])
def test_a_disabled_account_gets_403_everywhere(function: str, route: Any, runtime: Runtime,
                                                tmp_path_factory: pytest.TempPathFactory,
                                                disabled_pair: tuple[AppUser, AppUser]) -> None:
    client = build_function_app(Path(tmp_path_factory.mktemp("fn")), function, runtime).test_client()
    path = "/".join(str(uuid.uuid4()) if part.startswith("{") else part for part in route.path.split("/")) or "/"
    for person in disabled_pair:
        kwargs: dict[str, Any] = {}
        if route.body is not None and route.body_media == "multipart/form-data":
            kwargs = {"content_type": "multipart/form-data", "data": {"file": (io.BytesIO(b"plain words"), "a.txt")}}
        elif route.body is not None:
            if route.body.__name__ not in VALID_BODIES:
                pytest.fail(f"add a valid {route.body.__name__} body to VALID_BODIES")
            kwargs = {"json": VALID_BODIES[route.body.__name__]}
        got = client.open(path, method=route.method, headers=auth(person), **kwargs)
        assert (got.status_code, got.json["code"]) == (403, "user_disabled"), (person.admin, got.json)


def test_a_disabled_account_cannot_start_a_chat_turn(psycopg_db: Database,
                                                     disabled_pair: tuple[AppUser, AppUser]) -> None:
    with pytest.raises(UserDisabledError):
        begin_turn(psycopg_db, disabled_pair[0])
