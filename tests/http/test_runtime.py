"""The per-process container: lazy, built once under concurrency, explicit collaborators win."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from common.auth import TokenVerifier
from common.db.base import Identity
from common.errors import ConfigurationError
from common.runtime import Runtime, lazy_runtime
from common.settings import Settings


class RecordingDatabase:
    """A database that records calls (the runtime only stores it)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def call(self, function: str, args: Mapping[str, Any], identity: Identity) -> Any:
        self.calls.append(function)
        return None


def test_explicit_collaborators_are_used(settings: Settings) -> None:
    database = RecordingDatabase()
    verifier = TokenVerifier(settings.auth)
    runtime = Runtime(settings, database=database, token_verifier=verifier)
    assert runtime.database is database
    assert runtime.token_verifier is verifier
    assert runtime.settings is settings


def test_each_collaborator_is_built_once_under_concurrency(settings: Settings) -> None:
    built: list[Settings] = []
    gate = threading.Barrier(8)

    def factory(given: Settings) -> object:
        built.append(given)
        return object()

    runtime = Runtime(settings, openai_factory=factory)

    def touch(_: int) -> tuple[object, TokenVerifier]:
        gate.wait(timeout=5)
        return runtime.openai, runtime.token_verifier

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(touch, range(8)))
    assert built == [settings]
    assert len({id(openai) for openai, _ in results}) == 1
    assert len({id(verifier) for _, verifier in results}) == 1


def test_default_openai_hook_needs_the_api_key(settings: Settings) -> None:
    assert settings.openai_settings is None
    with pytest.raises(ConfigurationError):
        Runtime(settings).openai


def test_lazy_runtime_builds_on_first_use_only(settings: Settings) -> None:
    builds: list[int] = []

    def build() -> Runtime:
        builds.append(1)
        return Runtime(settings)

    provide = lazy_runtime(build)
    assert builds == []
    assert provide() is provide()
    assert builds == [1]
