"""The per-process container of what requests share: settings, database, token verifier, OpenAI client.

Nothing is built at import time (D3, STYLE habit 4). A :class:`Runtime` builds each collaborator on
first use, once, under a lock (gunicorn serves requests on threads), unless it was given a ready one.
:func:`get_runtime` is the process-wide default that :class:`common.http.FunctionApp` uses; tests build
``Runtime(settings, database=..., openai_factory=...)`` with explicit collaborators instead.

OpenAI hook: the OpenAI layer lives in ``common.openai``. A runtime built without ``openai_factory``
resolves :data:`OPENAI_FACTORY` (``"module:function"``, called with ``settings.openai``) on first
access of :attr:`Runtime.openai`, so a function that never talks to OpenAI never imports the SDK.
``settings.openai`` raises ConfigurationError naming ``OPENAI_API_KEY`` when it is not set.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from common.settings import Settings, get_settings

if TYPE_CHECKING:
    from common.auth.tokens import TokenVerifier
    from common.db.base import Database

__all__ = ["OPENAI_FACTORY", "Runtime", "get_runtime", "lazy_runtime"]

OPENAI_FACTORY = "common.openai:build_gateway"

T = TypeVar("T")


def _resolve(spec: str) -> Callable[..., Any]:
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _default_openai_factory(settings: Settings) -> Any:
    return _resolve(OPENAI_FACTORY)(settings.openai)


class Runtime:
    """Lazily built, thread-safe collaborators of one process; see the module docstring."""

    def __init__(self, settings: Settings, *, database: Database | None = None,
                 token_verifier: TokenVerifier | None = None,
                 openai_factory: Callable[[Settings], Any] | None = None) -> None:
        self._settings = settings
        self._openai_factory = openai_factory or _default_openai_factory
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}
        if database is not None:
            self._built["database"] = database
        if token_verifier is not None:
            self._built["token_verifier"] = token_verifier

    @property
    def settings(self) -> Settings:
        return self._settings

    def _once(self, name: str, build: Callable[[], T]) -> T:
        try:
            return self._built[name]
        except KeyError:
            with self._lock:
                if name not in self._built:
                    self._built[name] = build()
                return self._built[name]

    @property
    def database(self) -> Database:
        """The SQL function API (psycopg or supabase-py, chosen by settings)."""
        def build() -> Database:
            from common.db import database_from_settings

            return database_from_settings(self._settings.database)
        return self._once("database", build)

    @property
    def token_verifier(self) -> TokenVerifier:
        """Verifies Supabase access tokens; its JWKS cache lives as long as the process."""
        def build() -> TokenVerifier:
            from common.auth.tokens import TokenVerifier

            return TokenVerifier(self._settings.auth)
        return self._once("token_verifier", build)

    @property
    def prices(self) -> Any:
        """The price table (``PRICE_TABLE_FILE`` or the default); the configured model must be in it,
        so an unpriced model fails on first use instead of costing zero."""
        def build() -> Any:
            from common.pricing import PriceTable

            table = PriceTable.load(self._settings.openai.price_table_file)
            table.model(self._settings.openai.model)
            return table
        return self._once("prices", build)

    @property
    def openai(self) -> Any:
        """The OpenAI layer, built by the factory given (default: :data:`OPENAI_FACTORY`)."""
        return self._once("openai", lambda: self._openai_factory(self._settings))


def lazy_runtime(build: Callable[[], Runtime]) -> Callable[[], Runtime]:
    """A thread-safe provider that calls ``build`` on first use and returns the same runtime after."""
    lock = threading.Lock()
    built: list[Runtime] = []

    def provide() -> Runtime:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0]

    return provide


def _build_default_runtime() -> Runtime:
    from common.logging import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return Runtime(settings)


get_runtime: Callable[[], Runtime] = lazy_runtime(_build_default_runtime)
"""The process's runtime: settings from the environment, structured logging configured, on first use."""
