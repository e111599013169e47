"""Anonymous sign-ins are refused unless ALLOW_ANONYMOUS_USERS is on; then they are users of their own."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import flask.testing
import pytest

from common.runtime import Runtime
from tests.support.functions import build_function_app
from tests.support.users import UserFactory
from tests.upload.conftest import auth


@pytest.fixture(scope="module")
def allowing_client(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[flask.testing.FlaskClient]:
    """The upload function of a project that allows anonymous sign-ins."""
    from common.openai import build_gateway

    settings = dataclasses.replace(runtime.settings, auth=dataclasses.replace(runtime.settings.auth, allow_anonymous=True))
    allowing = Runtime(settings, database=runtime.database, openai_factory=lambda s: build_gateway(s.openai))
    yield build_function_app(tmp_path_factory.mktemp("anonymous"), "upload", allowing).test_client()
    allowing.openai.client.close()


def test_an_anonymous_sign_in_is_refused_by_default(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    # Given a project with the default settings, when an anonymous user calls
    refused = client.get("/", headers=auth(users.create(anonymous=True)))
    # Then the token is refused like any invalid one
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"


def test_an_anonymous_sign_in_is_a_user_of_its_own_when_allowed(allowing_client: flask.testing.FlaskClient,
                                                                users: UserFactory) -> None:
    # Given a project that allows anonymous sign-ins, and two anonymous users
    first, second = users.create(anonymous=True), users.create(anonymous=True)
    # When the first uploads a document
    created = allowing_client.post("/", headers=auth(first), content_type="multipart/form-data",
                                   data={"file": (io.BytesIO(b"an anonymous note"), "note.txt")})
    # Then it is theirs alone: the other anonymous user neither lists nor reads it
    assert created.status_code == 201, created.text
    assert [d["id"] for d in allowing_client.get("/", headers=auth(first)).json["items"]] == [created.json["id"]]
    assert allowing_client.get("/", headers=auth(second)).json["items"] == []
    assert allowing_client.get(f"/{created.json['id']}", headers=auth(second)).status_code == 404
