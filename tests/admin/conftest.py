"""The admin function on functions-framework with the real database and the OpenAI stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import flask.testing
import pytest

from common.db.base import Database, Identity
from common.runtime import Runtime
from common.settings import AdminSettings
from tests.support.functions import build_function_app


def with_admin_settings(runtime: Runtime, database: Database | None = None, **changes: Any) -> Runtime:
    """``runtime`` with other admin settings (and optionally another database), sharing its OpenAI layer."""
    settings = dataclasses.replace(runtime.settings, admin=dataclasses.replace(AdminSettings(), **changes))
    return Runtime(settings, database=database or runtime.database, openai_factory=lambda _: runtime.openai)


@pytest.fixture(scope="module")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("functions")


@pytest.fixture(scope="module")
def admin_app(runtime: Runtime, functions_dir: Path) -> flask.Flask:
    return build_function_app(functions_dir, "admin", runtime)


@pytest.fixture
def client(admin_app: flask.Flask) -> flask.testing.FlaskClient:
    return admin_app.test_client()


@pytest.fixture(autouse=True)
def _no_leftover_faults(standin: Any) -> Iterator[None]:
    yield
    standin.clear_faults()


def record_registry_run(db: Database, status: str = "completed") -> dict[str, Any]:
    """A registry refresh that started now and finished with ``status``, as the scheduled job records it."""
    run = db.call("registry_begin_run", {"p_lease_seconds": 60}, Identity.service())
    return db.call("registry_finish_run", {"p_run_id": run["run_id"], "p_status": status, "p_figures": {}},
                   Identity.service())
