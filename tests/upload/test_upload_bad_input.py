"""Bad input that reaches the database answers 4xx on both transports, never 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask.testing
import pytest

from common.db.base import Database
from tests.support.functions import build_function_app, make_runtime
from tests.support.users import UserFactory
from tests.upload.conftest import auth


@pytest.fixture(scope="module")
def client_on_each_transport(db: Database, database_url: str, standin: Any,
                             tmp_path_factory: pytest.TempPathFactory) -> Iterator[flask.testing.FlaskClient]:
    """The upload function on the module's database, once over psycopg and once over supabase-py."""
    runtime = make_runtime(db, database_url, standin.base_url)
    yield build_function_app(tmp_path_factory.mktemp("bad-input"), "upload", runtime).test_client()
    runtime.openai.client.close()


@pytest.mark.parametrize("query", ["cursor=%00%ff", "cursor=%00", "cursor=abc%00def"])
def test_a_nul_in_a_query_string_is_400_not_a_database_failure(client_on_each_transport: flask.testing.FlaskClient,
                                                               users: UserFactory, query: str) -> None:
    # Given a signed-in user
    user = users.create()
    # When they list their documents with a cursor holding a NUL (and invalid UTF-8)
    answer = client_on_each_transport.get(f"/?{query}", headers=auth(user))
    # Then it is refused as bad input, as problem+json
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json["code"] == "invalid_input"


def test_a_cursor_of_the_wrong_shape_is_400(client_on_each_transport: flask.testing.FlaskClient,
                                            users: UserFactory) -> None:
    # When the cursor is not one the service handed out
    answer = client_on_each_transport.get("/?cursor=%ff%fe-not-a-cursor", headers=auth(users.create()))
    # Then it is bad input too
    assert answer.status_code == 400, answer.text
    assert answer.json["code"] == "invalid_input"
