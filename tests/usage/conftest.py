"""The usage function on functions-framework with the real database."""

from __future__ import annotations

import flask
import flask.testing
import pytest

from common.runtime import Runtime
from tests.support.functions import build_function_app


@pytest.fixture(scope="module")
def usage_app(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> flask.Flask:
    return build_function_app(tmp_path_factory.mktemp("functions"), "usage", runtime)


@pytest.fixture
def client(usage_app: flask.Flask) -> flask.testing.FlaskClient:
    return usage_app.test_client()
